"""CN-Celeb1 (dev, eval enroll/test, official trials) and CN-Celeb2, from the v2 FLAC release.

Layout expected (``cn-celeb_v2.tar.gz`` and ``cn-celeb2_v2.tar.gz`` extracted side by side)::

    CN-Celeb_flac/data/<spk>/<genre>-<session>-<n>.flac   all 1,000 speakers
    CN-Celeb_flac/dev/dev.lst                              the 800 training speakers, one per line
    CN-Celeb_flac/eval/enroll/<spk>-enroll.flac            official concatenated enrollment audio
    CN-Celeb_flac/eval/test/<spk>-<genre>-<session>-<n>.flac
    CN-Celeb_flac/eval/lists/enroll.lst                    <spk>-enroll enroll/<spk>-enroll.wav
    CN-Celeb_flac/eval/lists/enroll.map                    <spk>-enroll <spk>/<utt>.wav <spk>/<utt>.wav ...
    CN-Celeb_flac/eval/lists/test.lst                      test/<spk>-<utt>.wav
    CN-Celeb_flac/eval/lists/trials.lst                    <spk>-enroll test/<spk>-<utt>.wav 1|0
    CN-Celeb2_flac/data/<spk>/<genre>-<session>-<n>.flac
    CN-Celeb2_flac/spk.lst

The lists keep the '.wav' names of the first release; entries are matched to files by name
without extension. Utterance ids: ``data/id00000/singing-01-001.flac`` -> ``id00000-singing-01-001``,
``eval/test/id00800-singing-01-005.flac`` -> ``id00800-singing-01-005``; enrollment ids keep the
official ``id00800-enroll``.

Enrollment (``enroll_mode``):

* ``concat`` -- one utterance per enrollment id in wav.scp: the official
  ``eval/enroll/<id>.flac`` (the corpus's own concatenation), or, with ``rebuild_enroll`` or when
  that file is missing, the ``enroll.map`` utterances concatenated in map order and written once as
  16-bit FLAC to ``<out>/cnceleb1_enroll/audio/<id>.flac``.
* ``average`` -- the enrollment utterances themselves are the data dir; scoring averages their
  embeddings per enrollment id using ``enroll.map``.

Either way ``enroll.map`` (``<enroll id> <utt> <utt> ...``, utterance ids as above) is written to
the enroll and eval dirs; the scoring rule is: an enrollment id present in wav.scp is embedded
directly, otherwise its embedding is the mean of the embeddings of its ``enroll.map`` utterances.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile

from wespeaker_like.audio.io import write_audio
from wespeaker_like.data.corpora.common import (
    abspath, add_utt, check_speakers_disjoint, check_trials, durations, need_dir, need_file, parallel_map,
    resolve_listed_audio, save_trials, strip_ext, summary, write_data_dir, write_map,
)
from wespeaker_like.data.corpora.download import Archive
from wespeaker_like.data.kaldi_dir import table_lines
from wespeaker_like.data.trials import Trial
from wespeaker_like.errors import InputError

BASE_URL = "https://www.openslr.org/resources/82"
# MD5 sums as published on OpenSLR 82: CN-Celeb2 comes in three parts, cn-celeb2_v2.tar.gzaa/ab/ac
# (``cat cn-celeb2_v2.tar.gza* > cn-celeb2_v2.tar.gz``), each with its own sum.
CN2_PARTS = ("cn-celeb2_v2.tar.gzaa", "cn-celeb2_v2.tar.gzab", "cn-celeb2_v2.tar.gzac")
ARCHIVES = [
    Archive("cn-celeb_v2.tar.gz", md5="7ab1b214028a7439e26608b2d5a0336c",
            layout=(("CN-Celeb_flac/data", "id*/*.flac"), ("CN-Celeb_flac/dev", "dev.lst"),
                    ("CN-Celeb_flac/eval/enroll", "*.flac"), ("CN-Celeb_flac/eval/test", "*.flac"),
                    ("CN-Celeb_flac/eval/lists", "trials.lst"))),
    Archive("cn-celeb2_v2.tar.gz", md5="55c47cf0b6d0bf793e88bf79d5dfc660", parts=CN2_PARTS,
            part_md5=dict(zip(CN2_PARTS, ("4cdf738cff565ce35ad34274848659c3", "4ff59a7009b79ef7043498ad3882b81b",
                                          "3aa8e6e7f7ec4382f9926b1b31498228"))),
            layout=(("CN-Celeb2_flac/data", "id*/*.flac"), ("CN-Celeb2_flac", "spk.lst"))),
]
# Counts of the v2 release (OpenSLR 82; the 2,793 training speakers are 3D-Speaker's num_classes).
FULL = {
    "cnceleb1_dev": "797 speakers with audio (dev.lst lists 800)",
    "cnceleb2": "1,996 speakers",
    "cnceleb_train": "2,793 speakers",
    "cnceleb1_enroll": "196 enrollment ids",
    "cnceleb1_test": "200 speakers, 17,777 utterances",
    "CNC-Eval": "3,484,292 trials, 17,755 target",
}


def _read_speaker_list(path: Path) -> List[str]:
    speakers = []
    seen = set()
    for line in table_lines(path):
        if len(line.fields) != 1:
            raise line.expected("one speaker id per line")
        if line.fields[0] in seen:
            raise line.error(f"duplicate speaker '{line.fields[0]}'")
        seen.add(line.fields[0])
        speakers.append(line.fields[0])
    if not speakers:
        raise InputError(path, "speaker list is empty")
    return speakers


def scan_speakers(data_root: Path, speakers: Sequence[str], listed_in: Path) -> Tuple[Dict[str, str], Dict[str, str]]:
    """wav.scp and utt2spk of ``data/<spk>/*.flac`` for the listed speakers.

    A listed speaker without a directory is skipped with a warning as long as they are few (the
    v2 release lists 800 dev speakers in dev.lst but ships audio for 797); more than 5 % missing
    is an error naming the first one."""
    wav: Dict[str, str] = {}
    utt2spk: Dict[str, str] = {}
    missing = []
    for spk in speakers:
        spk_dir = data_root / spk
        if not spk_dir.is_dir():
            missing.append(spk)
            continue
        files = sorted(p for p in spk_dir.iterdir() if p.suffix in (".flac", ".wav") and p.is_file())
        if not files:
            raise InputError(spk_dir, "no .flac files (expected <genre>-<session>-<n>.flac)")
        for path in files:
            utt = f"{spk}-{path.stem}"
            add_utt(wav, utt, abspath(path), path)
            utt2spk[utt] = spk
    if missing and (len(missing) > 0.05 * len(speakers) or not wav):
        raise InputError(listed_in, f"speaker '{missing[0]}' has no directory {data_root / missing[0]} "
                         f"({len(missing)} of {len(speakers)} listed speakers missing; expected "
                         "data/<spk>/<genre>-<session>-<n>.flac)")
    if missing:
        print(f"warning: {listed_in}: {len(missing)} listed speakers have no audio under {data_root} "
              f"and are skipped: {' '.join(missing[:10])}", file=sys.stderr, flush=True)
    return wav, utt2spk


def _lines(path: Path) -> List[Tuple[int, List[str]]]:
    return [(line.number, line.fields) for line in table_lines(path)]


def _enroll_speaker(enroll_id: str, source: Path, line: int) -> str:
    if not enroll_id.endswith("-enroll"):
        raise InputError(source, f"expected an enrollment id '<spk>-enroll', got '{enroll_id}'", line)
    return enroll_id[: -len("-enroll")]


def read_enroll_map(path: Path, data_root: Path) -> Dict[str, List[Tuple[str, str]]]:
    """``<spk>-enroll <spk>/<utt>.wav ...`` -> enroll id -> [(utt id, absolute audio path)]."""
    table: Dict[str, List[Tuple[str, str]]] = {}
    for number, fields in _lines(path):
        if len(fields) < 2:
            raise InputError(path, "expected '<spk>-enroll <spk>/<utt>.wav [<spk>/<utt>.wav ...]'", number)
        enroll_id = fields[0]
        spk = _enroll_speaker(enroll_id, path, number)
        if enroll_id in table:
            raise InputError(path, f"duplicate enrollment id '{enroll_id}'", number)
        items = []
        for entry in fields[1:]:
            parts = entry.split("/")
            if len(parts) != 2 or parts[0] != spk:
                raise InputError(path, f"expected '{spk}/<utt>.wav' for {enroll_id}, got '{entry}'", number)
            audio = resolve_listed_audio(data_root, entry, path, number)
            items.append((f"{spk}-{strip_ext(parts[1])}", abspath(audio)))
        table[enroll_id] = items
    if not table:
        raise InputError(path, "enroll.map is empty")
    return table


def read_enroll_lst(path: Path, eval_root: Path) -> Dict[str, str]:
    """``<spk>-enroll enroll/<spk>-enroll.wav`` -> enroll id -> absolute audio path."""
    table: Dict[str, str] = {}
    for number, fields in _lines(path):
        if len(fields) != 2:
            raise InputError(path, "expected '<spk>-enroll enroll/<spk>-enroll.wav'", number)
        _enroll_speaker(fields[0], path, number)
        if fields[0] in table:
            raise InputError(path, f"duplicate enrollment id '{fields[0]}'", number)
        table[fields[0]] = abspath(resolve_listed_audio(eval_root, fields[1], path, number))
    return table


def _test_utt(entry: str, source: Path, line: int) -> Tuple[str, str]:
    """``test/id00800-singing-01-005.wav`` -> (utt id, speaker)."""
    parts = entry.split("/")
    if len(parts) != 2 or parts[0] != "test" or "-" not in parts[1]:
        raise InputError(source, f"expected 'test/<spk>-<utt>.wav', got '{entry}'", line)
    utt = strip_ext(parts[1])
    return utt, utt.split("-", 1)[0]


def scan_test(cn1: Path) -> Tuple[Dict[str, str], Dict[str, str]]:
    eval_root = cn1 / "eval"
    lst = eval_root / "lists" / "test.lst"
    wav: Dict[str, str] = {}
    utt2spk: Dict[str, str] = {}
    if lst.is_file():
        for number, fields in _lines(lst):
            if len(fields) != 1:
                raise InputError(lst, "expected one 'test/<spk>-<utt>.wav' per line", number)
            utt, spk = _test_utt(fields[0], lst, number)
            add_utt(wav, utt, abspath(resolve_listed_audio(eval_root, fields[0], lst, number)), lst)
            utt2spk[utt] = spk
    else:
        test_root = need_dir(eval_root / "test", "CN-Celeb1 test audio <spk>-<utt>.flac")
        for path in sorted(test_root.iterdir()):
            if path.suffix not in (".flac", ".wav"):
                continue
            utt, spk = _test_utt(f"test/{path.name}", path, 0)
            add_utt(wav, utt, abspath(path), path)
            utt2spk[utt] = spk
    if not wav:
        raise InputError(eval_root / "test", "no test audio found")
    return wav, utt2spk


def read_cn_trials(path: Path) -> List[Trial]:
    trials = []
    for number, fields in _lines(path):
        if len(fields) != 3 or fields[2] not in ("0", "1"):
            raise InputError(path, "expected '<spk>-enroll test/<spk>-<utt>.wav 1|0'", number)
        _enroll_speaker(fields[0], path, number)
        utt, _ = _test_utt(fields[1], path, number)
        trials.append(Trial(fields[0], utt, fields[2] == "1"))
    if not trials:
        raise InputError(path, "trial list is empty")
    return trials


def _concat_job(job: Tuple[str, List[str]]) -> None:
    target, sources = job
    if Path(target).is_file():
        return
    pieces, rate = [], None
    for src in sources:
        data, sr = soundfile.read(src, dtype="float32", always_2d=True)
        if rate is not None and sr != rate:
            raise InputError(src, f"sample rate {sr} differs from {rate} of the other pieces of {target}")
        rate = sr
        pieces.append(data.mean(axis=1))
    write_audio(target, np.concatenate(pieces), rate)


def prepare_enroll(cn1: Path, out_dir: Path, mode: str, rebuild: bool, nj: int
                   ) -> Tuple[Dict[str, str], Dict[str, str], Dict[str, List[str]]]:
    """wav.scp, utt2spk and enroll.map (utterance ids) of the enrollment side."""
    lists = cn1 / "eval" / "lists"
    emap_path = need_file(lists / "enroll.map", "the CN-Celeb1 enrollment map '<spk>-enroll <spk>/<utt>.wav ...'")
    emap = read_enroll_map(emap_path, need_dir(cn1 / "data", "CN-Celeb1 audio data/<spk>/*.flac"))
    enroll_map = {eid: [u for u, _ in items] for eid, items in emap.items()}
    wav: Dict[str, str] = {}
    utt2spk: Dict[str, str] = {}
    if mode == "average":
        for eid, items in emap.items():
            for utt, path in items:
                add_utt(wav, utt, path, emap_path)
                utt2spk[utt] = eid[: -len("-enroll")]
        return wav, utt2spk, enroll_map
    if mode != "concat":
        raise InputError(None, f"enroll mode must be 'concat' or 'average', got '{mode}'")
    official: Dict[str, str] = {}
    lst = lists / "enroll.lst"
    if not rebuild and lst.is_file():
        official = read_enroll_lst(lst, cn1 / "eval")
        missing = sorted(set(emap) - set(official))
        if missing:
            raise InputError(lst, f"enrollment id '{missing[0]}' of enroll.map has no line here")
    jobs = []
    for eid, items in emap.items():
        if eid in official:
            wav[eid] = official[eid]
        else:
            target = abspath(out_dir / "audio" / f"{eid}.flac")
            jobs.append((target, [p for _, p in items]))
            wav[eid] = target
        utt2spk[eid] = eid[: -len("-enroll")]
    parallel_map(_concat_job, jobs, nj)
    return wav, utt2spk, enroll_map


def _combine_job(job: Tuple[str, List[str]]) -> None:
    _concat_job(job)


def combine_short(wav: Dict[str, str], utt2spk: Dict[str, str], dur: Dict[str, float], min_dur: float,
                  audio_dir: Path, nj: int
                  ) -> Tuple[Dict[str, str], Dict[str, str], Dict[str, float], Dict[str, List[str]]]:
    """Concatenate consecutive (sorted) utterances of one speaker and genre until each segment
    lasts at least ``min_dur`` seconds; an utterance that reaches it alone at the start of a
    segment stays as it is. A short rest at the end of a speaker/genre group joins the group's
    last segment (or stays alone if it is the only one). New ids: ``<first utt>-cat<k>`` for k>1
    pieces, audio written once as FLAC; single utterances keep their id and file."""
    groups: Dict[Tuple[str, str], List[str]] = {}
    for utt in sorted(utt2spk):
        spk = utt2spk[utt]
        genre = utt[len(spk) + 1:].split("-", 1)[0]
        groups.setdefault((spk, genre), []).append(utt)
    segments: List[Tuple[str, List[str]]] = []
    for (spk, _), utts in sorted(groups.items()):
        current: List[str] = []
        total = 0.0
        done: List[List[str]] = []
        for utt in utts:
            current.append(utt)
            total += dur[utt]
            if total >= min_dur:
                done.append(current)
                current, total = [], 0.0
        if current:
            if done:
                done[-1].extend(current)
            else:
                done.append(current)
        segments.extend((spk, seg) for seg in done)
    new_wav, new_spk, new_dur, comb = {}, {}, {}, {}
    jobs = []
    for spk, seg in segments:
        if len(seg) == 1:
            utt = seg[0]
            new_wav[utt] = wav[utt]
        else:
            utt = f"{seg[0]}-cat{len(seg)}"
            target = abspath(audio_dir / spk / f"{utt}.flac")
            jobs.append((target, [wav[u] for u in seg]))
            new_wav[utt] = target
        new_spk[utt] = spk
        new_dur[utt] = sum(dur[u] for u in seg)
        comb[utt] = seg
    parallel_map(_combine_job, jobs, nj)
    return new_wav, new_spk, new_dur, comb


def prepare_cnceleb(out: Path, cn1: Path, cn2: Optional[Path] = None, enroll_mode: str = "concat",
                    rebuild_enroll: bool = False, combine_short_dur: float = 0.0, nj: int = 1) -> Dict[str, Path]:
    """Write ``cnceleb1_dev``, ``cnceleb2`` (if ``cn2``), ``cnceleb_train`` (their union),
    optionally ``cnceleb_train_comb``, and ``cnceleb1_enroll``, ``cnceleb1_test``,
    ``cnceleb1_eval`` (both, with ``trials/CNC-Eval.kaldi`` and ``enroll.map``)."""
    out = Path(out)
    cn1 = need_dir(Path(cn1), "the CN-Celeb1 root CN-Celeb_flac/ (cn-celeb_v2.tar.gz extracted)")
    data_root = need_dir(cn1 / "data", "CN-Celeb1 audio as data/<spk>/<genre>-<session>-<n>.flac")
    dev_lst = need_file(cn1 / "dev" / "dev.lst", "the CN-Celeb1 training speaker list, one id per line")
    result: Dict[str, Path] = {}

    dev_wav, dev_spk = scan_speakers(data_root, _read_speaker_list(dev_lst), dev_lst)
    train_parts = [("cnceleb1_dev", dev_wav, dev_spk, dev_lst)]
    if cn2 is not None:
        cn2 = need_dir(Path(cn2), "the CN-Celeb2 root CN-Celeb2_flac/ (cn-celeb2_v2.tar.gz extracted)")
        spk_lst = need_file(cn2 / "spk.lst", "the CN-Celeb2 speaker list, one id per line")
        cn2_root = need_dir(cn2 / "data", "CN-Celeb2 audio as data/<spk>/<genre>-<session>-<n>.flac")
        wav2, spk2 = scan_speakers(cn2_root, _read_speaker_list(spk_lst), spk_lst)
        clash = sorted(set(spk2.values()) & set(dev_spk.values()))
        if clash:
            raise InputError(spk_lst, f"speaker '{clash[0]}' is also a CN-Celeb1 dev speaker ({dev_lst}); "
                             "expected disjoint speaker ids")
        train_parts.append(("cnceleb2", wav2, spk2, spk_lst))

    # Evaluation side first, so that a speaker crossing into training stops before any writing.
    test_wav, test_spk = scan_test(cn1)
    trials_path = need_file(cn1 / "eval" / "lists" / "trials.lst",
                            "the CN-Celeb1 trial list '<spk>-enroll test/<spk>-<utt>.wav 1|0'")
    trials = read_cn_trials(trials_path)
    eval_speakers = {u: s for u, s in test_spk.items()}
    enroll_dir = out / "cnceleb1_enroll"
    enr_wav, enr_spk, enroll_map = prepare_enroll(cn1, enroll_dir, enroll_mode, rebuild_enroll, nj)
    eval_speakers.update({f"enroll:{e}": e[: -len("-enroll")] for e in enroll_map})
    for name, _, spk, where in train_parts:
        check_speakers_disjoint(spk, eval_speakers, where, cn1 / "eval")
    known_enroll = set(enroll_map)
    for number, trial in enumerate(trials, start=1):
        if trial.enroll not in known_enroll:
            raise InputError(trials_path, f"enrollment id '{trial.enroll}' is not in enroll.map", number)
    check_trials(trials, set(test_wav) | known_enroll, trials_path, out / "cnceleb1_eval")

    all_wav, all_spk, all_dur = {}, {}, {}
    for name, wav, spk, _ in train_parts:
        dur = durations(wav, nj)
        write_data_dir(out / name, wav, spk, dur)
        summary(name, spk, out / name, FULL[name])
        result[name] = out / name
        all_wav.update(wav)
        all_spk.update(spk)
        all_dur.update(dur)
    write_data_dir(out / "cnceleb_train", all_wav, all_spk, all_dur)
    summary("cnceleb_train", all_spk, out / "cnceleb_train", FULL["cnceleb_train"])
    result["cnceleb_train"] = out / "cnceleb_train"
    if combine_short_dur > 0:
        comb_dir = out / "cnceleb_train_comb"
        c_wav, c_spk, c_dur, comb = combine_short(all_wav, all_spk, all_dur, combine_short_dur,
                                                  comb_dir / "audio", nj)
        write_data_dir(comb_dir, c_wav, c_spk, c_dur)
        write_map(comb_dir / "comb.map", comb)
        summary("cnceleb_train_comb", c_spk, comb_dir, f"segments of at least {combine_short_dur:g} s")
        result["cnceleb_train_comb"] = comb_dir

    enr_dur = durations(enr_wav, nj)
    write_data_dir(enroll_dir, enr_wav, enr_spk, enr_dur)
    write_map(enroll_dir / "enroll.map", enroll_map)
    summary("cnceleb1_enroll", enr_spk, enroll_dir, FULL["cnceleb1_enroll"])
    test_dur = durations(test_wav, nj)
    write_data_dir(out / "cnceleb1_test", test_wav, test_spk, test_dur)
    summary("cnceleb1_test", test_spk, out / "cnceleb1_test", FULL["cnceleb1_test"])
    clash = sorted(set(enr_wav) & set(test_wav))
    if clash:
        raise InputError(enroll_dir, f"enrollment utterance '{clash[0]}' is also a test utterance")
    eval_dir = out / "cnceleb1_eval"
    write_data_dir(eval_dir, {**enr_wav, **test_wav}, {**enr_spk, **test_spk}, {**enr_dur, **test_dur})
    write_map(eval_dir / "enroll.map", enroll_map)
    target = eval_dir / "trials" / "CNC-Eval.kaldi"
    save_trials(target, trials)
    print(f"CNC-Eval: {len(trials)} trials ({sum(t.is_target for t in trials)} target) -> {target}"
          f"  (full corpus: {FULL['CNC-Eval']})", flush=True)
    result.update({"cnceleb1_enroll": enroll_dir, "cnceleb1_test": out / "cnceleb1_test",
                   "cnceleb1_eval": eval_dir, "CNC-Eval": target})
    return result
