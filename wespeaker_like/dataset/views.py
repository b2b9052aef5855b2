"""What one training view of an utterance is: crop length, placement, augmentation, masks, front-end.

An objective lists its views (``objective.views``); the dataset makes one array per view. Placement
is drawn on the utterance's timeline in view order, so a view may only refer to an earlier one:

- ``position="independent"``: a random start of its own.
- ``position="disjoint", relative_to=k``: a random start whose crop does not overlap view k's
  (002's two non-overlapping segments). When the utterance is too short for both, it is looped
  (read end to end again) and the crops are disjoint on that longer timeline.
- ``position="same", relative_to=k``: view k's start (004's original + augmented pair of one crop;
  001's STFT input and log-mel target of one crop, each through its own front-end).

Lengths are in frames of the view's front-end; an audio source turns them into samples with
``FrontEnd.num_samples`` and a feature source uses them as they are. Shorter utterances are looped.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import List, Mapping, Optional, Sequence, Tuple

import numpy as np

POSITIONS = ("independent", "disjoint", "same")
COPY = "copy"  # ``View.augment`` value: a random stage-2 copy of the utterance (through utt2uniq)

# Streams of a sample's random draws: each view's choices come from their own generator, so adding
# a view or an augmentation to one view never changes what another view gets.
STREAM_POSITION, STREAM_AUGMENT, STREAM_COPY, STREAM_MASK = 0, 1, 2, 3


def stream(seed: int, *keys: int) -> np.random.Generator:
    """The generator of one stream of one sample: depends only on (seed, keys)."""
    return np.random.default_rng([int(seed), *(int(k) for k in keys)])


@dataclass(frozen=True)
class SpecAugment:
    """SpecAugment-style masks on a view's features (T, F), applied with probability ``prob``.

    ``num_time`` masks of width U{time_width} frames and ``num_freq`` masks of width
    U{freq_width} bins (inclusive ranges), each at a uniform position; masked values become 0
    (the mean of normalised features). Views with the same ``group`` get the masks at the same
    positions and the same on/off draw (SDPN's four local views); ``group=None`` draws per view.
    """

    prob: float = 1.0
    time_width: Tuple[int, int] = (0, 10)
    freq_width: Tuple[int, int] = (0, 6)
    num_time: int = 1
    num_freq: int = 1
    group: Optional[str] = None

    def draw(self, rng: np.random.Generator, num_frames: int, dim: int) -> List[Tuple[int, int, int]]:
        """Masks as ``(axis, start, width)`` (axis 0 = time, 1 = frequency); empty if not applied."""
        if rng.random() >= self.prob:
            return []
        masks = []
        for axis, count, (low, high), size in ((0, self.num_time, self.time_width, num_frames),
                                               (1, self.num_freq, self.freq_width, dim)):
            for _ in range(count):
                width = min(int(rng.integers(low, high + 1)), size)
                start = int(rng.integers(0, size - width + 1))
                masks.append((axis, start, width))
        return masks


def apply_masks(feats, masks: Sequence[Tuple[int, int, int]]):
    """(T, F) array or tensor -> (T, F) copy with the masked rows/columns set to 0 (the dataset masks
    its views with it; l-mix masks the decoded features with it)."""
    if not masks:
        return feats
    feats = feats.clone() if hasattr(feats, "clone") else np.array(feats, copy=True)
    for axis, start, width in masks:
        if axis == 0:
            feats[start:start + width] = 0.0
        else:
            feats[:, start:start + width] = 0.0
    return feats


@dataclass(frozen=True)
class View:
    """One array an objective gets per sample.

    - ``num_frames``: crop length in frames (None: the whole utterance, feature source only).
    - ``position`` / ``relative_to``: ``independent``, or ``disjoint``/``same`` relative to an
      earlier view index (module docstring).
    - ``augment``: None (clean), the name of a profile of the dataset's ``augment.profiles``
      (on the fly; audio source), or ``"copy"``: the same crop of a random stage-2 copy of the
      utterance (same ``utt2uniq`` root and speaker).
    - ``spec_augment``: a ``SpecAugment`` or None.
    - ``frontend``: the name of a front-end of the dataset (``default`` = the config's
      ``features:``; others from ``dataset.frontends``); audio source only.

    ``View(200)`` is a plain random 200-frame crop, as the classification objective uses.
    """

    num_frames: Optional[int] = 200
    position: str = "independent"
    relative_to: Optional[int] = None
    augment: Optional[str] = None
    spec_augment: Optional[SpecAugment] = None
    frontend: str = "default"

    @classmethod
    def from_dict(cls, values: Mapping) -> "View":
        """From a config mapping (``spec_augment`` as a mapping, ranges as lists)."""
        values = dict(values)
        spec = values.pop("spec_augment", None)
        if spec is not None and not isinstance(spec, SpecAugment):
            spec = SpecAugment(**{k: tuple(v) if isinstance(v, list) else v for k, v in dict(spec).items()})
        return cls(spec_augment=spec, **values)


def check_views(views: Sequence[View]) -> None:
    """ValueError for a relation that names no earlier view or an unknown position."""
    for index, view in enumerate(views):
        if view.position not in POSITIONS:
            raise ValueError(f"view {index}: unknown position '{view.position}' (expected one of {', '.join(POSITIONS)})")
        if view.position == "independent":
            continue
        if view.relative_to is None or not 0 <= view.relative_to < index:
            raise ValueError(f"view {index}: position '{view.position}' needs relative_to = an earlier view index, "
                             f"got {view.relative_to}")
        if view.num_frames is None or views[view.relative_to].num_frames is None:
            raise ValueError(f"view {index}: position '{view.position}' needs crop lengths on both views")


def timeline_length(total: int, lengths: Sequence[int], views: Sequence[View]) -> int:
    """Length of the (looped if needed) timeline the crops are placed on: room for every crop and
    for each disjoint pair side by side."""
    need = max([total, *lengths])
    for view, length in zip(views, lengths):
        if view.position == "disjoint":
            need = max(need, length + lengths[view.relative_to])
    return need


def place_crops(total: int, lengths: Sequence[int], views: Sequence[View], rng: np.random.Generator) -> List[int]:
    """Start of each view's crop on a timeline of ``timeline_length(...)`` units (samples or frames).

    ``total``: the utterance length; ``lengths``: each view's crop length (the whole utterance for
    a view of ``num_frames=None``, start 0). Returns one start per view.
    """
    span = timeline_length(total, lengths, views)
    starts: List[int] = []
    for view, length in zip(views, lengths):
        if view.num_frames is None:
            starts.append(0)
        elif view.position == "same":
            starts.append(starts[view.relative_to])
        elif view.position == "disjoint":
            other, other_length = starts[view.relative_to], lengths[view.relative_to]
            wrapped = other + other_length > span
            before = 0 if wrapped else max(other - length + 1, 0)  # starts ending before the other crop
            after = 0 if wrapped else max(span - length - (other + other_length) + 1, 0)  # starts after it
            if before + after:
                draw = int(rng.integers(before + after))
                starts.append(draw if draw < before else other + other_length + draw - before)
            else:  # no room on either side, or the other crop wraps: place on the circular timeline
                draw = int(rng.integers(span - length - other_length + 1))
                starts.append((other + other_length + draw) % span)
        else:
            starts.append(int(rng.integers(span - length + 1)))
    return starts


def looped_ranges(start: int, length: int, total: int) -> List[Tuple[int, int]]:
    """``(offset, count)`` pieces of an utterance of ``total`` units that, read in order, give
    ``length`` units from ``start`` of the utterance repeated end to end."""
    pieces, position = [], start % total
    while length > 0:
        count = min(length, total - position)
        pieces.append((position, count))
        length -= count
        position = 0
    return pieces


def mask_draws(views: Sequence[View], shapes: Sequence[Tuple[int, int]], seed: int) -> List[list]:
    """The SpecAugment masks of each view; views of one ``group`` share the first member's draw."""
    by_group: dict = {}
    out = []
    for index, (view, (frames, dim)) in enumerate(zip(views, shapes)):
        spec = view.spec_augment
        if spec is None:
            out.append([])
            continue
        if spec.group is None:
            out.append(spec.draw(stream(seed, STREAM_MASK, index), frames, dim))
            continue
        if spec.group not in by_group:
            key = zlib.crc32(spec.group.encode("utf-8")) + 1_000_000
            by_group[spec.group] = spec.draw(stream(seed, STREAM_MASK, key), frames, dim)
        out.append(by_group[spec.group])
    return out


__all__ = ["View", "SpecAugment", "COPY", "apply_masks", "check_views", "place_crops", "looped_ranges",
           "mask_draws", "stream", "timeline_length"]
