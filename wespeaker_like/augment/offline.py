"""Offline augmented copies of a Kaldi data dir (stage 2): reverb/noise/music/babble and speed.

Both ``augment_data_dir`` and ``speed_perturb_data_dir`` write one 16-bit FLAC per new utterance
(atomically; an existing file is kept, so a killed run resumes where it stopped) and then a
complete data dir (``wav.scp`` with absolute paths, ``utt2spk``, ``spk2utt``, ``utt2uniq``,
``utt2dur``, plus ``text``/``utt2dev``/``utt2lang``/``spk2gender``/``spk2age`` carried over).
``utt2uniq`` maps every copy to its clean root utterance (the source's own ``utt2uniq`` entry
when the source is itself a copy).

Naming:

- augmentation: ``<utt>-<type>`` (Kaldi's suffix), same speaker; audio in
  ``<audio_dir>/<type>/<spk>/<utt>-<type>.flac``.
- speed: ``sp<f>-<utt>`` and a NEW speaker ``sp<f>-<spk>`` (as 3D-Speaker/WeSpeaker do); audio
  in ``<audio_dir>/sp<f>/<spk>/sp<f>-<utt>.flac``.

Parallelism: ``nj`` local worker processes, or ``job``/``num_jobs`` (1-based JOB, contiguous
shares of the C-sorted task list) so a launcher can spread the audio over machines; a sharded
call writes only audio, and one final call without ``job`` (which finds all audio present) writes
the data dir. Every random draw comes from ``rng_for(seed, utt, type)``, so the output does not
depend on ``nj``/``num_jobs`` or on reruns.

``<audio_dir>/<type>/augment_settings.json`` (``<audio_dir>/sp<f>/speed_settings.json``) records
the settings that type's audio was made with (seed, rate, resource dir, SNR ranges); a later call
with different settings stops instead of mixing old and new files. Adding a type is fine.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import soundfile

from wespeaker_like.audio.io import speed_perturb, write_audio
from wespeaker_like.augment.augmenter import AUG_TYPES, RESOURCE_OF, AugmentConfig, Augmenter
from wespeaker_like.augment.resources import AugmentResources, Resource
from wespeaker_like.augment.rir import rng_for
from wespeaker_like.data.kaldi_dir import SPK_FILES, DataDir, c_sorted, job_split
from wespeaker_like.errors import InputError
from wespeaker_like.fileio import atomic_write

log = logging.getLogger(__name__)

# The AugmentConfig fields each type's audio depends on (recorded beside that type's audio).
CONFIG_OF = {"reverb": ("peak",), "noise": ("noise_snr", "peak"), "music": ("music_snr", "peak"),
             "babble": ("babble_snr", "num_babble", "peak")}
# Utterance-level labels that stay true for a corrupted copy.
CARRIED_FILES = ("text", "utt2dev", "utt2lang")

# A task: (new utterance id, source utterance id, output file, type or speed factor as text).
Task = Tuple[str, str, str, str]


def safe_name(name: str) -> str:
    """An id usable as one path component ('/' becomes '_')."""
    return name.replace("/", "_")


def _load_source(src: str | Path) -> Tuple[DataDir, Resource]:
    data = DataDir.load(src)
    data.validate(need=("wav.scp",))
    return data, Resource(src, cache_samples=0)


def _check_settings(audio_dir: Path, name: str, settings: dict) -> None:
    """Record ``settings`` in ``audio_dir/name``; stop if audio there was made with other settings."""
    path = audio_dir / name
    audio_dir.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            raise InputError(path, "not valid JSON (expected the settings of an earlier run)") from None
        if old != settings:
            changed = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
            raise InputError(path, f"audio here was made with different settings ({', '.join(changed)} "
                             "differ); use a new --audio_dir or delete this one")
        return
    with atomic_write(path) as handle:
        json.dump(settings, handle, indent=1, sort_keys=True)
        handle.write("\n")


# ---- workers --------------------------------------------------------------------------------

_STATE: dict = {}


def _init_worker(kind: str, spec: dict, pool_worker: bool = True) -> None:
    """Open the source and resources once per process. ``kind``: 'augment' or 'speed'."""
    if pool_worker:
        # One compute thread per worker: set before torch is first imported here (a rerun that
        # finds all audio present never imports it), or directly if it came with the fork.
        os.environ["OMP_NUM_THREADS"] = "1"
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(1)
    _STATE.clear()
    _STATE["kind"] = kind
    _STATE["spec"] = spec
    # Tasks are sorted by <utt>-<type>, so a small cache decodes each source utterance once.
    _STATE["source"] = Resource(spec["src"], cache_samples=2_000_000)
    _STATE["utt2spk"] = DataDir.load(spec["src"]).utt2spk
    if kind == "augment":
        resources = AugmentResources.from_dirs(**spec["resources"])
        _STATE["augmenter"] = Augmenter(resources, spec["types"], seed=spec["seed"], sample_rate=spec["sample_rate"],
                                        config=AugmentConfig.from_dict(spec["config"]))


def _run_task(task: Task):
    """Make one output file (or find it) -> ('ok', new id, frames) or ('error', InputError fields)."""
    new_id, utt, out_path, what = task
    try:
        path = Path(out_path)
        if path.is_file():
            return "ok", new_id, soundfile.info(out_path).frames
        rate = _STATE["spec"]["sample_rate"]
        samples = _STATE["source"].load(utt, rate)
        if _STATE["kind"] == "augment":
            augmenter: Augmenter = _STATE["augmenter"]
            out = augmenter.augment(samples, what, augmenter.rng_for(utt, what), speaker=_STATE["utt2spk"][utt])
        else:
            out = speed_perturb(samples, float(what), rate)
        write_audio(path, out, rate)
        return "ok", new_id, out.shape[0]
    except InputError as exc:  # InputError does not survive pickling; send its fields
        return "error", (exc.path, exc.detail, exc.line), None


def _run_tasks(kind: str, spec: dict, tasks: List[Task], nj: int) -> Dict[str, int]:
    """Run tasks in ``nj`` processes (in this one if nj == 1) -> {new id: number of samples}."""
    frames: Dict[str, int] = {}
    start, done = time.time(), 0

    def collect(result) -> None:
        nonlocal done
        status, key, value = result
        if status == "error":
            raise InputError(*key)
        frames[key] = value
        done += 1
        if done % 1000 == 0 or done == len(tasks):
            log.info("%d/%d utterances (%.1f s)", done, len(tasks), time.time() - start)

    if nj <= 1 or len(tasks) <= 1:
        _init_worker(kind, spec, pool_worker=False)
        # Resampling short signals is many times faster on one thread; restore the caller's.
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for task in tasks:
                collect(_run_task(task))
        finally:
            torch.set_num_threads(threads)
        return frames
    # fork is cheap: workers share modules imported here. Import torch (resampling) once before
    # forking unless every file already exists (then nobody needs it). Workers use one thread.
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    if method == "fork" and any(not Path(task[2]).is_file() for task in tasks):
        import torch  # noqa: F401
    context = multiprocessing.get_context(method)
    chunk = max(1, min(16, len(tasks) // (4 * nj)))
    with context.Pool(nj, initializer=_init_worker, initargs=(kind, spec)) as pool:
        for result in pool.imap(_run_task, tasks, chunksize=chunk):
            collect(result)
    return frames


# ---- data dirs ------------------------------------------------------------------------------

def _new_data_dir(src: DataDir, tasks: List[Task], frames: Dict[str, int], sample_rate: int,
                  new_speaker) -> DataDir:
    """Tables for the copies; ``new_speaker(spk, what)`` names a copy's speaker."""
    root = src.tables.get("utt2uniq", {})
    tables: Dict[str, Dict[str, str]] = {name: {} for name in ("wav.scp", "utt2spk", "utt2uniq", "utt2dur")}
    carried = [name for name in CARRIED_FILES if name in src.tables]
    for name in carried:
        tables[name] = {}
    spk_map: Dict[str, str] = {}
    for new_id, utt, out_path, what in tasks:
        spk = src.utt2spk[utt]
        spk_map[new_speaker(spk, what)] = spk
        tables["wav.scp"][new_id] = str(Path(out_path).resolve())
        tables["utt2spk"][new_id] = new_speaker(spk, what)
        tables["utt2uniq"][new_id] = root.get(utt, utt)
        tables["utt2dur"][new_id] = f"{frames[new_id] / sample_rate:.4f}"
        for name in carried:
            tables[name][new_id] = src.tables[name][utt]
    for name in SPK_FILES:
        if name in src.tables:
            tables[name] = {new: src.tables[name][old] for new, old in spk_map.items()}
    return DataDir(tables)


def _write_combined(src: DataDir, source: Resource, copies: DataDir, out: Path) -> DataDir:
    """Clean + copies; clean utterances get utt2uniq = themselves (or their existing root)."""
    if "segments" in src.tables:
        raise InputError(src.path / "segments", "cannot combine a data dir with segments with its copies "
                         "(the copies have one file per utterance); extract the segments first")
    clean = src.subset(src.utts)
    clean.tables["utt2uniq"] = {utt: src.tables.get("utt2uniq", {}).get(utt, utt) for utt in src.utts}
    if "utt2dur" not in clean.tables:
        clean.tables["utt2dur"] = {utt: f"{source.duration(utt):.4f}" for utt in src.utts}
    combined = DataDir.combine([clean, copies])
    combined.save(out)
    combined.validate()
    return combined


def _finish(src: DataDir, source: Resource, tasks: List[Task], frames: Dict[str, int], sample_rate: int,
            new_speaker, out: str | Path, combined_out: Optional[str | Path]) -> DataDir:
    copies = _new_data_dir(src, tasks, frames, sample_rate, new_speaker)
    copies.save(Path(out))
    copies.validate()
    if combined_out is not None:
        _write_combined(src, source, copies, Path(combined_out))
    return copies


def _check_unique_paths(tasks: List[Task]) -> None:
    seen: Dict[str, str] = {}
    for new_id, _, out_path, _ in tasks:
        if out_path in seen:
            raise InputError(None, f"utterances '{seen[out_path]}' and '{new_id}' map to the same file "
                             f"{out_path} (ids differing only by '/' vs '_')")
        seen[out_path] = new_id


def plan_augmentation(utts: Sequence[str], utt2spk: Dict[str, str], types: Sequence[str], seed: int,
                      audio_dir: Path, max_copies_per_utt: Optional[int] = None,
                      num_utts: Optional[int] = None) -> List[Task]:
    """The (C-sorted) list of copies to make: every utt x type, or a seeded random subset.

    ``max_copies_per_utt`` keeps that many random types per utterance; ``num_utts`` then keeps
    that many random copies overall (Kaldi subsets the augmented set this way).
    """
    tasks = []
    for utt in utts:
        chosen = list(types)
        if max_copies_per_utt is not None and max_copies_per_utt < len(chosen):
            picks = rng_for(seed, utt, "copies").choice(len(chosen), size=max_copies_per_utt, replace=False)
            chosen = [chosen[i] for i in sorted(picks)]
        for aug_type in chosen:
            new_id = f"{utt}-{aug_type}"
            path = audio_dir / aug_type / safe_name(utt2spk[utt]) / f"{safe_name(new_id)}.flac"
            tasks.append((new_id, utt, str(path), aug_type))
    if num_utts is not None and num_utts < len(tasks):
        keep = rng_for(seed, "num_utts").choice(len(tasks), size=num_utts, replace=False)
        tasks = [tasks[i] for i in keep]
    order = c_sorted(t[0] for t in tasks)
    by_id = {t[0]: t for t in tasks}
    return [by_id[key] for key in order]


def augment_data_dir(src: str | Path, out: str | Path, audio_dir: str | Path,
                     types: Sequence[str] = AUG_TYPES, rirs: str | Path | None = None,
                     noise: str | Path | None = None, music: str | Path | None = None,
                     babble_from: str | Path | None = None, seed: int = 0, sample_rate: int = 16000,
                     nj: int = 1, job: Optional[int] = None, num_jobs: Optional[int] = None,
                     max_copies_per_utt: Optional[int] = None, num_utts: Optional[int] = None,
                     combined_out: str | Path | None = None,
                     config: Optional[AugmentConfig] = None) -> Optional[DataDir]:
    """Write augmented copies of data dir ``src`` to ``out`` (audio under ``audio_dir``).

    ``babble_from`` is a resource dir or a Kaldi data dir (its utt2spk keeps babble to other
    speakers). Returns the new DataDir, or None for a ``job`` share (audio only).
    """
    types = list(types)
    for aug_type in types:
        if aug_type not in AUG_TYPES:
            raise InputError(None, f"unknown augmentation type '{aug_type}' (expected some of {','.join(AUG_TYPES)})")
    if len(set(types)) != len(types) or not types:
        raise InputError(None, f"types must be distinct and not empty, got {','.join(types)}")
    dirs = {"rirs": rirs, "noise": noise, "music": music, "speech": babble_from}
    option = {"rirs": "--rirs", "noise": "--noise", "music": "--music", "speech": "--babble_from"}
    for aug_type in types:
        if dirs[RESOURCE_OF[aug_type]] is None:
            raise InputError(None, f"type '{aug_type}' needs {option[RESOURCE_OF[aug_type]]}")
    dirs = {k: str(Path(v).resolve()) for k, v in dirs.items() if v is not None and k in
            {RESOURCE_OF[t] for t in types}}
    config = config or AugmentConfig()
    src_dir, audio_dir = Path(src), Path(audio_dir).resolve()
    data, source = _load_source(src_dir)
    # Open everything once here so bad resource dirs fail before any work starts.
    Augmenter(AugmentResources.from_dirs(**dirs, cache_samples=0), types, seed=seed, sample_rate=sample_rate,
              config=config)
    tasks = plan_augmentation(data.utts, data.utt2spk, types, seed, audio_dir, max_copies_per_utt, num_utts)
    _check_unique_paths(tasks)
    for aug_type in types:
        _check_settings(audio_dir / aug_type, "augment_settings.json",
                        {"seed": seed, "sample_rate": sample_rate, "resource": dirs[RESOURCE_OF[aug_type]],
                         "config": {k: v for k, v in config.as_dict().items() if k in CONFIG_OF[aug_type]}})
    spec = {"src": str(src_dir.resolve()), "resources": dirs, "types": types, "seed": seed,
            "sample_rate": sample_rate, "config": config.as_dict()}
    share = tasks if job is None else job_split(tasks, job, num_jobs or 1)
    frames = _run_tasks("augment", spec, share, nj)
    if job is not None:
        log.info("job %d/%d: %d copies in %s", job, num_jobs, len(share), audio_dir)
        return None
    return _finish(data, source, tasks, frames, sample_rate, lambda spk, what: spk, out, combined_out)


def factor_name(factor: float) -> str:
    """``sp0.9`` for 0.9, ``sp1.1`` for 1.1."""
    return f"sp{factor:g}"


def speed_perturb_data_dir(src: str | Path, out: str | Path, audio_dir: str | Path,
                           factors: Sequence[float] = (0.9, 1.1), sample_rate: int = 16000, nj: int = 1,
                           job: Optional[int] = None, num_jobs: Optional[int] = None,
                           combined_out: str | Path | None = None) -> Optional[DataDir]:
    """Speed-perturbed copies ``sp<f>-<utt>`` of every utterance, as new speakers ``sp<f>-<spk>``.

    Audio is resampled (tempo and pitch change together, length N/f). Returns the new DataDir,
    or None for a ``job`` share (audio only).
    """
    factors = [float(f) for f in factors]
    if not factors or any(f <= 0 or f == 1.0 for f in factors) or len(set(factors)) != len(factors):
        raise InputError(None, f"factors must be distinct, positive and not 1.0 (use --combined_out to keep "
                         f"the originals), got {factors}")
    src_dir, audio_dir = Path(src), Path(audio_dir).resolve()
    data, source = _load_source(src_dir)
    tasks = []
    for utt in data.utts:
        for factor in factors:
            prefix = factor_name(factor)
            new_id = f"{prefix}-{utt}"
            path = audio_dir / prefix / safe_name(f"{prefix}-{data.utt2spk[utt]}") / f"{safe_name(new_id)}.flac"
            tasks.append((new_id, utt, str(path), repr(factor)))
    tasks = [t for _, t in sorted((t[0].encode("utf-8"), t) for t in tasks)]
    _check_unique_paths(tasks)
    for factor in factors:
        _check_settings(audio_dir / factor_name(factor), "speed_settings.json", {"sample_rate": sample_rate})
    spec = {"src": str(src_dir.resolve()), "sample_rate": sample_rate}
    share = tasks if job is None else job_split(tasks, job, num_jobs or 1)
    frames = _run_tasks("speed", spec, share, nj)
    if job is not None:
        log.info("job %d/%d: %d copies in %s", job, num_jobs, len(share), audio_dir)
        return None
    return _finish(data, source, tasks, frames, sample_rate,
                   lambda spk, what: f"{factor_name(float(what))}-{spk}", out, combined_out)


__all__ = ["augment_data_dir", "speed_perturb_data_dir", "plan_augmentation", "safe_name",
           "factor_name", "CARRIED_FILES"]
