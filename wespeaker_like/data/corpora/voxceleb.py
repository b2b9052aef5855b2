"""VoxCeleb1 (dev/test + Vox1-O/E/H trials) and VoxCeleb2 dev (AAC, decoded through ffmpeg).

Layout expected under the corpus root (what the official archives extract to)::

    voxceleb1/dev/wav/<spk>/<video>/<nnnnn>.wav      vox1_dev_wav.zip (parts aa-ad) unzipped into dev/
    voxceleb1/test/wav/<spk>/<video>/<nnnnn>.wav     vox1_test_wav.zip unzipped into test/
    voxceleb1/{veri_test,veri_test2,list_test_all,list_test_all2,list_test_hard,list_test_hard2}.txt
    voxceleb2/dev/aac/<spk>/<video>/<nnnnn>.m4a      vox2_dev_aac (parts aa-ah) unzipped
    voxceleb1/vox1_meta.csv, voxceleb2/vox2_meta.csv  optional speaker metadata (.../meta/): spk2gender

``vox1_meta.csv`` is TAB-separated (``id10001<TAB>A.J._Buckley<TAB>m<TAB>Ireland<TAB>dev``; the
nationality may contain spaces); ``vox2_meta.csv`` starts with a UTF-8 byte-order mark, ends its
lines with CRLF and pads its fields (``id00012 ,n000012 ,m ,dev ``). Both give ``spk2gender``.

Utterance ids follow the Kaldi/WeSpeaker convention: ``id10001/1zcIwhmdeo4/00001.wav`` becomes
``id10001-1zcIwhmdeo4-00001``, so every id starts with its speaker id and sorts with it. The
official trial lines ``1 id10270/x6uYqmx31kE/00001.wav id10270/8jEAjG6SegY/00008.wav`` become
``id10270-x6uYqmx31kE-00001 id10270-8jEAjG6SegY-00008 target``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from wespeaker_like.data.corpora.common import (
    abspath, add_utt, check_speakers_disjoint, check_trials, durations, find_audio, need_dir, need_file,
    parallel_map, save_trials, speaker_video_utt, summary, write_data_dir,
)
from wespeaker_like.data.corpora.download import Archive
from wespeaker_like.data.kaldi_dir import numbered_lines, table_lines
from wespeaker_like.data.trials import Trial
from wespeaker_like.errors import InputError

BASE_URL = "https://thor.robots.ox.ac.uk/~vgg/data/voxceleb/vox1a"
META_URL = "https://www.robots.ox.ac.uk/~vgg/data/voxceleb/meta"

# MD5 sums as published with the archives (the VoxCeleb download page; also in the WeSpeaker and
# PaddleSpeech VoxCeleb recipes).
VOX1_ARCHIVES = [
    Archive("vox1_dev_wav.zip", md5="ae63e55b951748cc486645f532ba230b",
            parts=("vox1_dev_wav_partaa", "vox1_dev_wav_partab", "vox1_dev_wav_partac", "vox1_dev_wav_partad"),
            part_md5={"vox1_dev_wav_partaa": "e395d020928bc15670b570a21695ed96",
                      "vox1_dev_wav_partab": "bbfaaccefab65d82b21903e81a8a8020",
                      "vox1_dev_wav_partac": "017d579a2a96a077f40042ec33e51512",
                      "vox1_dev_wav_partad": "7bb1e9f70fddc7a678fa998ea8b3ba19"},
            extract_to="voxceleb1/dev", layout=(("wav", "id1*/*/*.wav"),)),
    Archive("vox1_test_wav.zip", md5="185fdc63c3c739954633d50379a3d102", extract_to="voxceleb1/test",
            layout=(("wav", "id1*/*/*.wav"),)),
]
# Trial lists: no MD5 is published for them.
TRIAL_FILES = {
    "vox1_O": "veri_test.txt", "vox1_O_cleaned": "veri_test2.txt",
    "vox1_E": "list_test_all.txt", "vox1_E_cleaned": "list_test_all2.txt",
    "vox1_H": "list_test_hard.txt", "vox1_H_cleaned": "list_test_hard2.txt",
}
VOX1_TRIAL_ARCHIVES = [Archive(name, extract=False, extract_to="voxceleb1", url_dir=META_URL)
                       for name in TRIAL_FILES.values()]
VOX2_ARCHIVES = [
    Archive("vox2_aac.zip", md5="bbc063c46078a602ca71605645c2a402",
            parts=tuple(f"vox2_dev_aac_parta{c}" for c in "abcdefgh"),
            part_md5={"vox2_dev_aac_partaa": "da070494c573e5c0564b1d11c3b20577",
                      "vox2_dev_aac_partab": "17fe6dab2b32b48abaf1676429cdd06f",
                      "vox2_dev_aac_partac": "1de58e086c5edf63625af1cb6d831528",
                      "vox2_dev_aac_partad": "5a043eb03e15c5a918ee6a52aad477f9",
                      "vox2_dev_aac_partae": "cea401b624983e2d0b2a87fb5d59aa60",
                      "vox2_dev_aac_partaf": "fc886d9ba90ab88e7880ee98effd6ae9",
                      "vox2_dev_aac_partag": "d160ecc3f6ee3eed54d55349531cb42e",
                      "vox2_dev_aac_partah": "6b84a81b9af72a9d9eecbb3b1f602e65"},
            extract_to="voxceleb2", layout=(("dev/aac", "id*/*/*.m4a"),)),
]

# Full-corpus counts from the VoxCeleb pages (vox1.html, vox2.html) and the trial lists.
FULL = {
    "vox1_dev": "1,211 speakers, 148,642 utterances",
    "vox1_test": "40 speakers, 4,874 utterances",
    "vox1": "1,251 speakers, 153,516 utterances",
    "vox2_dev": "5,994 speakers, 1,092,009 utterances",
    "vox1_O": "37,720 trials", "vox1_O_cleaned": "37,611 trials",
    "vox1_E": "581,480 trials", "vox1_E_cleaned": "579,818 trials",
    "vox1_H": "552,536 trials", "vox1_H_cleaned": "550,894 trials",
}
# Which data dir each trial list is drawn from: O from the test set, E and H from all of VoxCeleb1.
TRIAL_DIR = {"vox1_O": "vox1_test", "vox1_O_cleaned": "vox1_test", "vox1_E": "vox1", "vox1_E_cleaned": "vox1",
             "vox1_H": "vox1", "vox1_H_cleaned": "vox1"}

FFMPEG_PIPE = "ffmpeg -nostdin -loglevel error -i {path} -f wav -acodec pcm_s16le -ac 1 -ar {rate} - |"


def utt_id(spk: str, video: str, number: str) -> str:
    return f"{spk}-{video}-{number}"


def path_to_utt(entry: str) -> str:
    """``id10270/x6uYqmx31kE/00001.wav`` -> ``id10270-x6uYqmx31kE-00001``."""
    parts = entry.split("/")
    if len(parts) != 3 or not parts[2].endswith((".wav", ".m4a")):
        raise ValueError(entry)
    return utt_id(parts[0], parts[1], parts[2].rsplit(".", 1)[0])


def scan(audio_root: Path, extension: str, what: str) -> Tuple[Dict[str, str], Dict[str, str]]:
    """wav.scp (utt -> absolute path) and utt2spk of a ``<spk>/<video>/<n>.<ext>`` tree."""
    wav: Dict[str, str] = {}
    utt2spk: Dict[str, str] = {}
    for path in find_audio(audio_root, extension, what):
        spk, video, number = speaker_video_utt(path, audio_root, what)
        utt = utt_id(spk, video, number)
        add_utt(wav, utt, abspath(path), path)
        utt2spk[utt] = spk
    return wav, utt2spk


def read_official_trials(path: Path) -> List[Trial]:
    """``<1|0> <enroll path> <test path>`` (VoxCeleb meta lists) -> Kaldi trials."""
    trials = []
    for line in table_lines(path):
        fields = line.fields
        if len(fields) != 3 or fields[0] not in ("0", "1"):
            raise line.expected("'<1|0> <spk>/<video>/<n>.wav <spk>/<video>/<n>.wav'")
        try:
            enroll, test = path_to_utt(fields[1]), path_to_utt(fields[2])
        except ValueError as exc:
            raise line.error(f"expected '<spk>/<video>/<n>.wav', got '{exc}'") from None
        trials.append(Trial(enroll, test, fields[0] == "1"))
    if not trials:
        raise InputError(path, "trial list is empty")
    return trials


def read_meta_gender(path: Path) -> Dict[str, str]:
    """``vox1_meta.csv`` / ``vox2_meta.csv`` -> speaker -> ``m``/``f`` (both files' quirks handled:
    TAB or comma separated, byte-order mark, CRLF, spaces around fields)."""
    genders: Dict[str, str] = {}
    with open(path, encoding="utf-8-sig", newline=None) as handle:
        lines = numbered_lines(handle, path)
        header = next(lines, None)
        text = header.text if header else ""
        separator = "\t" if "\t" in text else ","
        columns = [field.strip().lower() for field in text.split(separator)]
        if "gender" not in columns or not columns[0].endswith("id"):
            raise InputError(path, f"expected a header '<VoxCeleb ID>{separator}...{separator}Gender{separator}...', "
                             f"got '{text}'", header.number if header else 1)
        gender_column = columns.index("gender")
        for line in lines:
            fields = [field.strip() for field in line.text.split(separator)]
            if len(fields) != len(columns):
                raise line.error(f"expected {len(columns)} fields separated by {separator!r}, got '{line.text}'")
            speaker, gender = fields[0], fields[gender_column].lower()
            if gender not in ("m", "f"):
                raise line.error(f"gender of '{speaker}' must be m or f, got '{fields[gender_column]}'")
            if speaker in genders:
                raise line.error(f"duplicate speaker '{speaker}'")
            genders[speaker] = gender
    return genders


def spk2gender_extra(meta: Path, genders: Optional[Dict[str, str]],
                     utt2spk: Dict[str, str]) -> Dict[str, Dict[str, str]]:
    """``{"spk2gender": ...}`` for the speakers of ``utt2spk`` (nothing without metadata)."""
    if genders is None:
        return {}
    missing = sorted(set(utt2spk.values()) - set(genders))
    if missing:
        raise InputError(meta, f"no line for speaker '{missing[0]}' ({len(missing)} speakers of the audio missing)")
    return {"spk2gender": {spk: genders[spk] for spk in set(utt2spk.values())}}


def prepare_voxceleb1(src: Path, out: Path, trials: Optional[List[str]] = None, trials_dir: Optional[Path] = None,
                      nj: int = 1) -> Dict[str, Path]:
    """Write ``vox1_dev``, ``vox1_test`` and ``vox1`` (both) data dirs plus the trial lists
    ``vox1_test/trials/vox1_O[_cleaned].kaldi`` and ``vox1/trials/vox1_{E,H}[_cleaned].kaldi``."""
    src, out = Path(src), Path(out)
    need_dir(src, "the VoxCeleb1 root with dev/wav/ and test/wav/")
    trials = list(TRIAL_FILES) if trials is None else trials
    trials_dir = Path(trials_dir) if trials_dir else src
    for name in trials:
        if name not in TRIAL_FILES:
            raise InputError(None, f"unknown VoxCeleb1 trial list '{name}' (expected one of {', '.join(TRIAL_FILES)})")
        need_file(trials_dir / TRIAL_FILES[name], f"the official VoxCeleb1 trial list {TRIAL_FILES[name]} "
                  f"({META_URL}/{TRIAL_FILES[name]})")
    parts = {}
    for subset in ("dev", "test"):
        root = need_dir(src / subset / "wav", f"VoxCeleb1 {subset} audio as <speaker>/<video>/<n>.wav "
                        f"(vox1_{subset}_wav.zip unzipped into {src / subset})")
        parts[subset] = scan(root, ".wav", f"VoxCeleb1 {subset} audio")
    check_speakers_disjoint(parts["dev"][1], parts["test"][1], src / "dev" / "wav", src / "test" / "wav")
    all_spk = {**parts["dev"][1], **parts["test"][1]}
    lists = {}
    for name in trials:  # every list is checked before anything is written
        source = trials_dir / TRIAL_FILES[name]
        lst = read_official_trials(source)
        data_name = TRIAL_DIR[name]
        check_trials(lst, parts["test"][1] if data_name == "vox1_test" else all_spk, source, out / data_name)
        lists[name] = lst
    meta = src / "vox1_meta.csv"
    genders = read_meta_gender(meta) if meta.is_file() else None
    gender = spk2gender_extra(meta, genders, all_spk)  # checked before anything is written
    result = {}
    all_wav, all_dur = {}, {}
    for subset in ("dev", "test"):
        wav, utt2spk = parts[subset]
        dur = durations(wav, nj)
        name = f"vox1_{subset}"
        write_data_dir(out / name, wav, utt2spk, dur, extra=spk2gender_extra(meta, genders, utt2spk))
        summary(name, utt2spk, out / name, FULL[name])
        result[name] = out / name
        all_wav.update(wav)
        all_dur.update(dur)
    write_data_dir(out / "vox1", all_wav, all_spk, all_dur, extra=gender)
    summary("vox1", all_spk, out / "vox1", FULL["vox1"])
    result["vox1"] = out / "vox1"
    for name, lst in lists.items():
        target = out / TRIAL_DIR[name] / "trials" / f"{name}.kaldi"
        save_trials(target, lst)
        print(f"{name}: {len(lst)} trials ({sum(t.is_target for t in lst)} target) -> {target}"
              f"  (full corpus: {FULL[name]})", flush=True)
        result[name] = target
    return result


# --------------------------------------------------------------------------- VoxCeleb2 (AAC)
def ffmpeg_available() -> bool:
    try:
        subprocess.run(["ffmpeg", "-version"], capture_output=True, check=True)
        return True
    except (FileNotFoundError, subprocess.CalledProcessError):
        return False


def _convert_one(job: Tuple[str, str, int]) -> Optional[str]:
    src, dst, rate = job
    if os.path.isfile(dst):
        return None
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    tmp = dst + ".tmp.wav"
    proc = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", src, "-acodec", "pcm_s16le",
                           "-ac", "1", "-ar", str(rate), tmp], capture_output=True, text=True)
    if proc.returncode != 0:
        if os.path.exists(tmp):
            os.unlink(tmp)
        return f"{src}: ffmpeg failed ({proc.stderr.strip()[-300:]})"
    os.replace(tmp, dst)
    return None


def prepare_voxceleb2(src: Path, out: Path, m4a: str = "pipe", wav_dir: Optional[Path] = None,
                      sample_rate: int = 16000, nj: int = 1, name: str = "vox2_dev") -> Path:
    """Write the ``vox2_dev`` data dir from ``<src>/dev/aac/<spk>/<video>/<n>.m4a``.

    ``m4a="pipe"``: wav.scp holds ``ffmpeg ... - |`` pipes (no extra disk; ffmpeg decodes at every
    read). ``m4a="convert"``: decode once to 16-bit PCM WAV under ``wav_dir`` (default
    ``<src>/dev/wav``) in ``nj`` processes, skipping files already converted; wav.scp holds paths.
    """
    src, out = Path(src), Path(out)
    if m4a not in ("pipe", "convert"):
        raise InputError(None, f"--m4a must be 'pipe' or 'convert', got '{m4a}'")
    root = need_dir(src / "dev" / "aac", "VoxCeleb2 dev audio as <speaker>/<video>/<n>.m4a "
                    "(vox2_aac.zip from vox2_dev_aac_parta[a-h] unzipped)")
    if not ffmpeg_available():
        raise InputError(root, "VoxCeleb2 is AAC (.m4a): ffmpeg is needed to decode it "
                         "(Debian/Ubuntu: apt-get install -y ffmpeg)")
    m4a_paths, utt2spk = scan(root, ".m4a", "VoxCeleb2 dev audio")
    meta = src / "vox2_meta.csv"
    gender = spk2gender_extra(meta, read_meta_gender(meta) if meta.is_file() else None, utt2spk)
    if m4a == "pipe":
        wav = {u: FFMPEG_PIPE.format(path=shlex.quote(p), rate=sample_rate) for u, p in m4a_paths.items()}
        dur = durations(m4a_paths, nj)
    else:
        wav_root = Path(wav_dir) if wav_dir else src / "dev" / "wav"
        jobs, wav = [], {}
        for utt, path in m4a_paths.items():
            rel = Path(path).relative_to(abspath(root)).with_suffix(".wav")
            dst = abspath(wav_root / rel)
            wav[utt] = dst
            jobs.append((path, dst, sample_rate))
        errors = [e for e in parallel_map(_convert_one, jobs, nj) if e]
        if errors:
            raise InputError(root, f"{len(errors)} m4a files could not be converted; first: {errors[0]}")
        dur = durations(wav, nj)
    write_data_dir(out / name, wav, utt2spk, dur, extra=gender)
    summary(name, utt2spk, out / name, FULL["vox2_dev"])
    return out / name
