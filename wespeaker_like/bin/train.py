"""Stage 4: train with the one trainer. Run under torchrun (or plain python for one CPU process)::

    torchrun --standalone --nproc_per_node=1 -m wespeaker_like.bin.train \
        --config conf/ecapa_aam.yaml --train_data data/train_combined --exp_dir exp/ecapa_aam \
        [--set optim.lr=0.05 trainer.epochs=20]

Rerunning the same command resumes from ``exp_dir/checkpoints/latest``.
"""

from __future__ import annotations

import logging
import os
import random
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

from wespeaker_like.bin._entry import ArgumentParser, entry_point
from wespeaker_like.dataset import FeatureDataset, build_batch_sampler, collate
from wespeaker_like.errors import InputError
from wespeaker_like.data.scp import load_matrix
from wespeaker_like.features.frontends import check_model_input_dim, model_input_dim
from wespeaker_like.objectives import build_objective
from wespeaker_like.registry import OBJECTIVES
from wespeaker_like.training.config import save_config
from wespeaker_like.training.checkpoint import move_aside
from wespeaker_like.training.distributed import barrier, cleanup, init_distributed
from wespeaker_like.training.schema import load_experiment_config
from wespeaker_like.training.trainer import Trainer


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _worker_init(_):
    torch.set_num_threads(1)


def prepare_exp_dir(exp_dir: Path, cfg, start_over: bool, is_main: bool, log) -> None:
    """Refuse to mix runs in one ``exp_dir``, move an earlier run aside on ``start_over``, save the config.

    Checkpoints without ``latest`` (it was deleted) belong to another run; with ``latest``, the saved
    config must be this run's (a resume). ``start_over`` moves ``checkpoints/`` to ``checkpoints.old.N``.
    """
    saved, ckpt_dir = exp_dir / "config.yaml", exp_dir / "checkpoints"
    plain = yaml.safe_load(yaml.safe_dump(dict(cfg)))
    found = sorted(p.name for p in ckpt_dir.glob("*.pt"))
    has_latest = (ckpt_dir / "latest").is_file()
    if start_over and (found or has_latest):
        if is_main:
            log.info("--start_over: moved the checkpoints of the earlier run to %s", move_aside(ckpt_dir))
        barrier()
    elif found and not has_latest:
        raise InputError(ckpt_dir, f"holds checkpoints of another run ({', '.join(found)}) but no 'latest'; "
                         "pass --start_over to move them aside and train from scratch, or use a new --exp_dir")
    elif has_latest and saved.is_file() and yaml.safe_load(saved.read_text()) != plain:
        raise InputError(saved, f"differs from the config of this run, and {ckpt_dir} holds checkpoints of the "
                         "old one; use a new --exp_dir or pass --start_over")
    if is_main:
        save_config(plain, saved)


def check_input_dim(dataset: FeatureDataset, model_cfg, config_path) -> None:
    """The backbone's input size (``model.feat_dim``) must be the size of the features it is given."""
    if dataset.source == "audio":
        check_model_input_dim(dataset.frontends["default"], model_cfg, config_path)
        return
    first, feats_scp = dataset.utts[0], dataset.data_dir / "feats.scp"
    dim = load_matrix(dataset.feats[first], feats_scp, first).shape[1]
    feat_dim = model_input_dim(model_cfg)
    if feat_dim is not None and feat_dim != dim:
        raise InputError(config_path, f"model.feat_dim is {feat_dim} but {feats_scp} holds {dim}-d features "
                         f"(utterance {first}); make them equal (model.feat_dim, or stage 3 with this config)")


def train(cfg, args, dist, log, threads) -> None:
    """Build the data, objective and trainer, resume if possible, and train to the end."""
    label_names = OBJECTIVES.get(cfg["objective"]["name"]).label_names
    try:
        dataset = FeatureDataset.from_config(args.train_data, cfg["dataset"], cfg["features"], label_names)
    except InputError:
        raise
    except ValueError as exc:  # dataset options that do not fit together
        raise InputError(args.config, f"{exc} (dataset / features)") from None
    check_input_dim(dataset, cfg["model"], args.config)
    num_classes = {name: dataset.num_classes(name) for name in dataset.label_maps}
    seed_everything(cfg["seed"])
    try:
        objective = build_objective(cfg["objective"], cfg["model"], num_classes)
    except ValueError as exc:  # options of a nested section (e.g. objective.loss) that the code rejects
        raise cfg.error("objective", str(exc)) from None
    try:
        dataset.views = objective.views
    except InputError:
        raise
    except ValueError as exc:
        raise InputError(args.config, f"{exc} (the views of objective '{cfg['objective']['name']}')") from None
    try:
        sampler = build_batch_sampler(cfg["dataset"]["sampler"], dataset, cfg["seed"], dist.rank, dist.world_size)
    except ValueError as exc:
        raise InputError(args.train_data, f"{exc} (dataset.sampler in {args.config})") from None
    workers = cfg["dataset"]["num_workers"]
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=workers,
                                         worker_init_fn=_worker_init, persistent_workers=workers > 0,
                                         pin_memory=dist.device.type == "cuda")
    params = sum(p.numel() for p in objective.embedding_model().parameters())
    log.info("%d utterances, %s classes, %d batches/epoch/rank, %d ranks, device %s, %d threads, "
             "embedding model %.2f M parameters", len(dataset), num_classes, len(sampler), dist.world_size,
             dist.device, threads, params / 1e6)
    try:
        trainer = Trainer(cfg, objective, loader, sampler, args.exp_dir, dist, num_classes,
                          train_data=args.train_data, label_maps=dataset.label_maps)
    except ValueError as exc:
        raise InputError(args.config, str(exc)) from None
    trainer.start()
    trainer.fit()


@entry_point("train")
def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--train_data", required=True, type=Path, help="data dir with utt2spk and feats.scp (or wav.scp for dataset.source: audio)")
    parser.add_argument("--exp_dir", required=True, type=Path)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="dotted config overrides")
    parser.add_argument("--start_over", "--start-over", action="store_true",
                        help="move checkpoints of an earlier run in exp_dir aside and train from scratch")
    args = parser.parse_args(argv)
    cfg = load_experiment_config(args.config, args.set)
    dist = init_distributed(cfg["trainer"]["device"])
    args.exp_dir.mkdir(parents=True, exist_ok=True)
    handlers = [logging.StreamHandler(sys.stderr)]
    log_file = logging.FileHandler(args.exp_dir / "train.log") if dist.is_main else None
    if log_file:
        handlers.append(log_file)
    logging.basicConfig(level=logging.INFO if dist.is_main else logging.WARNING, handlers=handlers, force=True,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log = logging.getLogger("train")

    threads = cfg["trainer"]["num_threads"] or max(1, (os.cpu_count() or 1) // dist.world_size)
    torch.set_num_threads(threads)
    seed_everything(cfg["seed"])
    try:
        prepare_exp_dir(args.exp_dir, cfg, args.start_over, dist.is_main, log)
        train(cfg, args, dist, log, threads)
    except (InputError, FloatingPointError) as exc:
        if log_file:  # the entry point prints the message; train.log keeps it too
            log_file.handle(log.makeRecord(log.name, logging.ERROR, __file__, 0, "%s", (exc,), None))
        raise
    cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
