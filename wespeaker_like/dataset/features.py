"""Training samples from a data dir with ``feats.scp``: labelled, cropped, multi-view.

An objective declares its ``views`` (e.g. one 200-frame crop; one 400-frame + four 200-frame crops)
and its ``label_names`` (``spk`` from ``utt2spk``, ``dev`` from ``utt2dev``, …). A batch sampler
yields ``(index, seed)`` pairs, so every random choice of a sample depends only on that seed:
results do not change with the number of loader workers or when training resumes mid-epoch.

A batch is ``{"views": [Tensor(B, T_v, F) per view], "labels": {name: LongTensor(B)}, "utts": [str]}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from wespeaker_like.data.kaldi_dir import DataDir, read_table
from wespeaker_like.errors import InputError
from wespeaker_like.data.scp import load_matrix, read_scp
from wespeaker_like.features.kaldi_features import apply_cmn


@dataclass(frozen=True)
class View:
    """One crop of a sample: ``num_frames`` frames at a random offset (whole utterance if None)."""

    num_frames: Optional[int] = 200


def random_crop(feats: np.ndarray, num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """(T, F) -> (num_frames, F); utterances shorter than ``num_frames`` are repeated (wrapped)."""
    total = feats.shape[0]
    if total < num_frames:
        feats = np.concatenate([feats] * (num_frames // total + 1), axis=0)
        total = feats.shape[0]
    start = int(rng.integers(0, total - num_frames + 1))
    return feats[start:start + num_frames]


class FeatureDataset(torch.utils.data.Dataset):
    """Index with ``(index, seed)``; returns ``(views: list of (T_v, F) arrays, labels: dict, utt)``.

    ``views`` may be replaced after construction (the trainer sets the objective's).
    """

    def __init__(self, data_dir: str | Path, label_names: Sequence[str] = ("spk",), views: Sequence[View] = (View(200),),
                 label_maps: Optional[Dict[str, Dict[str, int]]] = None, cmn: bool = True):
        self.data_dir = Path(data_dir)
        data = DataDir.load(self.data_dir)
        feats_scp = self.data_dir / "feats.scp"
        self.feats = read_scp(feats_scp)
        missing = [u for u in data.utts if u not in self.feats]
        if missing:
            raise InputError(feats_scp, f"no features for utterance '{missing[0]}' ({len(missing)} missing; "
                             "run stage 3 or fix_data_dir)")
        self.utts: List[str] = data.utts
        self.views = list(views)
        self.cmn = cmn
        self.labels: Dict[str, List[int]] = {}
        self.label_maps: Dict[str, Dict[str, int]] = dict(label_maps or {})
        for name in label_names:
            table = data.utt2spk if name == "spk" else read_table(self.data_dir / f"utt2{name}")
            if name not in self.label_maps:
                self.label_maps[name] = {value: i for i, value in enumerate(sorted(set(table.values())))}
            mapping = self.label_maps[name]
            try:
                self.labels[name] = [mapping[table[u]] for u in self.utts]
            except KeyError as exc:
                raise InputError(self.data_dir / f"utt2{name}", f"no '{name}' label for {exc}") from None
        self.spk_of_index = [data.utt2spk[u] for u in self.utts]

    def __len__(self) -> int:
        return len(self.utts)

    def num_classes(self, name: str) -> int:
        return len(self.label_maps[name])

    def __getitem__(self, item: Tuple[int, int]):
        index, seed = item
        utt = self.utts[index]
        feats = load_matrix(self.feats[utt], self.data_dir / "feats.scp", utt)
        if self.cmn:
            feats = apply_cmn(feats)
        rng = np.random.default_rng(seed)
        views = [feats if v.num_frames is None else random_crop(feats, v.num_frames, rng) for v in self.views]
        labels = {name: values[index] for name, values in self.labels.items()}
        return views, labels, utt


def collate(samples) -> Dict[str, object]:
    """List of dataset items -> batch dict (views stacked to (B, T_v, F))."""
    num_views = len(samples[0][0])
    views = [torch.from_numpy(np.stack([s[0][v] for s in samples])).float() for v in range(num_views)]
    labels = {name: torch.tensor([s[1][name] for s in samples], dtype=torch.long) for name in samples[0][1]}
    return {"views": views, "labels": labels, "utts": [s[2] for s in samples]}
