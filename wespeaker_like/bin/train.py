"""Stage 4: train with the one trainer. Run under torchrun (or plain python for one CPU process)::

    torchrun --standalone --nproc_per_node=1 -m wespeaker_like.bin.train \
        --config conf/ecapa_aam.yaml --train_data data/train_combined --exp_dir exp/ecapa_aam \
        [--set optim.lr=0.05 trainer.epochs=20]

Rerunning the same command resumes from ``exp_dir/checkpoints/latest``.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

from wespeaker_like.dataset import FeatureDataset, build_batch_sampler, collate
from wespeaker_like.errors import InputError
from wespeaker_like.features.frontends import FEATURE_DEFAULTS, check_model_input_dim
from wespeaker_like.objectives import build_objective
from wespeaker_like.registry import LOSSES, MODELS, OBJECTIVES, SCHEDULERS
from wespeaker_like.training.config import OPEN, Config, check_keys, check_kwargs, load_config, save_config, with_defaults
from wespeaker_like.training.distributed import cleanup, init_distributed
from wespeaker_like.training.trainer import OPTIMIZERS, Trainer

SCHEMA = {
    "seed": 42,
    "features": FEATURE_DEFAULTS,
    "dataset": {"cmn": True, "num_workers": 1, "sampler": {"name": "random", "batch_size": 128},
                # raw audio (source: audio) only: extra front-ends, on-the-fly augmentation, speed copies
                "source": "auto", "frontends": OPEN, "augment": OPEN, "speed_perturb": [], "min_seconds": 0.0,
                "skip_bad": False},
    "model": OPEN,
    "objective": OPEN,
    "optim": OPEN,
    "scheduler": OPEN,
    "trainer": {"epochs": 10, "grad_clip": 0.0, "amp": False, "log_every": 20, "checkpoint_every_steps": 200,
                "keep_checkpoints": 2, "average_last": 1, "num_threads": 0, "device": "auto"},
}


def load_train_config(path, overrides) -> Config:
    """Merged, defaulted and checked config: unknown keys anywhere raise InputError with file:line."""
    cfg = load_config(path, overrides)
    check_keys(cfg, SCHEMA)
    cfg = with_defaults(cfg, SCHEMA)
    for section in ("model", "objective", "optim", "scheduler"):
        if "name" not in cfg[section] and section != "optim":
            raise cfg.error(section, "needs a 'name'")
    import wespeaker_like.models  # noqa: F401  (registers the backbones)
    for section, registry in (("model", MODELS), ("objective", OBJECTIVES), ("scheduler", SCHEDULERS)):
        try:
            target = registry.get(cfg[section]["name"])
        except KeyError as exc:
            raise cfg.error(f"{section}.name", str(exc.args[0])) from None
        check_kwargs(cfg, section, target)
    import wespeaker_like.losses  # noqa: F401
    loss_cfg = cfg["objective"].get("loss")
    if isinstance(loss_cfg, dict):
        try:
            check_kwargs(cfg, "objective.loss", LOSSES.get(loss_cfg.get("name")),
                         ignore=("name", "embed_dim", "num_classes"))
        except KeyError as exc:
            raise cfg.error("objective.loss.name", str(exc.args[0])) from None
    optim_name = cfg["optim"].get("name", "sgd")
    if optim_name not in OPTIMIZERS:
        raise cfg.error("optim.name", f"unknown optimizer '{optim_name}'; expected one of {sorted(OPTIMIZERS)}")
    check_kwargs(cfg, "optim", OPTIMIZERS[optim_name])
    return cfg


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _worker_init(_):
    torch.set_num_threads(1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--train_data", required=True, type=Path,
                        help="data dir with utt2spk and feats.scp (or wav.scp for dataset.source: audio)")
    parser.add_argument("--exp_dir", required=True, type=Path)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="dotted config overrides")
    args = parser.parse_args(argv)
    try:
        cfg = load_train_config(args.config, args.set)
    except InputError as exc:
        print(f"train: {exc}", file=sys.stderr)
        return 1
    dist = init_distributed(cfg["trainer"]["device"])
    args.exp_dir.mkdir(parents=True, exist_ok=True)
    handlers = [logging.StreamHandler(sys.stderr)]
    if dist.is_main:
        handlers.append(logging.FileHandler(args.exp_dir / "train.log"))
    logging.basicConfig(level=logging.INFO if dist.is_main else logging.WARNING, handlers=handlers, force=True,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log = logging.getLogger("train")

    saved = args.exp_dir / "config.yaml"
    plain = yaml.safe_load(yaml.safe_dump(dict(cfg)))
    if saved.is_file() and (args.exp_dir / "checkpoints" / "latest").is_file():
        if yaml.safe_load(saved.read_text()) != plain:
            log.error("%s differs from the config of this run, and %s holds checkpoints of the old one; "
                      "use a new --exp_dir or delete it", saved, args.exp_dir)
            return 1
    elif dist.is_main:
        save_config(plain, saved)

    threads = cfg["trainer"]["num_threads"] or max(1, (os.cpu_count() or 1) // dist.world_size)
    torch.set_num_threads(threads)
    seed_everything(cfg["seed"])
    try:
        label_names = OBJECTIVES.get(cfg["objective"]["name"]).label_names
        dataset = FeatureDataset.from_config(args.train_data, cfg["dataset"], cfg["features"], label_names)
        if dataset.source == "audio":
            check_model_input_dim(dataset.frontends["default"], cfg["model"])
    except (InputError, ValueError) as exc:
        log.error("%s", exc)
        return 1
    num_classes = {name: dataset.num_classes(name) for name in dataset.label_maps}
    seed_everything(cfg["seed"])
    objective = build_objective(cfg["objective"], cfg["model"], num_classes)
    try:
        dataset.views = objective.views
    except (InputError, ValueError) as exc:
        log.error("%s", exc)
        return 1
    sampler = build_batch_sampler(cfg["dataset"]["sampler"], dataset, cfg["seed"], dist.rank, dist.world_size)
    workers = cfg["dataset"]["num_workers"]
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=workers,
                                         worker_init_fn=_worker_init, persistent_workers=workers > 0,
                                         pin_memory=dist.device.type == "cuda")
    params = sum(p.numel() for p in objective.embedding_model().parameters())
    log.info("%d utterances, %s classes, %d batches/epoch/rank, %d ranks, device %s, %d threads, "
             "embedding model %.2f M parameters", len(dataset), num_classes, len(sampler), dist.world_size,
             dist.device, threads, params / 1e6)
    trainer = Trainer(cfg, objective, loader, sampler, args.exp_dir, dist, num_classes)
    trainer.resume()
    trainer.fit()
    cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
