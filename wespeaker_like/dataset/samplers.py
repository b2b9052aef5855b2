"""Batch samplers yielding lists of ``(dataset index, per-sample seed)``.

Each epoch's order is a pure function of (seed, epoch): ``set_epoch(epoch, start_batch)`` lets a
resumed run skip the batches it already trained on and see exactly the rest. Under DDP each rank
takes every ``world_size``-th batch, so all ranks run the same number of steps.
"""

from __future__ import annotations

from typing import Dict, Iterator, List, Sequence, Tuple

import numpy as np


class _EpochBatchSampler:
    def __init__(self, seed: int, rank: int = 0, world_size: int = 1):
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def epoch_batches(self, rng: np.random.Generator) -> List[List[int]]:
        raise NotImplementedError

    def _all_rank_batches(self) -> List[List[Tuple[int, int]]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        batches = self.epoch_batches(rng)
        batches = batches[: len(batches) // self.world_size * self.world_size]
        seeds = rng.integers(0, 2**31 - 1, size=sum(len(b) for b in batches))
        out, k = [], 0
        for batch in batches:
            out.append([(int(i), int(seeds[k + j])) for j, i in enumerate(batch)])
            k += len(batch)
        return out[self.rank::self.world_size]

    def __iter__(self) -> Iterator[List[Tuple[int, int]]]:
        yield from self._all_rank_batches()[self.start_batch:]

    def __len__(self) -> int:
        """Batches per epoch for this rank (before skipping)."""
        return len(self._all_rank_batches())


class RandomBatchSampler(_EpochBatchSampler):
    """Shuffled utterances in batches of ``batch_size`` (last partial batch dropped)."""

    def __init__(self, num_items: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        super().__init__(seed, rank, world_size)
        if num_items < batch_size * world_size:
            raise ValueError(f"{num_items} training utterances cannot fill one batch of {batch_size} "
                             f"on each of {world_size} ranks")
        self.num_items, self.batch_size = num_items, batch_size

    def epoch_batches(self, rng):
        order = rng.permutation(self.num_items)
        return [order[i:i + self.batch_size].tolist()
                for i in range(0, self.num_items - self.batch_size + 1, self.batch_size)]


class SpeakerBalancedBatchSampler(_EpochBatchSampler):
    """``speakers_per_batch`` distinct speakers × ``utts_per_speaker`` utterances each (voxceleb_trainer).

    Each epoch uses every speaker's utterances (up to ``max_utts_per_speaker``) in groups of
    ``utts_per_speaker``; groups are shuffled and packed so that no speaker repeats within a batch.
    """

    def __init__(self, speaker_of_index: Sequence[str], speakers_per_batch: int, utts_per_speaker: int = 2,
                 max_utts_per_speaker: int = 500, seed: int = 0, rank: int = 0, world_size: int = 1):
        super().__init__(seed, rank, world_size)
        self.by_speaker: Dict[str, List[int]] = {}
        for index, spk in enumerate(speaker_of_index):
            self.by_speaker.setdefault(spk, []).append(index)
        if len(self.by_speaker) < speakers_per_batch:
            raise ValueError(f"{len(self.by_speaker)} speakers cannot fill a batch of {speakers_per_batch} "
                             "distinct speakers")
        enough = sum(len(utts) >= utts_per_speaker for utts in self.by_speaker.values())
        if enough < speakers_per_batch:
            raise ValueError(f"only {enough} of {len(self.by_speaker)} speakers have the {utts_per_speaker} "
                             f"utterances a group needs (utts_per_speaker); a batch needs {speakers_per_batch} "
                             "such speakers (speakers_per_batch)")
        self.speakers_per_batch, self.utts_per_speaker = speakers_per_batch, utts_per_speaker
        self.max_utts = max_utts_per_speaker

    def epoch_batches(self, rng):
        groups = []
        for spk in sorted(self.by_speaker):
            utts = rng.permutation(self.by_speaker[spk])[: self.max_utts]
            for i in range(0, len(utts) - self.utts_per_speaker + 1, self.utts_per_speaker):
                groups.append((spk, utts[i:i + self.utts_per_speaker].tolist()))
        order = rng.permutation(len(groups))
        batches, open_batches = [], []
        for g in order:
            spk, utts = groups[g]
            for batch in open_batches:
                if spk not in batch[0]:
                    batch[0].add(spk)
                    batch[1].extend(utts)
                    break
            else:
                open_batches.append(({spk}, list(utts)))
            full = [b for b in open_batches if len(b[0]) == self.speakers_per_batch]
            for b in full:
                batches.append(b[1])
                open_batches.remove(b)
        return batches


def build_batch_sampler(cfg: dict, dataset, seed: int, rank: int, world_size: int):
    """``cfg``: ``{name: random, batch_size}`` or ``{name: speaker_balanced, speakers_per_batch,
    utts_per_speaker, max_utts_per_speaker}``; keys of the other kind are ignored (the schema fills them)."""
    name = cfg.get("name", "random")
    if name == "random":
        return RandomBatchSampler(len(dataset), cfg["batch_size"], seed, rank, world_size)
    if name == "speaker_balanced":
        if cfg.get("speakers_per_batch", 0) < 1:
            raise ValueError("the speaker_balanced sampler needs speakers_per_batch >= 1")
        return SpeakerBalancedBatchSampler(dataset.spk_of_index, cfg["speakers_per_batch"],
                                           cfg.get("utts_per_speaker", 2), cfg.get("max_utts_per_speaker", 500),
                                           seed=seed, rank=rank, world_size=world_size)
    raise ValueError(f"unknown sampler '{name}' (expected random or speaker_balanced)")
