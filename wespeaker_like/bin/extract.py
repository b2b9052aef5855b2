"""Stage 5: embeddings of full utterances to ark/scp, split into jobs for a launcher.

Per job (``$extract_cmd JOB=1:nj``)::

    python -m wespeaker_like.bin.extract --exp_dir exp/x --data_dir data/test \
        --out_dir exp/x/embeddings/test --job JOB --num_jobs nj [--device cpu|cuda|auto]

then ``... --num_jobs nj --merge`` writes ``out_dir/xvector.scp``. The network is rebuilt from
``exp_dir/config.yaml`` and ``exp_dir/final_model.pt``; the embedding is the objective's
``embedding_model()`` output. Finished jobs are skipped on a rerun.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import torch

from wespeaker_like.bin._entry import ArgumentParser, entry_point
from wespeaker_like.data.kaldi_dir import DataDir, job_split, write_table
from wespeaker_like.data.scp import load_matrix, read_scp
from wespeaker_like.errors import InputError
from wespeaker_like.features.ark import ArkScpWriter, job_is_done, merge_job_scps
from wespeaker_like.features.kaldi_features import apply_cmn
from wespeaker_like.objectives import build_objective
from wespeaker_like.training.checkpoint import load_checkpoint, load_matching_state
from wespeaker_like.training.schema import load_experiment_config

log = logging.getLogger("extract")


def load_embedding_model(exp_dir: Path, checkpoint: Path | None = None, device: str = "cpu") -> tuple:
    """(eval-mode embedding network, config dict) from an experiment directory."""
    config_path = exp_dir / "config.yaml"
    if not config_path.is_file():
        raise InputError(config_path, "not found: train the model first (stage 4)")
    cfg = load_experiment_config(config_path)
    checkpoint = checkpoint or exp_dir / "final_model.pt"
    if not checkpoint.is_file():
        raise InputError(checkpoint, "not found: training has not finished (stage 4)")
    state = load_checkpoint(checkpoint)
    objective = build_objective(cfg["objective"], cfg["model"], state["num_classes"])
    model = objective.embedding_model()
    load_matching_state(model, state["embedding"], checkpoint, config_path)
    return model.to(device).eval(), cfg


@entry_point("extract")
def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--exp_dir", required=True, type=Path)
    parser.add_argument("--data_dir", required=True, type=Path, help="data dir with feats.scp")
    parser.add_argument("--out_dir", required=True, type=Path)
    parser.add_argument("--num_jobs", type=int, default=1)
    parser.add_argument("--job", type=int)
    parser.add_argument("--merge", action="store_true")
    parser.add_argument("--checkpoint", type=Path, help="default: exp_dir/final_model.pt")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--num_threads", type=int, default=1, help="torch threads per job")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    scps = [args.out_dir / f"xvector.{job}.scp" for job in range(1, args.num_jobs + 1)]
    if args.merge:
        embeddings = merge_job_scps(scps, "extraction")
        write_table(args.out_dir / "xvector.scp", embeddings)
        log.info("%s: %d embeddings", args.out_dir / "xvector.scp", len(embeddings))
        return 0
    if args.job is None:
        parser.error("--job is required unless --merge is given")
    feats_scp = args.data_dir / "feats.scp"
    feats = read_scp(feats_scp)
    utts = job_split([u for u in DataDir.load(args.data_dir).utts if u in feats], args.job, args.num_jobs)
    scp = scps[args.job - 1]
    if job_is_done(scp, utts):
        log.info("job %d: %s already complete, skipping", args.job, scp)
        return 0
    device = "cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
    torch.set_num_threads(args.num_threads)
    model, cfg = load_embedding_model(args.exp_dir, args.checkpoint, device)
    cmn = cfg.get("dataset", {}).get("cmn", True)
    with torch.inference_mode(), ArkScpWriter(args.out_dir / f"xvector.{args.job}.ark", scp) as writer:
        for utt in utts:
            mat = load_matrix(feats[utt], feats_scp, utt)
            x = torch.from_numpy(apply_cmn(mat) if cmn else mat).float().unsqueeze(0).to(device)
            writer.write(utt, model(x).squeeze(0).float().cpu().numpy())
    log.info("job %d: %d embeddings on %s", args.job, len(utts), device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
