"""FFSVC2020 training data (train + dev + supplementary) with speaker and device labels, and the
FFSVC2022 development set with its official trials.

The corpus is distributed on request (AISHELL; the FFSVC2022 sets through Zenodo), so there is
no public download and the prep relies only on file and folder names. Expected under the root, as
the archives extract (at any depth; other files, e.g. the evaluation sets, are left alone)::

    .../train/<V><SSSS>/<sss><DEVICE><DISTANCE>/<name>.wav   FFSVC2020 train (e.g. wav/train/...)
    .../dev/<V><SSSS>/<sss><DEVICE><DISTANCE>/<name>.wav     FFSVC2020 dev
    .../supplementary/**/<name>.wav                          FFSVC2020 supplementary set
    .../ffsvc22_dev_<nnnnnn>.wav                             FFSVC2022 dev (its archive: dev/ffsvc22_dev_*.wav)
    dev_meta_list     'Original_Name FFSVC2022_Name' header, then '<original> ffsvc22_dev_<nnnnnn>'
    trials_dev_keys   '<1|0> ffsvc22_dev_<nnnnnn>.wav ffsvc22_dev_<nnnnnn>.wav'

An FFSVC2020 set is the nearest enclosing folder named ``train``, ``dev`` or ``supplementary``
(e.g. ``wav/dev/T0549/549PCM5M/T0549_549PCM5M_recorded6_0305_normal.wav``); FFSVC2022 dev files are
told apart by their ``ffsvc22_dev_`` names even inside a ``dev/`` folder; ``dev_meta_list`` and
``trials_dev_keys`` are found anywhere under the root when not given.

FFSVC2020 utterance names read ``<V><SSSS>_<sss><DEVICE><DISTANCE>_<channel>_<index>_<pace>``, e.g.
``T0549_549PCM5M_recorded6_0305_normal``: visit V (F/S/T = first/second/third), speaker SSSS, then
the recording condition: a device code followed by its distance/position -- ``I`` iPhone,
``PAD`` iPad, ``PCM`` (also ``PCML``/``PCMR``, the left/right arrays) the circular microphone
array, ``MIC`` the close-talking microphone -- e.g. ``I0.25M``, ``PAD5M``, ``PCM-1.5M``,
``PCML3M``, ``IL3M``, ``MIC``. The device label (``utt2dev``) is that code (PCML/PCMR fold into
PCM); with ``device_label="device_distance"`` it is ``<device>_<rest>`` (``PCM_5M``, ``I_0.25M``,
``MIC``). Speakers are ``ffsvc<SSSS>``, utterances ``ffsvc<SSSS>-<name>``; FFSVC2022 dev utterances
``ffsvc<SSSS>-ffsvc22_dev_<nnnnnn>`` with speaker and device taken from ``dev_meta_list``.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from wespeaker_like.data.corpora.common import (
    abspath, add_utt, check_speakers_disjoint, check_trials, durations, find_audio, need_dir, need_file,
    save_trials, summary, write_data_dir,
)
from wespeaker_like.data.kaldi_dir import table_lines
from wespeaker_like.data.trials import Trial
from wespeaker_like.errors import InputError

NAME = re.compile(r"^(?P<visit>[A-Z])(?P<spk>\d{4})_(?P<spk_short>\d+)(?P<cond>[A-Z][A-Za-z0-9.\-]*)_"
                  r"(?P<channel>[^_]+)_(?P<index>\d+)_(?P<pace>[a-z]+)$")
PATTERN_TEXT = "<V><SSSS>_<sss><DEVICE><DISTANCE>_<channel>_<index>_<pace> (e.g. T0549_549PCM5M_recorded6_0305_normal)"
DEVICE_CODES = ("PCM", "PAD", "MIC", "I")  # longest first where prefixes overlap
DEVICE_NAMES = {"I": "iPhone", "PAD": "iPad", "PCM": "circular microphone array", "MIC": "close-talking microphone"}
SUBSETS = ("train", "dev", "supplementary")
DEV2022_NAME = re.compile(r"^ffsvc22_dev_\d+$")
DEV2022_TEXT = "ffsvc22_dev_<nnnnnn>.wav (the FFSVC2022 dev archive extracts to dev/ffsvc22_dev_*.wav)"
FULL = {
    "ffsvc_train": "155 speakers, 2,548,351 utterances; 2,542,392 after dropping those under 1 s",
    "ffsvc2022_dev": "FFSVC2022 development set",
    "ffsvc2022_dev_trials": "FFSVC2022 development trials (trials_dev_keys)",
}


def parse_name(name: str, device_label: str = "device", source: Path | str = "<name>") -> Tuple[str, str]:
    """FFSVC2020 utterance name -> (speaker id 'ffsvc<SSSS>', device label)."""
    match = NAME.match(name)
    if match is None:
        raise InputError(source, f"file name '{name}' does not follow the FFSVC pattern {PATTERN_TEXT}")
    cond = match.group("cond")
    for code in DEVICE_CODES:
        if cond.startswith(code):
            device, rest = code, cond[len(code):]
            break
    else:
        raise InputError(source, f"unknown device code in '{cond}' of '{name}' "
                         f"(expected one of {', '.join(DEVICE_CODES)} followed by the distance)")
    if device_label == "device_distance":
        label = f"{device}_{rest}" if rest else device
    elif device_label == "device":
        label = device
    else:
        raise InputError(None, f"device label must be 'device' or 'device_distance', got '{device_label}'")
    return f"ffsvc{match.group('spk')}", label


def find_audio_as_shipped(root: Path) -> Tuple[Dict[str, List[Path]], List[Path]]:
    """All ``.wav`` files under ``root``: FFSVC2020 ones by set (the nearest enclosing folder named
    like a set) and FFSVC2022 dev ones (``ffsvc22_dev_*``). Files in no set folder are left alone."""
    sets: Dict[str, List[Path]] = {subset: [] for subset in SUBSETS}
    dev2022: List[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        parts = Path(folder).relative_to(root).parts
        enclosing = next((part for part in reversed(parts) if part in SUBSETS), None)
        for name in sorted(files):
            if not name.endswith(".wav"):
                continue
            if DEV2022_NAME.match(name[:-4]):
                dev2022.append(Path(folder) / name)
            elif enclosing is not None:
                sets[enclosing].append(Path(folder) / name)
    return sets, dev2022


def scan_subset(files: Sequence[Path], device_label: str) -> Tuple[Dict[str, str], Dict[str, str], Dict[str, str]]:
    wav: Dict[str, str] = {}
    utt2spk: Dict[str, str] = {}
    utt2dev: Dict[str, str] = {}
    for path in files:
        spk, dev = parse_name(path.stem, device_label, path)
        utt = f"{spk}-{path.stem}"
        add_utt(wav, utt, abspath(path), path)
        utt2spk[utt] = spk
        utt2dev[utt] = dev
    return wav, utt2spk, utt2dev


def find_list(root: Path, name: str, what: str) -> Path:
    """``root/name``, else the one file called ``name`` anywhere under ``root``."""
    if (root / name).is_file():
        return root / name
    found = sorted(p for p in root.rglob(name) if p.is_file())
    if len(found) > 1:
        raise InputError(found[1], f"a second '{name}' (also {found[0]}); expected one, or pass it explicitly")
    if not found:
        raise InputError(root / name, f"file not found here or below (expected {what})")
    return found[0]


def read_meta(path: Path) -> Dict[str, str]:
    """``dev_meta_list``: FFSVC2022 name -> original FFSVC-style name."""
    table: Dict[str, str] = {}
    for line in table_lines(path):
        if line.fields == ["Original_Name", "FFSVC2022_Name"]:
            continue
        if len(line.fields) != 2:
            raise line.expected("'<original name> <FFSVC2022 name>'")
        original, new = line.fields[0], line.fields[1].rsplit(".wav", 1)[0]
        if new in table:
            raise line.error(f"duplicate FFSVC2022 name '{new}'")
        table[new] = original
    if not table:
        raise InputError(path, "dev_meta_list is empty")
    return table


def read_ffsvc_trials(path: Path, name2utt: Dict[str, str]) -> List[Trial]:
    trials = []
    for line in table_lines(path):
        fields = line.fields
        if len(fields) != 3 or fields[0] not in ("0", "1"):
            raise line.expected("'<1|0> <name>.wav <name>.wav'")
        utts = []
        for entry in fields[1:]:
            key = Path(entry).name.rsplit(".wav", 1)[0]
            if key not in name2utt:
                raise line.error(f"trial names '{entry}', which is not in the FFSVC2022 dev audio or dev_meta_list")
            utts.append(name2utt[key])
        trials.append(Trial(utts[0], utts[1], fields[0] == "1"))
    if not trials:
        raise InputError(path, "trial list is empty")
    return trials


def prepare_ffsvc(src: Path, out: Path, subsets: Sequence[str] = SUBSETS, min_duration: float = 1.0,
                  device_label: str = "device", dev2022: Optional[Path] = None, meta: Optional[Path] = None,
                  trials: Optional[Path] = None, nj: int = 1) -> Dict[str, Path]:
    """Write ``ffsvc_train`` (utterances of at least ``min_duration`` s, with utt2dev) and
    ``ffsvc2022_dev`` (with utt2dev and ``trials/ffsvc2022_dev.kaldi``)."""
    src, out = Path(src), Path(out)
    need_dir(src, "the FFSVC root holding the extracted FFSVC2020 sets and the FFSVC2022 dev set")
    for subset in subsets:
        if subset not in SUBSETS:
            raise InputError(None, f"unknown FFSVC2020 subset '{subset}' (expected {', '.join(SUBSETS)})")
    sets, dev_files = find_audio_as_shipped(src)
    wav, utt2spk, utt2dev = {}, {}, {}
    for subset in subsets:
        if not sets[subset]:
            raise InputError(src, f"no FFSVC2020 {subset} audio found: expected .wav files named {PATTERN_TEXT} "
                             f"under a folder named '{subset}' (e.g. wav/{subset}/<V><SSSS>/<sss><DEVICE><DISTANCE>/)")
        w, s, d = scan_subset(sets[subset], device_label)
        for utt in w:
            if utt in wav:
                raise InputError(w[utt], f"duplicate utterance '{utt}' (also {wav[utt]})")
        wav.update(w)
        utt2spk.update(s)
        utt2dev.update(d)

    # FFSVC2022 dev, read before writing anything so a layout error or speaker overlap stops early.
    meta = Path(meta) if meta else find_list(src, "dev_meta_list", "the FFSVC2022 dev_meta_list "
                                            "('<original name> ffsvc22_dev_<n>')")
    trials = Path(trials) if trials else find_list(src, "trials_dev_keys", "the FFSVC2022 development trials "
                                                  "trials_dev_keys ('<1|0> <a>.wav <b>.wav')")
    need_file(meta, "the FFSVC2022 dev_meta_list ('<original name> ffsvc22_dev_<n>')")
    need_file(trials, "the FFSVC2022 development trials trials_dev_keys ('<1|0> <a>.wav <b>.wav')")
    names = read_meta(meta)
    if dev2022:
        dev_root = need_dir(dev2022, f"FFSVC2022 development audio {DEV2022_TEXT}")
        dev_files = find_audio(dev_root, ".wav", f"FFSVC2022 development audio {DEV2022_TEXT}")
    elif dev_files:
        dev_root = dev_files[0].parent
    else:
        raise InputError(src, f"no FFSVC2022 development audio found here or below (expected {DEV2022_TEXT})")
    dev_wav, dev_spk, dev_dev, name2utt = {}, {}, {}, {}
    for path in dev_files:
        if path.stem not in names:
            raise InputError(meta, f"no line for '{path.stem}' (found {path}); expected every dev file listed")
        spk, dev = parse_name(names[path.stem], device_label, meta)
        utt = f"{spk}-{path.stem}"
        add_utt(dev_wav, utt, abspath(path), path)
        dev_spk[utt] = spk
        dev_dev[utt] = dev
        name2utt[path.stem] = utt
    check_speakers_disjoint(utt2spk, dev_spk, src, dev_root)
    trial_list = read_ffsvc_trials(trials, name2utt)
    check_trials(trial_list, dev_wav, trials, out / "ffsvc2022_dev")

    dur = durations(wav, nj)
    keep = {u for u, d in dur.items() if d >= min_duration}
    dropped = len(wav) - len(keep)
    if not keep:
        raise InputError(src, f"every utterance is shorter than {min_duration} s")
    train = out / "ffsvc_train"
    write_data_dir(train, {u: wav[u] for u in keep}, {u: utt2spk[u] for u in keep}, {u: dur[u] for u in keep},
                   extra={"utt2dev": {u: utt2dev[u] for u in keep}})
    print(f"ffsvc_train: dropped {dropped} of {len(wav)} utterances shorter than {min_duration:g} s", flush=True)
    summary("ffsvc_train", {u: utt2spk[u] for u in keep}, train, FULL["ffsvc_train"])
    counts = Counter(utt2dev[u] for u in keep)
    print("ffsvc_train devices: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), flush=True)

    dev_out = out / "ffsvc2022_dev"
    write_data_dir(dev_out, dev_wav, dev_spk, durations(dev_wav, nj), extra={"utt2dev": dev_dev})
    summary("ffsvc2022_dev", dev_spk, dev_out, FULL["ffsvc2022_dev"])
    target = dev_out / "trials" / "ffsvc2022_dev.kaldi"
    save_trials(target, trial_list)
    print(f"ffsvc2022_dev trials: {len(trial_list)} ({sum(t.is_target for t in trial_list)} target) -> {target}",
          flush=True)
    return {"ffsvc_train": train, "ffsvc2022_dev": dev_out, "ffsvc2022_dev_trials": target}
