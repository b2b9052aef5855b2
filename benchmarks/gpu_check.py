#!/usr/bin/env python3
"""GPU speed check: training throughput, loader headroom, extraction RTF and peak memory.

Rows (``benchmarks/gpu_check.sh`` runs them all in one command):

* ``train``: samples/s of a training step (forward + backward + SGD, AAM head over ``--classes``)
  of ECAPA C=512, ECAPA C=1024, ResNet34 and CAM++ (``bench_models.CONFIGS``) on a synthetic batch
  of ``--batch`` x ``--frames`` x 80, for fp32, AMP fp16 (with a gradient scaler) and AMP bf16,
  eager and ``torch.compile``-d, and for the 2-D CNN in channels-last memory format too.
* ``loader``: the same step fed by the real training pipeline (``FeatureDataset`` on the raw audio
  of ``--train-data``: crop, optional on-the-fly augmentation, Kaldi fbank, CMN; ``DataLoader`` with
  ``--workers`` workers), fp32 and bf16 eager, and the loader alone; when the fed step is as fast as
  the synthetic one the loader keeps up.
* ``extract``: real-time factor of embedding extraction (``--extract-batch`` x ``--extract-seconds``
  of features, eval mode, fp32 and bf16 autocast).

Every row records the peak memory (CUDA: ``max_memory_allocated``; CPU: the process's peak RSS,
which only grows). Rows run cheapest-and-most-important first; once ``--time-limit`` seconds have
passed the remaining rows are recorded as skipped, so the command always ends in time. A row that
fails (e.g. ``torch.compile`` unsupported) is recorded with its error and the check goes on.
Output: ``results.json`` and ``results.md`` in ``--out``.

    python3 benchmarks/gpu_check.py --out exp/gpu_check --train-data data/train   # on a GPU machine
    python3 benchmarks/gpu_check.py --out /tmp/smoke --smoke --train-data DIR     # tiny, on CPU (CI)
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_models import CONFIGS  # noqa: E402

MODELS = ["ecapa_c512", "ecapa_c1024", "resnet34_wespeaker", "campplus"]
CNN_2D = {"resnet34_wespeaker"}
SMOKE_MODELS = ["ecapa_c512", "resnet34_wespeaker"]  # a 1-D and a 2-D CNN: every kind of row
# --smoke builds narrow versions of the models: the same code paths, seconds on a CPU (ResNet34 with
# 4 channels corrupts the heap in channels-last on torch 2.14's CPU convolutions, so 8)
SMOKE_SIZES = {"ecapa_c512": dict(channels=32, embed_dim=16), "ecapa_c1024": dict(channels=32, embed_dim=16),
               "resnet34_wespeaker": dict(m_channels=8, embed_dim=16),
               "campplus": dict(m_channels=4, growth_rate=4, init_channels=8, num_layers=(2, 2, 2), embed_dim=16)}
PRECISIONS = ["fp32", "fp16", "bf16"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="directory for results.json and results.md")
    p.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    p.add_argument("--smoke", action="store_true",
                   help="tiny sizes for a CPU run in CI (narrow models, batch 2 x 40 frames, 20 classes, compile "
                        "with the 'eager' backend); checks that every row runs, the figures mean nothing")
    p.add_argument("--models", default=None, help="comma-separated ids (default: " + ",".join(MODELS)
                   + "; with --smoke: " + ",".join(SMOKE_MODELS) + ")")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--classes", type=int, default=5994)
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per row (compilation happens here)")
    p.add_argument("--iters", type=int, default=10, help="timed steps per row (median)")
    p.add_argument("--train-data", type=Path, help="raw-audio data dir (wav.scp, utt2spk) for the loader rows; "
                   "without it they are skipped")
    p.add_argument("--workers", type=int, default=8, help="DataLoader workers of the loader rows")
    p.add_argument("--augment", default=None, help="augmentation profile of the loader rows (e.g. reverb_noise); "
                   "needs --resources")
    p.add_argument("--resources", default=None,
                   help="resource dirs for --augment: 'rirs=DIR,noise=DIR,music=DIR,speech=DIR'")
    p.add_argument("--extract-batch", type=int, default=16)
    p.add_argument("--extract-seconds", type=float, default=10.0)
    p.add_argument("--time-limit", type=float, default=540.0, help="seconds; later rows are skipped after it")
    args = p.parse_args(argv)
    if args.smoke:
        args.batch, args.frames, args.classes, args.warmup, args.iters = 2, 40, 20, 1, 1
        args.extract_batch, args.extract_seconds, args.workers = 1, 0.5, min(args.workers, 1)
    if args.models is None:
        args.models = ",".join(SMOKE_MODELS if args.smoke else MODELS)
    return args


class Checker:
    """Runs the rows in order, within the time limit, and collects their records."""

    def __init__(self, args, torch):
        self.args, self.torch = args, torch
        self.device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.start = time.monotonic()
        self.rows = []

    def peak_memory_mb(self) -> float:
        if self.device.type == "cuda":
            return self.torch.cuda.max_memory_allocated(self.device) / 2**20
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    def sync(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def row(self, kind: str, fields: dict, measure):
        """Record one row: ``measure()`` returns a dict of figures; errors and the time limit are recorded."""
        record = {"kind": kind, **fields}
        if time.monotonic() - self.start > self.args.time_limit:
            record["status"] = "skipped (time limit)"
        else:
            if self.device.type == "cuda":
                self.torch.cuda.empty_cache()
                self.torch.cuda.reset_peak_memory_stats(self.device)
            t0 = time.monotonic()
            try:
                record.update(measure())
                record["status"] = "ok"
                record["peak_memory_mb"] = round(self.peak_memory_mb(), 1)
            except Exception as exc:  # the check goes on; the row says why it has no figure
                record["status"] = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            record["row_seconds"] = round(time.monotonic() - t0, 1)
        self.rows.append(record)
        print(json.dumps(record), flush=True)

    def timed(self, fn) -> float:
        """Median seconds of ``fn()`` over ``--iters`` calls after ``--warmup`` calls."""
        for _ in range(self.args.warmup):
            fn()
        self.sync()
        times = []
        for _ in range(self.args.iters):
            t0 = time.perf_counter()
            fn()
            self.sync()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)


class Setup:
    """Model + AAM head + SGD for one row, with its precision, memory format and compilation."""

    def __init__(self, checker: Checker, mid: str, precision: str, compiled: bool, channels_last: bool):
        import torch

        from wespeaker_like.losses.margin import AAMSoftmax
        from wespeaker_like.models import build_model

        args, device = checker.args, checker.device
        self.checker, self.device = checker, device
        self.model = build_model(dict(CONFIGS[mid], **(SMOKE_SIZES[mid] if args.smoke else {}))).to(device)
        self.head = AAMSoftmax(self.model.embed_dim, args.classes, margin=0.2, scale=30).to(device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.dtype = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
        self.run = self.model
        if compiled:
            torch._dynamo.reset()
            self.run = torch.compile(self.model, backend="eager" if args.smoke else "inductor")
        self.opt = torch.optim.SGD(list(self.model.parameters()) + list(self.head.parameters()), lr=0.1,
                                   momentum=0.9, weight_decay=1e-4)

    def autocast(self):
        import torch

        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None)

    def step(self, feats, labels):
        self.model.train()
        with self.autocast():
            loss = self.head(self.run(feats), labels)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()

    def extract(self, feats):
        import torch

        self.model.eval()
        with torch.inference_mode(), self.autocast():
            self.run(feats)


def train_rows(checker: Checker, models, compiled: bool):
    """Synthetic-batch training rows: every precision, eager or compiled, channels-last for 2-D CNNs."""
    import torch

    args, device = checker.args, checker.device
    feats = torch.randn(args.batch, args.frames, 80, device=device)
    labels = torch.randint(0, args.classes, (args.batch,), device=device)
    # --smoke compiles in fp32 only: each compilation costs CPU seconds; the precisions are covered eagerly
    precisions = ["fp32"] if compiled and args.smoke else PRECISIONS
    for mid in models:
        for channels_last in ((False, True) if mid in CNN_2D else (False,)):
            for precision in precisions:
                def measure(mid=mid, precision=precision, channels_last=channels_last):
                    setup = Setup(checker, mid, precision, compiled, channels_last)
                    seconds = checker.timed(lambda: setup.step(feats, labels))
                    return {"samples_per_s": round(args.batch / seconds, 2), "step_s": round(seconds, 4)}

                checker.row("train", {"model": mid, "precision": precision, "compile": compiled,
                                      "channels_last": channels_last}, measure)


def extract_rows(checker: Checker, models):
    import torch

    args = checker.args
    feats = torch.randn(args.extract_batch, int(round(args.extract_seconds * 100)), 80, device=checker.device)
    for mid in models:
        for precision in ("fp32", "bf16"):
            def measure(mid=mid, precision=precision):
                setup = Setup(checker, mid, precision, False, False)
                seconds = checker.timed(lambda: setup.extract(feats))
                return {"rtf": seconds / (args.extract_batch * args.extract_seconds)}

            checker.row("extract", {"model": mid, "precision": precision}, measure)


def loader_rows(checker: Checker, models):
    import torch

    from wespeaker_like.dataset import FeatureDataset, RandomBatchSampler, View, collate

    args = checker.args
    fields = {"workers": args.workers, "augment": args.augment or "none"}
    if args.train_data is None:
        checker.rows.append({"kind": "loader", **fields, "model": "-", "status": "skipped (no --train-data)"})
        return
    augment = None
    if args.augment:
        if not args.resources:
            raise SystemExit("--augment needs --resources")
        augment = {"resources": dict(kv.split("=", 1) for kv in args.resources.split(",")),
                   "profiles": {args.augment: None}}
    dataset = FeatureDataset(args.train_data, views=[View(args.frames, augment=args.augment)],
                             features={"type": "fbank", "num_mel_bins": 80, "norm": "cmn"}, augment=augment,
                             source="audio")
    classes = dataset.num_classes("spk")
    steps = args.warmup + args.iters

    def batches():
        """Endless (feats, labels) batches from a DataLoader over as many epochs as needed."""
        sampler = RandomBatchSampler(len(dataset), args.batch, seed=0)
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate,
                                             num_workers=args.workers, persistent_workers=args.workers > 0,
                                             pin_memory=checker.device.type == "cuda")
        epoch = 0
        while True:
            sampler.set_epoch(epoch)
            for batch in loader:
                yield (batch["views"][0].to(checker.device, non_blocking=True),
                       batch["labels"]["spk"].to(checker.device, non_blocking=True))
            epoch += 1

    def rate(consume) -> dict:
        source = batches()
        for _ in range(args.warmup):
            consume(*next(source))
        checker.sync()
        t0 = time.perf_counter()
        for _ in range(args.iters):
            consume(*next(source))
        checker.sync()
        return {"samples_per_s": round(args.batch * args.iters / (time.perf_counter() - t0), 2)}

    checker.row("loader", {**fields, "model": "(loader alone)"}, lambda: rate(lambda feats, labels: None))
    for mid in models:
        for precision in ("fp32", "bf16"):
            def measure(mid=mid, precision=precision):
                setup = Setup(checker, mid, precision, False, False)
                if classes > args.classes:
                    raise RuntimeError(f"{classes} speakers > --classes {args.classes}")
                return rate(setup.step)

            checker.row("loader", {**fields, "model": mid, "precision": precision, "steps": steps}, measure)


def markdown(rows, header: str) -> str:
    """The rows as markdown tables, one per kind."""
    lines = [header, ""]
    titles = {"train": "Training step, synthetic batch", "loader": "Training step fed by the data loader",
              "extract": "Extraction"}
    for kind, figure in (("train", "samples_per_s"), ("loader", "samples_per_s"), ("extract", "rtf")):
        chosen = [r for r in rows if r["kind"] == kind]
        if not chosen:
            continue
        keys = [k for k in ("model", "precision", "compile", "channels_last", "workers", "augment") if k in chosen[0]]
        lines += [f"### {titles[kind]}", "", "| " + " | ".join(keys + [figure, "peak memory MB", "status"]) + " |",
                  "|" + "---|" * (len(keys) + 3)]
        for r in chosen:
            value = r.get(figure)
            value = "-" if value is None else (f"{value:.4f}" if figure == "rtf" else f"{value:.2f}")
            lines.append("| " + " | ".join([str(r.get(k, "-")) for k in keys]
                                           + [value, str(r.get("peak_memory_mb", "-")), r["status"]]) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    checker = Checker(args, torch)
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown model id(s) {unknown}; known: {', '.join(CONFIGS)}")
    if checker.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(checker.device)
    else:
        name = f"CPU, {torch.get_num_threads()} threads"
    info = {"device": name, "torch": torch.__version__, "batch": args.batch, "frames": args.frames,
            "classes": args.classes, "warmup": args.warmup, "iters": args.iters, "smoke": args.smoke,
            "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    print(json.dumps(info), flush=True)
    # compiled rows last: each costs a compilation, and the other rows matter more within the limit
    train_rows(checker, models, compiled=False)
    extract_rows(checker, models)
    loader_rows(checker, models)
    train_rows(checker, models, compiled=True)
    info["seconds"] = round(time.monotonic() - checker.start, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    from wespeaker_like.fileio import atomic_write

    with atomic_write(args.out / "results.json") as handle:
        handle.write(json.dumps({"info": info, "rows": checker.rows}, indent=1) + "\n")
    header = (f"GPU check on {name}, torch {torch.__version__}: batch {args.batch} x {args.frames} frames, AAM "
              f"{args.classes} classes, median of {args.iters} steps after {args.warmup}; {info['seconds']} s")
    with atomic_write(args.out / "results.md") as handle:
        handle.write(markdown(checker.rows, header) + "\n")
    print(f"results: {args.out / 'results.json'}, {args.out / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
