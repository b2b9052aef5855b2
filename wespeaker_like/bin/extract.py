"""Stage 5: embeddings of full utterances to ark/scp, split into jobs for a launcher.

Per job (``$extract_cmd JOB=1:nj``)::

    python -m wespeaker_like.bin.extract --exp_dir exp/x --data_dir data/test \
        --out_dir exp/x/embeddings/test --job JOB --num_jobs nj [--device cpu|cuda|auto]

then ``... --num_jobs nj --merge`` writes ``out_dir/xvector.scp``. With ``--branch x,x_s,x_d`` (the
outputs of a decoupled encoder, objective club), one pass through the network writes each branch into
``out_dir/<branch>/xvector.scp``. The network is rebuilt from
``exp_dir/config.yaml`` and ``exp_dir/final_model.pt``; the embedding is the objective's
``embedding_model()`` output, computed by ``inference.embed_features`` as ``load_model`` computes
it. A finished job is skipped on a rerun only when the model file, the front-end settings and its
utterances' input entries are unchanged (``features.jobs.KeyedJob``).

Input (``--source``): the data dir's ``feats.scp`` (stage 3), or its audio (``wav.scp`` + ``segments``,
files, pipes or wave-ark entries) through the front-end of the saved config's ``features:`` section, so a
raw-audio experiment needs no stage 3; ``auto`` takes feats.scp when the data dir has one. Either way the
saved ``features.norm`` is applied. A model input size other than the front-end's output, or a
non-finite embedding, stops the job with a message and writes nothing.
"""

from __future__ import annotations

import argparse
import logging
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

from wespeaker_like.bin._entry import ArgumentParser, entry_point
from wespeaker_like.data.kaldi_dir import DataDir, job_split, write_table
from wespeaker_like.data.scp import load_matrix, read_scp
from wespeaker_like.errors import InputError
from wespeaker_like.fileio import file_hash
from wespeaker_like.audio.source import AudioSource
from wespeaker_like.features.ark import ArkScpWriter, job_is_done, merge_job_scps
from wespeaker_like.features.jobs import KeyedJob, remove_unreferenced
from wespeaker_like.inference import embed_features, experiment_config, load_embedding_model, saved_frontend
from wespeaker_like.models.decoupling import DecoupledEncoder

log = logging.getLogger("extract")


class ExtractionInput:
    """The data dir's utterances and their model input, (T, dim) tensors, from feats.scp or the audio
    through the saved front-end; ``plan(job)`` gives a job's share and its keyed outputs, whose
    fingerprint covers the model file, the front-end settings and each utterance's input entry."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        utts = DataDir.load(args.data_dir).utts  # input errors first, before the experiment's
        self.frontend = saved_frontend(experiment_config(args.exp_dir), args.exp_dir / "config.yaml")
        self.feats_scp = args.data_dir / "feats.scp"
        if args.source == "feats" or (args.source == "auto" and self.feats_scp.is_file()):
            self.feats, self.audio = read_scp(self.feats_scp), None
            self.utts = [u for u in utts if u in self.feats]
        else:
            self.feats, self.audio = None, AudioSource.from_data_dir(args.data_dir, self.frontend.sample_rate)
            self.utts = utts
        model_file = args.checkpoint or args.exp_dir / "final_model.pt"
        if not model_file.is_file():
            raise InputError(model_file, "not found: training has not finished (stage 4)")
        self.model_digest = file_hash(model_file, "sha256")[:16]

    def plan(self, job: int) -> Tuple[List[str], Dict[str, KeyedJob]]:
        """The job's utterances and its keyed output per branch ("" without ``--branch``: out_dir itself)."""
        utts = job_split(self.utts, job, self.args.num_jobs)
        entries = [self.feats[utt] if self.feats is not None else self.audio.describe(utt) for utt in utts]
        inputs = {"model": self.model_digest, "features": self.frontend.cfg, "input": entries}
        if not self.args.branch:
            return utts, {"": KeyedJob(self.args.out_dir, "xvector", job, inputs)}
        # another branch of the same model is another output
        return utts, {b: KeyedJob(self.args.out_dir / b, "xvector", job, dict(inputs, branch=b))
                      for b in self.args.branch}

    def __call__(self, utt: str) -> torch.Tensor:
        frontend = self.frontend
        if self.feats is not None:
            mat = load_matrix(self.feats[utt], self.feats_scp, utt)
            if mat.ndim != 2 or mat.shape[1] != frontend.dim:
                raise InputError(self.feats_scp, f"utterance '{utt}' has features of shape {mat.shape} but the "
                                 f"saved front-end ({self.args.exp_dir / 'config.yaml'}: features) gives "
                                 f"{frontend.dim}-d features; redo stage 3 with the experiment's config")
            return frontend.normalise(mat)
        samples = self.audio.read(utt)
        if frontend.num_frames(samples.shape[0]) == 0:
            raise self.audio.error(utt, f"audio has {samples.shape[0]} samples; expected at least "
                                   f"{frontend.window} for one {frontend.kind} frame")
        return frontend(samples)


def branch_outputs(model, branches: Sequence[str], exp_dir: Path):
    """``feats (1, T, dim) -> {branch: (1, D)}``: every named output of one forward pass; a network
    without a decoupling block has one output, x (its embedding)."""
    if isinstance(model, DecoupledEncoder):
        return lambda feats: {b: out for b, out in model.branches(feats).items() if b in branches}
    if set(branches) - {"x"}:
        raise InputError(exp_dir / "config.yaml", f"--branch {','.join(branches)}: this experiment's embedding "
                         "network has one output only, x (branches come with a decoupling block, objective club)")
    return lambda feats: {"x": model(feats)}


def run_job(args: argparse.Namespace, model_input: ExtractionInput, device: str) -> None:
    """Embeddings of the job's share for each output whose keyed result for the same model and input
    does not exist yet; all of them from one forward pass per utterance."""
    utts, plans = model_input.plan(args.job)
    todo = {}
    for branch, plan in plans.items():
        plan.remove_stale_temporaries()
        if job_is_done(plan.path("scp"), utts):
            log.info("job %d: %s already complete with the same model and input, skipping", args.job,
                     plan.path("scp"))
            continue
        reason = plan.why_changed()
        if reason:
            log.warning("job %d: redoing it%s because %s", args.job, f" ({branch})" if branch else "", reason)
        todo[branch] = plan
    if not todo:
        return
    model, _ = load_embedding_model(args.exp_dir, args.checkpoint, device)
    outputs = branch_outputs(model, list(todo), args.exp_dir) if args.branch else lambda feats: {"": model(feats)}
    with ExitStack() as stack:
        writers = {b: stack.enter_context(ArkScpWriter(plan.path("ark"), plan.path("scp"))) for b, plan in todo.items()}
        for utt in utts:
            embeddings = embed_features(outputs, model_input(utt), device)
            for branch, embedding in embeddings.items():
                if not np.isfinite(embedding).all():
                    raise InputError(args.checkpoint or args.exp_dir / "final_model.pt",
                                     f"the embedding of utterance '{utt}' is not finite (NaN or inf): the model has "
                                     f"diverged or its input is broken; no embeddings written for job {args.job}")
                writers[branch].write(utt, embedding)
        for plan in todo.values():
            plan.record_inputs()
    log.info("job %d: %d embeddings on %s%s", args.job, len(utts), device,
             f" (branches {', '.join(todo)})" if args.branch else "")


def merge(args: argparse.Namespace, model_input: ExtractionInput) -> None:
    """Each output's job scps into its ``xvector.scp`` (out_dir, or out_dir/<branch> for each branch)."""
    plans_by_output: Dict[str, List[KeyedJob]] = {}
    for job in range(1, args.num_jobs + 1):
        for output, plan in model_input.plan(job)[1].items():
            plans_by_output.setdefault(output, []).append(plan)
    for output, plans in plans_by_output.items():
        for plan in plans:
            if not plan.path("scp").is_file() and plan.why_changed():
                raise InputError(plan.path("scp"), f"extraction job {plan.job} has no output for the current "
                                 f"model and input ({plan.why_changed()}); rerun the stage")
        out_dir = args.out_dir / output if output else args.out_dir
        embeddings = merge_job_scps([plan.path("scp") for plan in plans], "extraction")
        write_table(out_dir / "xvector.scp", embeddings)
        remove_unreferenced(out_dir, "xvector", plans)
        log.info("%s: %d embeddings", out_dir / "xvector.scp", len(embeddings))


def branch_list(text: str) -> List[str]:
    """``"x,x_s"`` -> ["x", "x_s"]: known names, each once."""
    names = [name for name in text.replace(" ", ",").split(",") if name]
    unknown = [name for name in names if name not in DecoupledEncoder.BRANCHES]
    if not names or unknown or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"expected distinct names of {', '.join(DecoupledEncoder.BRANCHES)}, "
                                         f"comma-separated; got '{text}'")
    return names


@entry_point("extract")
def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--exp_dir", required=True, type=Path)
    parser.add_argument("--data_dir", required=True, type=Path, help="data dir with feats.scp or audio (wav.scp)")
    parser.add_argument("--out_dir", required=True, type=Path)
    parser.add_argument("--num_jobs", type=int, default=1)
    parser.add_argument("--job", type=int)
    parser.add_argument("--merge", action="store_true")
    parser.add_argument("--source", default="auto", choices=["auto", "feats", "audio"],
                        help="feats.scp, or the audio through the saved front-end (auto: feats.scp if present)")
    parser.add_argument("--checkpoint", type=Path, help="default: exp_dir/final_model.pt")
    parser.add_argument("--branch", type=branch_list, default=None,
                        help="outputs of a decoupled encoder (objective club) to write, comma-separated "
                             "(x,x_s,x_d), each into out_dir/<branch>/ from one pass; default: the network's "
                             "own into out_dir (x is accepted for any network: its embedding)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--num_threads", type=int, default=1, help="torch threads per job")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if not args.merge and (args.job is None or not 1 <= args.job <= args.num_jobs):
        parser.error("--job must be in 1..--num_jobs unless --merge is given")
    device = "cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
    torch.set_num_threads(args.num_threads)
    model_input = ExtractionInput(args)
    if args.merge:
        merge(args, model_input)
    else:
        run_job(args, model_input, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
