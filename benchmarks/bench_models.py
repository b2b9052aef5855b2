#!/usr/bin/env python3
"""Speed of the model zoo on this machine.

Per model: trainable parameters; training throughput in samples/s (batch 32 x 200 frames of 80-d
fbank, forward + backward + SGD step, AAM-softmax head over 5,994 classes); extraction real-time
factor (one batch of 16 x 10 s = 16 x 1,000 frames, eval mode, model only: compute seconds / audio
seconds). Times are wall clock, the median of ``--iters`` timed iterations after ``--warmup``
untimed ones; the CPU seconds of the process per iteration are printed beside them, so contention
from other processes shows (CPU s close to wall s x threads: we had the cores; much lower: we did not).

    python3 benchmarks/bench_models.py                         # every model, tuned malloc
    python3 benchmarks/bench_models.py --models ecapa_c512,campplus --iters 3 --malloc glibc
    python3 benchmarks/bench_models.py --models ecapa_c512 --compile
    python3 benchmarks/bench_models.py --against /work/ref/wespeaker     # side by side, see below
    python3 benchmarks/bench_models.py --against /work/ref/wespeaker --compile

``--against DIR`` (an exported WeSpeaker tree, imported in place) builds WeSpeaker's model of each
row that has one (``REFERENCE``) with WeSpeaker's AAM head (``ArcMarginProduct``) and times the two
implementations alternately, iteration by iteration, in this one process, so both see the same
load; the table then gives both figures and their ratio (WeSpeaker's time / ours, > 1 = ours faster).
With ``--compile`` as well, ours runs twice, eager and compiled (as ``trainer.compile: true`` runs
it), against WeSpeaker eager (as its trainer runs it): three figures and two ratios per cell.

``--malloc tuned`` (default) runs with ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000``:
glibc then keeps freed activation memory in the heap instead of returning it to the kernel, which
saves the page faults of re-allocating it every iteration. ``--omp-wait passive`` (default) runs with
``OMP_WAIT_POLICY=PASSIVE``: idle OpenMP threads sleep instead of spinning, which matters when other
processes share the cores. Both are read when the process starts, so the script re-executes itself
with the environment they need.
"""

import argparse
import copy
import os
import statistics
import sys
import time

TUNED_MALLOC = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "100000000000"}
OMP_WAIT = "OMP_WAIT_POLICY"

ECAPA_3DS = dict(name="ecapa_tdnn", channels=[1024, 1024, 1024, 1024, 3072], mfa_bn=True, attention_bn=True,
                 padding_mode="reflect")

# WeSpeaker's builder of the same architecture: (module, function, keyword arguments)
REFERENCE = {
    "ecapa_c512": ("wespeaker.models.ecapa_tdnn", "ECAPA_TDNN_GLOB_c512", dict(feat_dim=80, embed_dim=192)),
    "ecapa_c1024": ("wespeaker.models.ecapa_tdnn", "ECAPA_TDNN_GLOB_c1024", dict(feat_dim=80, embed_dim=192)),
    "resnet34_wespeaker": ("wespeaker.models.resnet", "ResNet34", dict(feat_dim=80, embed_dim=256)),
    "campplus": ("wespeaker.models.campplus", "CAMPPlus", dict(feat_dim=80, embed_dim=512)),
}

# the rows of the table (tests/test_models.py checks their parameter counts)
CONFIGS = {
    "tdnn_xvector": dict(name="tdnn", embed_dim=512),
    "ecapa_c512": dict(name="ecapa_tdnn", embed_dim=192, channels=512),
    "ecapa_c1024": dict(name="ecapa_tdnn", embed_dim=192, channels=1024),
    "ecapa_3dspeaker": dict(ECAPA_3DS, embed_dim=192),
    "ecapa_sdpn": dict(ECAPA_3DS, embed_dim=512),
    "resnet34_wespeaker": dict(name="resnet", embed_dim=256),
    "resnet34_3dspeaker": dict(name="resnet", embed_dim=192, two_emb_layer=True),
    "thin_resnet34": dict(name="thin_resnet34", feat_dim=64, embed_dim=512),
    "fast_resnet34": dict(name="fast_resnet34", feat_dim=40, embed_dim=512),
    "res2net34": dict(name="res2net", embed_dim=192),
    "eres2net_base": dict(name="eres2net", embed_dim=192),
    "eres2netv2": dict(name="eres2netv2", embed_dim=192),
    "campplus": dict(name="campplus", embed_dim=512),
    "mfa_conformer": dict(name="mfa_conformer", embed_dim=192),
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(CONFIGS), help="comma-separated ids: " + ", ".join(CONFIGS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=1, help="untimed iterations (compilation happens here)")
    p.add_argument("--iters", type=int, default=3, help="timed iterations")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--classes", type=int, default=5994)
    p.add_argument("--extract-batch", type=int, default=16)
    p.add_argument("--extract-seconds", type=float, default=10.0)
    p.add_argument("--no-train", action="store_true")
    p.add_argument("--no-extract", action="store_true")
    p.add_argument("--against", metavar="DIR", help="exported WeSpeaker tree: time its models alternately "
                   "with ours (rows: " + ", ".join(REFERENCE) + ")")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="print the N most expensive operators of one training step (torch.profiler, "
                   "self CPU time) for each implementation, after the timing")
    p.add_argument("--flops", action="store_true",
                   help="count the floating-point operations of one training step (torch.utils.flop_counter) "
                   "and print them with the GFLOP each implementation ran per CPU second")
    p.add_argument("--compile", action="store_true", help="torch.compile our model (inductor); with "
                   "--against, ours is timed both eager and compiled")
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format (2-D CNNs)")
    p.add_argument("--malloc", choices=["tuned", "glibc"], default="tuned", help="glibc: its defaults")
    p.add_argument("--omp-wait", choices=["passive", "active", "unset"], default="passive",
                   help="OMP_WAIT_POLICY; unset: the OpenMP runtime's default (spin, then sleep)")
    return p.parse_args()


def reexec_with_env(args) -> None:
    """Restart the interpreter when the environment does not match ``--malloc`` / ``--omp-wait``
    (glibc and OpenMP read it when the process starts)."""
    env = dict(os.environ)
    for k, v in TUNED_MALLOC.items():
        if args.malloc == "tuned":
            env[k] = v
        else:
            env.pop(k, None)
    if args.omp_wait == "unset":
        env.pop(OMP_WAIT, None)
    else:
        env[OMP_WAIT] = args.omp_wait.upper()
    if env != dict(os.environ):
        os.execve(sys.executable, [sys.executable] + sys.argv, env)


def timed(fns: list, warmup: int, iters: int) -> list:
    """Per function of ``fns``: (median wall seconds, median process CPU seconds) over ``iters``
    calls; the functions take turns call by call, so a change of load touches them alike."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    wall = [[] for _ in fns]
    cpu = [[] for _ in fns]
    for _ in range(iters):
        for i, fn in enumerate(fns):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[i].append(time.perf_counter() - t0)
            cpu[i].append(time.process_time() - c0)
    return [(statistics.median(w), statistics.median(c)) for w, c in zip(wall, cpu)]


class Contender:
    """One implementation of a row: the model, its AAM head and SGD, and the step / inference
    closures the timer calls."""

    def __init__(self, model, head, feat_dim: int, args, foreach=None, compile=False):
        """``foreach``: the optimiser's multi-tensor switch; ours is the trainer's default (True),
        WeSpeaker's trainer leaves torch's default (None: the per-tensor loop on CPU).
        ``compile``: run the model through ``torch.compile`` (inductor, static shapes)."""
        import torch

        self.model, self.head, self.args = model, head, args
        if args.channels_last:
            model.to(memory_format=torch.channels_last)
        if compile:
            torch._dynamo.reset()  # a fresh cache per model: no recompilation with dynamic shapes
        self.run = torch.compile(model, dynamic=False) if compile else model
        self.opt = torch.optim.SGD(list(model.parameters()) + list(head.parameters()), lr=0.1, momentum=0.9,
                                   weight_decay=1e-4, foreach=foreach)
        self.x = torch.randn(args.batch, args.frames, feat_dim)
        self.y = torch.randint(0, args.classes, (args.batch,))
        self.feats = torch.randn(args.extract_batch, int(round(args.extract_seconds * 100)), feat_dim)

    def embed(self, x):
        out = self.run(x)
        return out[-1] if isinstance(out, tuple) else out  # WeSpeaker's models return (.., embedding)

    def step(self):
        self.model.train()
        loss = self.head(self.embed(self.x), self.y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def infer(self):
        import torch

        self.model.eval()
        with torch.inference_mode():
            self.embed(self.feats)


def wespeaker_contender(mid: str, args):
    """WeSpeaker's model of row ``mid`` with ``ArcMarginProduct`` + cross-entropy as its head."""
    import torch

    from wespeaker_tree import import_wespeaker

    module, builder, kwargs = REFERENCE[mid]
    model = getattr(import_wespeaker(args.against, module), builder)(**kwargs)
    margin = import_wespeaker(args.against, "wespeaker.models.projections").ArcMarginProduct(
        kwargs["embed_dim"], args.classes, scale=30.0, margin=0.2)

    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.margin = margin

        def forward(self, emb, labels):
            return torch.nn.functional.cross_entropy(self.margin(emb, labels), labels)

    return Contender(model, Head(), kwargs["feat_dim"], args)


def contender_names(args) -> list:
    """Who is timed in each row, in the order of the table's cells."""
    if not args.against:
        return ["ours compiled" if args.compile else "ours"]
    return ["ours"] + (["ours compiled"] if args.compile else []) + ["WeSpeaker"]


def step_flops(contender) -> int:
    """Floating-point operations of one training step (matmuls and convolutions, forward + backward)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        contender.step()
    return counter.get_total_flops()


def profile_table(fn, rows: int) -> str:
    """torch.profiler's operator table of one call of ``fn``, by self CPU time."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def bench_one(mid: str, args) -> list:
    """The table cells of one model: id, parameters, training and extraction figures (with
    ``--against``: ours, WeSpeaker's and the ratio for each)."""
    from wespeaker_like.losses.margin import AAMSoftmax
    from wespeaker_like.models import build_model, count_parameters

    cfg = CONFIGS[mid]
    model = build_model(cfg)
    cells = [mid, f"{count_parameters(model) / 1e6:.2f} M"]
    names = contender_names(args)

    def ours(model, compile):
        head = AAMSoftmax(model.embed_dim, args.classes, margin=0.2, scale=30)
        return Contender(model, head, cfg.get("feat_dim", 80), args, foreach=True, compile=compile)

    if not args.against:
        contenders = [ours(model, args.compile)]
    else:  # ours eager [, ours compiled], WeSpeaker eager last
        contenders = [ours(model, False)] + ([ours(copy.deepcopy(model), True)] if args.compile else [])
        contenders.append(wespeaker_contender(mid, args))
        reference = contenders[-1].model
        cells[1] += f" / {sum(p.numel() for p in reference.parameters() if p.requires_grad) / 1e6:.2f} M"

    def figures(results, value):
        """[figures, ratios (each of ours against the reference, the last), CPU s (wall s)]."""
        cells = [" / ".join(value(wall) for wall, _ in results)]
        if args.against:
            cells.append(" / ".join(f"{results[-1][0] / wall:.2f}x" for wall, _ in results[:-1]))
        return cells + [" / ".join(f"{c:.2f} ({w:.2f})" for w, c in results)]

    blank = ["-"] * (3 if args.against else 2)
    if args.no_train:
        cells += blank
    else:
        results = timed([c.step for c in contenders], args.warmup, args.iters)
        cells += figures(results, lambda wall: f"{args.batch / wall:.2f}")
        for c in contenders:
            c.opt.zero_grad(set_to_none=True)
        if args.flops:  # the compiled module runs the same operations as its eager twin: counted eager
            counted = [(name, c, cpu) for name, c, (_, cpu) in zip(names, contenders, results)
                       if c.run is c.model]
            print(f"# {mid}, training step: " + "; ".join(
                f"{name} {flops / 1e9:.1f} GFLOP, {flops / 1e9 / cpu:.1f} GFLOP per CPU second"
                for name, c, cpu in counted for flops in [step_flops(c)]))
        if args.profile:
            for name, c in zip(names, contenders):
                print(f"# {mid}, {name}: one training step\n" + profile_table(c.step, args.profile))
    if args.no_extract:
        cells += blank
    else:
        results = timed([c.infer for c in contenders], args.warmup, args.iters)
        cells += figures(results, lambda wall: f"{wall / (args.extract_batch * args.extract_seconds):.4f}")
    return cells


def main():
    args = parse_args()
    reexec_with_env(args)

    import torch

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ids = [m for m in args.models.split(",") if m]
    if args.against and args.models == ",".join(CONFIGS):
        ids = list(REFERENCE)
    unknown = [m for m in ids if m not in CONFIGS]
    if unknown:
        sys.exit(f"unknown model id(s) {unknown}; known: {', '.join(CONFIGS)}")
    if args.against and set(ids) - set(REFERENCE):
        sys.exit(f"no WeSpeaker builder for {sorted(set(ids) - set(REFERENCE))}; rows: {', '.join(REFERENCE)}")

    print(f"# torch {torch.__version__}, threads {torch.get_num_threads()}, malloc {args.malloc}, "
          f"OMP_WAIT_POLICY {os.environ.get(OMP_WAIT, 'unset')}, "
          f"compile {args.compile}, channels_last {args.channels_last}; train batch {args.batch} x "
          f"{args.frames} frames, AAM head {args.classes} classes; extract {args.extract_batch} x "
          f"{args.extract_seconds:g} s; warmup {args.warmup}, timed iters {args.iters} (median)")
    print("# load average at start: %.2f %.2f %.2f" % os.getloadavg())
    if args.against:
        print(f"# against WeSpeaker at {os.path.abspath(args.against)}; each cell: "
              f"{' / '.join(contender_names(args))}; ratio = WeSpeaker's time / ours (> 1: ours faster)")
        print("| model | params | train samples/s | ratio | train CPU s/it (wall s/it) | extract RTF | ratio "
              "| extract CPU s (wall s) |")
        print("|---|---|---|---|---|---|---|---|")
    else:
        print("| model | params | train samples/s | train CPU s/it (wall s/it) | extract RTF "
              "| extract CPU s (wall s) |")
        print("|---|---|---|---|---|---|")
    for mid in ids:
        print("| " + " | ".join(bench_one(mid, args)) + " |", flush=True)
    print("# load average at end: %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
