"""Paper 002 Fig. 6 diagnostic: how far i-mix and l-mix samples lie from the straight line between
their two inputs in MFCC-supervector space.

    python -m wespeaker_like.bin.mix_diagnostic --vae_exp exp/vae --data_dir data/test \\
        --out exp/mix_diagnostic.json [--num_pairs 256] [--alpha 0.5] [--seed 0]

Pairs of clean ``num_frames`` crops (the VAE experiment's front-end and crop length) of different
utterances of ``--data_dir`` are mixed with λ ~ Beta(α, α): i-mix λ·X1 + (1 − λ)·X2, l-mix
Dec(λ·μ1 + (1 − λ)·μ2) with the trained VAE. For each, the distance from the line X1X2
(``augment.mixup.distance_from_line``), as is and divided by ||X1 − X2||; the VAE's own
reconstruction Dec(μ1) (λ = 1) is the reference for how far decoding alone moves a point. The summary
(mean, median per kind) is printed as a Markdown table and written as JSON (atomically).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from wespeaker_like.augment.mixup import distance_from_line, mix, mixing_weights, random_derangement
from wespeaker_like.bin._entry import ArgumentParser, entry_point
from wespeaker_like.dataset.features import FeatureDataset, collate
from wespeaker_like.dataset.views import View, stream
from wespeaker_like.errors import InputError
from wespeaker_like.fileio import atomic_write
from wespeaker_like.inference import load_embedding_model


def line_distances(vae, first: torch.Tensor, second: torch.Tensor, lam: torch.Tensor) -> dict:
    """``{kind: (B,) distances}`` for i-mix, l-mix and the plain reconstruction, and ||X1 − X2||;
    ``first``/``second``: (B, T, F) crops, ``lam``: (B,)."""
    with torch.no_grad():
        mean_first, mean_second = vae.encode(first)[0], vae.encode(second)[0]
        samples = {"i-mix": mix(first, second, lam),
                   "l-mix": vae.decode(mix(mean_first, mean_second, lam)),
                   "reconstruction": vae.decode(mean_first)}
    out = {kind: distance_from_line(x, first, second) for kind, x in samples.items()}
    out["input_distance"] = (first - second).flatten(1).double().norm(dim=1)
    return out


def summarise(distances: dict) -> dict:
    scale = distances["input_distance"]
    return {kind: {"mean": float(d.mean()), "median": float(d.median()),
                   "relative_mean": float((d / scale).mean())}
            for kind, d in distances.items() if kind != "input_distance"}


@entry_point("mix_diagnostic")
def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--vae_exp", required=True, type=Path, help="experiment dir of the vae objective")
    parser.add_argument("--data_dir", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, help="summary JSON")
    parser.add_argument("--num_pairs", type=int, default=256)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    vae, cfg = load_embedding_model(args.vae_exp)
    if not hasattr(vae, "decode"):
        raise InputError(args.vae_exp / "config.yaml", f"model '{cfg['model']['name']}' is not a VAE (conv_vae)")
    source = "audio" if cfg["dataset"].get("source") == "audio" else "auto"
    dataset = FeatureDataset(args.data_dir, (), [View(vae.num_frames)], source=source, features=cfg["features"])
    if len(dataset) < 2:
        raise InputError(args.data_dir, "needs at least 2 utterances to make pairs")
    rng = stream(args.seed)
    count = min(args.num_pairs, len(dataset))
    chosen = rng.choice(len(dataset), size=count, replace=False)
    partners = chosen[random_derangement(count, rng)]
    crops = collate([dataset[(int(i), args.seed * 1_000_003 + int(i))] for i in chosen])["views"][0]
    others = collate([dataset[(int(i), args.seed * 1_000_003 + int(i))] for i in partners])["views"][0]
    lam = torch.from_numpy(mixing_weights(count, args.alpha, rng))
    summary = {"vae_exp": str(args.vae_exp), "data_dir": str(args.data_dir), "num_pairs": count,
               "alpha": args.alpha, "seed": args.seed,
               "distance_from_line": summarise(line_distances(vae, crops, others, lam))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.out) as handle:
        json.dump(summary, handle, indent=2)
    print(f"Fig. 6 diagnostic: {count} pairs of {args.data_dir}, alpha {args.alpha}")
    print("| samples | mean distance from line X1X2 | median | mean / ‖X1 − X2‖ |")
    print("|---|---|---|---|")
    for kind, values in summary["distance_from_line"].items():
        print(f"| {kind} | {values['mean']:.3f} | {values['median']:.3f} | {values['relative_mean']:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
