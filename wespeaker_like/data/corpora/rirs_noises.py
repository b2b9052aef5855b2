"""RIRS_NOISES (OpenSLR 28) as the stage-2 ``rirs`` resource (simulated and real RIR lists).

Layout (``rirs_noises.zip`` extracted)::

    RIRS_NOISES/simulated_rirs/{smallroom,mediumroom,largeroom}/rir_list
    RIRS_NOISES/simulated_rirs/<room size>/Room<nnn>/Room<nnn>-<nnnnn>.wav
    RIRS_NOISES/real_rirs_isotropic_noises/rir_list  (+ noise_list, *.wav)
    RIRS_NOISES/pointsource_noises/                  (not used here)

``rir_list`` lines read ``--rir-id <id> --room-id <room> RIRS_NOISES/<path>.wav`` (paths relative
to the directory holding RIRS_NOISES/). Output resource dirs, each with ``wav.scp``
(``<rir id> <absolute path>``), ``utt2dur`` and an identity ``utt2spk``:
``<out>/rirs_noises/simulated`` (60,000 RIRs in the full set), ``<out>/rirs_noises/real`` (325),
and ``<out>/rirs_noises/rirs`` -- the union of the sets asked for, which is what stage 2 reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Sequence

from wespeaker_like.data.corpora.common import abspath, add_utt, durations, need_dir, need_file, summary, write_data_dir
from wespeaker_like.data.corpora.download import Archive
from wespeaker_like.data.kaldi_dir import table_lines
from wespeaker_like.errors import InputError

BASE_URL = "https://www.openslr.org/resources/28"
ARCHIVES = [Archive("rirs_noises.zip", md5="e6f48e257286e05de56413b4779d8ffb",
                    layout=(("RIRS_NOISES/simulated_rirs", "*/rir_list"),
                            ("RIRS_NOISES/real_rirs_isotropic_noises", "rir_list")))]
SIMULATED_ROOMS = ("smallroom", "mediumroom", "largeroom")
SETS = ("simulated", "real")
FULL = {"simulated": "60,000 RIRs (3 room sizes x 200 rooms x 100)", "real": "325 RIRs",
        "rirs": "the union of the sets prepared"}


def read_rir_list(path: Path, base: Path) -> Dict[str, str]:
    """``--rir-id <id> --room-id <room> <path>`` -> rir id -> absolute path (checked to exist)."""
    table: Dict[str, str] = {}
    for line in table_lines(path):
        fields = line.fields
        if len(fields) < 3 or "--rir-id" not in fields:
            raise line.expected("'--rir-id <id> --room-id <room> <path>.wav'")
        rir_id = fields[fields.index("--rir-id") + 1]
        audio = base / fields[-1]
        if not audio.is_file():
            raise line.error(f"RIR file '{fields[-1]}' not found (looked for {audio})")
        if rir_id in table:
            raise line.error(f"duplicate RIR id '{rir_id}'")
        table[rir_id] = abspath(audio)
    if not table:
        raise InputError(path, "rir_list is empty")
    return table


def prepare_rirs(src: Path, out: Path, sets: Sequence[str] = SETS, nj: int = 1,
                 name: str = "rirs_noises") -> Dict[str, Path]:
    """``src`` is the RIRS_NOISES directory itself."""
    src, out = Path(src), Path(out)
    need_dir(src, "the RIRS_NOISES directory (rirs_noises.zip extracted)")
    base = src.parent
    result: Dict[str, Path] = {}
    union: Dict[str, str] = {}
    union_dur: Dict[str, float] = {}
    for rir_set in sets:
        wav: Dict[str, str] = {}
        if rir_set == "simulated":
            for room in SIMULATED_ROOMS:
                lst = need_file(src / "simulated_rirs" / room / "rir_list",
                                f"the {room} RIR list '--rir-id <id> --room-id <room> <path>'")
                for key, value in read_rir_list(lst, base).items():
                    add_utt(wav, key, value, lst)
        elif rir_set == "real":
            lst = need_file(src / "real_rirs_isotropic_noises" / "rir_list",
                            "the real RIR list '--rir-id <id> --room-id <room> <path>'")
            wav = read_rir_list(lst, base)
        else:
            raise InputError(None, f"unknown RIR set '{rir_set}' (expected {', '.join(SETS)})")
        dur = durations(wav, nj)
        target = out / name / rir_set
        write_data_dir(target, wav, {u: u for u in wav}, dur)
        summary(f"{name}/{rir_set}", {u: u for u in wav}, target, FULL[rir_set])
        result[rir_set] = target
        for key, value in wav.items():
            add_utt(union, key, value, target)
        union_dur.update(dur)
    target = out / name / "rirs"
    write_data_dir(target, union, {u: u for u in union}, union_dur)
    summary(f"{name}/rirs", {u: u for u in union}, target, FULL["rirs"])
    result["rirs"] = target
    return result
