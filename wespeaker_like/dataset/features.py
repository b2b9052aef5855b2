"""Training samples from a data dir: labelled, cropped, multi-view, from features or raw audio.

Two sources behind one dataset (``source``):

- ``feats``: ``feats.scp`` from stage 3, normalised as ``features.norm`` says; views are frame crops.
- ``audio``: ``wav.scp`` (+ ``segments``) through ``audio.source.AudioSource``, which reads only
  each crop; the configured front-end(s) run here, i.e. in the DataLoader workers. Views may be
  augmented on the fly with a named profile (``augment.profiles``) and speed perturbation adds
  copies of every utterance as new speakers (``sp0.9-<spk>``, as the offline stage 2 names them).
- ``auto``: ``feats`` when the data dir has ``feats.scp``, else ``audio``.

An objective declares its ``views`` (``dataset.views.View``) and its ``label_names`` (``spk`` from
``utt2spk``, ``dev`` from ``utt2dev``, ...). A batch sampler yields ``(index, seed)`` pairs and every
random choice of a sample (crop positions, augmentation, stage-2 copy, masks) comes from
generators seeded by that seed alone, so batches do not change with the number of loader workers
or when training resumes mid-epoch.

A batch is ``{"views": [Tensor(B, T_v, F_v) per view], "labels": {name: LongTensor(B)}, "utts": [str]}``.

Bad input: building the dataset checks every entry once (missing features; for audio: file
exists, header readable, at least ``min_seconds`` long) and lists the first offenders with
file:line. A read that fails later, inside a worker, raises an ``InputError`` naming the
utterance and its wav.scp line, which stops training; with ``skip_bad`` the sample is dropped from
its batch instead and a warning counts the skipped samples of that worker.
"""

from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from wespeaker_like.audio.io import speed_perturb
from wespeaker_like.augment.profiles import build_profiles, used_resources
from wespeaker_like.augment.resources import WHOLE_SECONDS, AugmentResources, Resource, fit_length
from wespeaker_like.data.kaldi_dir import DataDir, read_table
from wespeaker_like.dataset.views import (COPY, STREAM_AUGMENT, STREAM_COPY, STREAM_POSITION, View, apply_masks,
                                          check_views, looped_ranges, mask_draws, place_crops, stream)
from wespeaker_like.errors import InputError
from wespeaker_like.features.frontends import build_frontend
from wespeaker_like.data.scp import load_matrix, read_scp

log = logging.getLogger(__name__)

SOURCES = ("auto", "feats", "audio")
# A resource dir up to this many samples (by its utt2dur) is held whole in memory at the target rate,
# each item read and resampled once per worker; a bigger one (MUSAN, RIRS_NOISES at scale) is read
# by seeking to each random segment, with this cache for its short items.
RESOURCE_CACHE_SAMPLES = 100_000_000


def open_resource(path: str | Path, sample_rate: int) -> Resource:
    """A resource dir opened for on-the-fly use: in memory when it fits (see RESOURCE_CACHE_SAMPLES)."""
    utt2dur = Path(path) / "utt2dur"
    total = math.inf
    if utt2dur.is_file():
        durations = read_table(utt2dur).values()
        try:
            total = sum(float(value) for value in durations) * sample_rate
        except ValueError:
            raise InputError(utt2dur, "expected '<id> <seconds>' lines") from None
    whole_seconds = math.inf if total <= RESOURCE_CACHE_SAMPLES else WHOLE_SECONDS
    return Resource(path, cache_samples=RESOURCE_CACHE_SAMPLES, whole_seconds=whole_seconds)


def speed_speaker(spk: str, factor: float) -> str:
    """Speaker id of a speed-perturbed copy: ``sp0.9-<spk>`` (1.0 keeps ``spk``)."""
    return spk if factor == 1.0 else f"sp{factor:g}-{spk}"


class FeatureDataset(torch.utils.data.Dataset):
    """Index with ``(index, seed)``; returns ``(views: list of (T_v, F_v) arrays, labels: dict, utt)``
    (or None for a skipped bad sample with ``skip_bad``).

    ``features``: the front-end config (the config's ``features:`` section) for the audio source;
    ``frontends``: more named front-end configs for views that ask for them. ``augment``:
    ``{resources: {rirs, noise, music, speech: dir}, profiles: {name: settings}}``.
    ``speed_perturb``: extra speed factors, e.g. ``(0.9, 1.1)``: indices ``k * N + i`` are utterance
    i at factor k. ``originals_only``: iterate only the clean originals of a stage-2 data dir (their
    copies stay reachable through ``augment: copy`` views). ``views`` may be replaced after
    construction (the trainer sets the objective's).
    """

    def __init__(self, data_dir: str | Path, label_names: Sequence[str] = ("spk",),
                 views: Sequence[View] = (View(200),), label_maps: Optional[Dict[str, Dict[str, int]]] = None,
                 source: str = "auto", features: Optional[Mapping] = None,
                 frontends: Optional[Mapping[str, Mapping]] = None, augment: Optional[Mapping] = None,
                 speed_perturb: Sequence[float] = (), min_seconds: float = 0.0, skip_bad: bool = False,
                 originals_only: bool = False):
        self.data_dir = Path(data_dir)
        data = DataDir.load(self.data_dir)
        if source not in SOURCES:
            raise ValueError(f"unknown dataset source '{source}' (expected one of {', '.join(SOURCES)})")
        if source == "auto":
            source = "feats" if (self.data_dir / "feats.scp").is_file() else "audio"
        self.source = source
        self.utts: List[str] = data.utts
        self.skip_bad, self.skipped = skip_bad, 0
        # features.norm normalises precomputed features too, as extraction does (front-end's normalise)
        self.normalise = build_frontend(features or {}).normalise
        self.factors = [1.0] + [float(f) for f in speed_perturb]
        if source == "feats":
            self._open_feats(frontends, augment)
        else:
            self._open_audio(features, frontends, augment, min_seconds)
        self.utt2spk = data.utt2spk
        self.copies = self._stage2_copies(data)
        if originals_only:
            self.utts = self._originals(data)
        self.spk_of_index = [speed_speaker(data.utt2spk[u], f) for f in self.factors for u in self.utts]
        self.labels: Dict[str, List[int]] = {}
        self.label_maps: Dict[str, Dict[str, int]] = dict(label_maps or {})
        for name in label_names:
            if name == "spk":
                values = self.spk_of_index
            else:
                table = read_table(self.data_dir / f"utt2{name}")
                missing = [u for u in self.utts if u not in table]
                if missing:
                    raise InputError(self.data_dir / f"utt2{name}", f"no '{name}' label for '{missing[0]}'")
                values = [table[u] for u in self.utts] * len(self.factors)
            if name not in self.label_maps:
                self.label_maps[name] = {value: i for i, value in enumerate(sorted(set(values)))}
            mapping = self.label_maps[name]
            unknown = [v for v in values if v not in mapping]
            if unknown:
                raise InputError(self.data_dir / f"utt2{name}", f"'{name}' label '{unknown[0]}' is not among the "
                                 f"{len(mapping)} known classes")
            self.labels[name] = [mapping[v] for v in values]
        self.views = list(views)

    # ---- building -------------------------------------------------------------------------------

    def _open_feats(self, frontends, augment) -> None:
        feats_scp = self.data_dir / "feats.scp"
        self.feats = read_scp(feats_scp)
        missing = [u for u in self.utts if u not in self.feats]
        if missing:
            raise InputError(feats_scp, f"no features for utterance '{missing[0]}' ({len(missing)} missing; "
                             "run stage 3 or fix_data_dir)")
        for option, value in (("frontends", frontends), ("augment", augment), ("speed_perturb", self.factors[1:])):
            if value:
                raise InputError(feats_scp, f"dataset option '{option}' needs raw audio (dataset.source: audio); "
                                 "this data dir is read from its features")
        self.frontends, self.profiles, self.audio = {}, {}, None

    def _open_audio(self, features, frontends, augment, min_seconds) -> None:
        from wespeaker_like.audio.source import AudioSource

        if features is None:
            raise ValueError("the audio source needs the front-end config (features)")
        self.frontends = {"default": build_frontend(features)}
        for name, cfg in (frontends or {}).items():
            self.frontends[name] = build_frontend(cfg, source=f"dataset.frontends.{name}")
        rate = self.frontends["default"].sample_rate
        if any(fe.sample_rate != rate for fe in self.frontends.values()):
            raise ValueError(f"every front-end must use the sample rate of features ({rate} Hz)")
        self.sample_rate = rate
        self.audio = AudioSource.from_data_dir(self.data_dir, rate)
        known = set(self.audio.utts)
        missing = [u for u in self.utts if u not in known]
        if missing:
            raise InputError(self.data_dir / "wav.scp", f"no audio for utterance '{missing[0]}' "
                             f"({len(missing)} missing; run fix_data_dir)")
        self.audio.check(max(1, int(round(min_seconds * rate))))
        augment = dict(augment or {})
        profiles = augment.pop("profiles", None) or {}
        resource_dirs = augment.pop("resources", None) or {}
        if augment:
            raise ValueError(f"unknown dataset.augment key '{sorted(augment)[0]}' (expected resources, profiles)")
        needed = used_resources(profiles)
        absent = [name for name in needed if not resource_dirs.get(name)]
        if absent:
            raise ValueError(f"the augmentation profiles need dataset.augment.resources.{absent[0]}")
        resources = AugmentResources(**{name: open_resource(resource_dirs[name], rate) for name in needed})
        self.profiles = build_profiles(profiles, resources, rate)

    def _stage2_copies(self, data: DataDir) -> Dict[str, List[str]]:
        """Utterance -> the other utterances of its ``utt2uniq`` root with its speaker (stage-2 copies)."""
        utt2uniq = data.tables.get("utt2uniq", {})
        groups: Dict[Tuple[str, str], List[str]] = {}
        for utt in self.utts:
            groups.setdefault((utt2uniq.get(utt, utt), data.utt2spk[utt]), []).append(utt)
        return {utt: [u for u in groups[(utt2uniq.get(utt, utt), data.utt2spk[utt])] if u != utt]
                for utt in self.utts}

    def _originals(self, data: DataDir) -> List[str]:
        """The utterances that are their own ``utt2uniq`` root: the clean set of a stage-2 data dir."""
        utt2uniq = data.tables.get("utt2uniq", {})
        originals = [u for u in self.utts if utt2uniq.get(u, u) == u]
        if not originals:
            raise InputError(self.data_dir / "utt2uniq", "dataset.originals_only: no utterance is its own "
                             "utt2uniq root (expected '<utt> <utt>' lines for the clean originals)")
        return originals

    @property
    def views(self) -> List[View]:
        return self._views

    @views.setter
    def views(self, views: Sequence[View]) -> None:
        views = list(views)
        check_views(views)
        for index, view in enumerate(views):
            if view.augment not in (None, COPY) and view.augment not in self.profiles:
                known = ", ".join(sorted(self.profiles)) or "none configured"
                raise ValueError(f"view {index}: augmentation profile '{view.augment}' is not in "
                                 f"dataset.augment.profiles ({known})")
            if self.source == "audio" and view.frontend not in self.frontends:
                raise ValueError(f"view {index}: front-end '{view.frontend}' is not configured (default or "
                                 f"dataset.frontends: {', '.join(sorted(self.frontends))})")
            if self.source == "feats" and view.frontend != "default":
                raise ValueError(f"view {index}: front-end '{view.frontend}' needs dataset.source: audio")
            if view.augment == COPY and not any(self.copies.values()):
                raise InputError(self.data_dir / "utt2uniq", f"view {index} uses a stage-2 copy, but no utterance "
                                 "has a copy (same utt2uniq root and speaker)")
        self._views = views

    # ---- samples --------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.utts) * len(self.factors)

    def num_classes(self, name: str) -> int:
        return len(self.label_maps[name])

    def where(self, utt: str) -> str:
        """``file:line`` (or file) of an utterance's entry, for messages."""
        return self.audio.where(utt) if self.audio is not None else str(self.data_dir / "feats.scp")

    def __getitem__(self, item: Tuple[int, int]):
        index, seed = item
        utt = self.utts[index % len(self.utts)]
        factor = self.factors[index // len(self.utts)]
        try:
            with _one_thread():
                views = (self._feature_views(utt, seed) if self.source == "feats"
                         else self._audio_views(utt, factor, seed))
        except Exception as exc:  # any failure to read or decode: name the utterance and its entry
            named = isinstance(exc, InputError) and f"'{utt}'" in str(exc)
            error = exc if named else InputError(self.where(utt), f"utterance '{utt}': {exc}")
            if not self.skip_bad:
                raise error from (None if named else exc)
            self.skipped += 1
            log.warning("skipped a sample (%d so far in this worker): %s", self.skipped, error)
            return None
        labels = {name: values[index] for name, values in self.labels.items()}
        return views, labels, utt

    def _copy_for(self, utt: str, seed: int, view_index: int) -> str:
        copies = self.copies[utt]
        return copies[int(stream(seed, STREAM_COPY, view_index).integers(len(copies)))] if copies else utt

    def _feature_views(self, utt: str, seed: int) -> List[np.ndarray]:
        matrices: Dict[str, np.ndarray] = {}

        def matrix(key: str) -> np.ndarray:
            if key not in matrices:
                feats = load_matrix(self.feats[key], self.data_dir / "feats.scp", key)
                matrices[key] = self.normalise(feats).numpy()
            return matrices[key]

        total = matrix(utt).shape[0]
        lengths = [total if v.num_frames is None else v.num_frames for v in self.views]
        starts = place_crops(total, lengths, self.views, stream(seed, STREAM_POSITION))
        views = []
        for index, (view, start, length) in enumerate(zip(self.views, starts, lengths)):
            feats = matrix(self._copy_for(utt, seed, index) if view.augment == COPY else utt)
            views.append(np.concatenate([feats[o:o + n] for o, n in looped_ranges(start, length, feats.shape[0])]))
        return self._masked(views, seed)

    def _read(self, utt: str, start: int, length: int, factor: float) -> np.ndarray:
        """``length`` samples from ``start`` of the utterance (looped) played ``factor`` times faster."""
        if factor == 1.0:
            return np.concatenate([self.audio.read(utt, o, n)
                                   for o, n in looped_ranges(start, length, self.audio.num_samples(utt))])
        need = int(math.ceil(length * factor)) + 1
        native = np.concatenate([self.audio.read(utt, o, n)
                                 for o, n in looped_ranges(int(start * factor), need, self.audio.num_samples(utt))])
        return fit_length(speed_perturb(native, factor, self.sample_rate), length)

    def _audio_views(self, utt: str, factor: float, seed: int) -> List[np.ndarray]:
        total = int(self.audio.num_samples(utt) / factor)
        lengths = [total if v.num_frames is None else self.frontends[v.frontend].num_samples(v.num_frames)
                   for v in self.views]
        starts = place_crops(total, lengths, self.views, stream(seed, STREAM_POSITION))
        speaker = self.utt2spk[utt]
        views = []
        for index, (view, start, length) in enumerate(zip(self.views, starts, lengths)):
            wave = self._read(self._copy_for(utt, seed, index) if view.augment == COPY else utt, start, length, factor)
            if view.augment not in (None, COPY):
                wave = self.profiles[view.augment].apply(wave, stream(seed, STREAM_AUGMENT, index), speaker)
            views.append(self.frontends[view.frontend](wave).numpy())
        return self._masked(views, seed)

    def _masked(self, views: List[np.ndarray], seed: int) -> List[np.ndarray]:
        masks = mask_draws(self.views, [v.shape for v in views], seed)
        return [apply_masks(v, m) for v, m in zip(views, masks)]

    @classmethod
    def from_config(cls, data_dir: str | Path, dataset_cfg: Mapping, features_cfg: Mapping,
                    label_names: Sequence[str] = ("spk",)) -> "FeatureDataset":
        """From the config's ``dataset:`` and ``features:`` sections (train.py)."""
        cfg = dataset_cfg
        return cls(data_dir, label_names, source=cfg.get("source", "auto"),
                   features=features_cfg, frontends=cfg.get("frontends"), augment=cfg.get("augment"),
                   speed_perturb=cfg.get("speed_perturb") or (), min_seconds=cfg.get("min_seconds", 0.0),
                   skip_bad=cfg.get("skip_bad", False), originals_only=cfg.get("originals_only", False))


@contextlib.contextmanager
def _one_thread():
    """Compute a sample on one thread, as in a loader worker: matrix products and FFTs may round
    differently with more threads, and a sample must not depend on the number of workers."""
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def collate(samples) -> Dict[str, object]:
    """List of dataset items -> batch dict (views stacked to (B, T_v, F)); skipped (None) items dropped."""
    samples = [s for s in samples if s is not None]
    if not samples:
        raise RuntimeError("every sample of a batch was skipped as bad input (dataset.skip_bad); see the warnings")
    num_views = len(samples[0][0])
    views = [torch.from_numpy(np.stack([s[0][v] for s in samples])).float() for v in range(num_views)]
    labels = {name: torch.tensor([s[1][name] for s in samples], dtype=torch.long) for name in samples[0][1]}
    return {"views": views, "labels": labels, "utts": [s[2] for s in samples]}
