"""speechocean762 (OpenSLR 101): Kaldi data dirs for train/test and the test trial list.

The corpus ships Kaldi-style lists: ``train/`` and ``test/`` each with ``wav.scp`` (paths relative to
the corpus root, tab-separated), ``utt2spk``, ``spk2utt``, ``spk2gender``, ``spk2age``, ``text``;
audio under ``WAVE/SPEAKERxxxx/``. Train and test speakers are disjoint (125 + 125).
Utterance ids are kept as shipped (e.g. ``000010011``) so published trial lists apply unchanged.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from wespeaker_like.data.corpora.download import Archive
from wespeaker_like.data.kaldi_dir import DataDir, line_of, read_table
from wespeaker_like.data.trials import make_trials, read_trials, write_trials
from wespeaker_like.errors import InputError

log = logging.getLogger(__name__)

# OpenSLR publishes no checksum for this archive; it extracts to speechocean762/.
BASE_URL = "https://www.openslr.org/resources/101"
ARCHIVES = [Archive("speechocean762.tar.gz", layout=(("speechocean762/WAVE", "SPEAKER*/*"),
                                                      ("speechocean762/train", "wav.scp"),
                                                      ("speechocean762/test", "wav.scp")))]
SUBSETS = ("train", "test")


def prepare_subset(corpus_dir: Path, subset: str, out_dir: Path) -> DataDir:
    """Write ``out_dir`` (wav.scp with absolute paths, utt2spk, spk2utt, spk2gender, spk2age)."""
    src = corpus_dir / subset
    if not src.is_dir():
        raise InputError(src, f"expected the corpus' '{subset}/' list directory under {corpus_dir}")
    wav_scp = src / "wav.scp"
    wavs = {}
    for utt, rel in read_table(wav_scp).items():
        path = (corpus_dir / rel).resolve()
        if not path.is_file():
            raise InputError(wav_scp, f"audio file '{rel}' of utterance '{utt}' not found under {corpus_dir}",
                             line_of(wav_scp, utt))
        wavs[utt] = str(path)
    tables = {"wav.scp": wavs, "utt2spk": read_table(src / "utt2spk")}
    for name in ("spk2gender", "spk2age", "text"):
        if (src / name).is_file():
            tables[name] = read_table(src / name, allow_empty_value=(name == "text"))
    check_corpus_lists(src, tables)
    data = DataDir(tables, out_dir)
    data.validate(need=("wav.scp", "spk2gender"))
    data.save(out_dir)
    log.info("%s: %d utterances, %d speakers", out_dir, len(data.utts), len(data.spk2utt))
    return data


def check_corpus_lists(src: Path, tables: dict) -> None:
    """The corpus's own lists must agree (every wav.scp utterance in utt2spk and back, every speaker
    in spk2gender/spk2age); errors name the corpus file that lacks the entry, not the output."""
    wav_scp, utt2spk = tables["wav.scp"], tables["utt2spk"]
    for utt in wav_scp:
        if utt not in utt2spk:
            raise InputError(src / "utt2spk", f"no line for utterance '{utt}' (listed in {src / 'wav.scp'} line "
                             f"{line_of(src / 'wav.scp', utt)}; expected '<utterance> <speaker>' for each)")
    for utt in utt2spk:
        if utt not in wav_scp:
            raise InputError(src / "wav.scp", f"no line for utterance '{utt}' (listed in {src / 'utt2spk'}; "
                             "expected '<utterance> <audio path>' for each)")
    for name in ("spk2gender", "spk2age"):
        if name in tables:
            for utt, spk in utt2spk.items():
                if spk not in tables[name]:
                    raise InputError(src / name, f"no line for speaker '{spk}' (of utterance '{utt}' in "
                                     f"{src / 'utt2spk'} line {line_of(src / 'utt2spk', utt)})")


def prepare(corpus_dir: str | Path, data_dir: str | Path, trials: Optional[str | Path] = None,
            num_target: int = 5000, num_nontarget: int = 5000, seed: int = 777) -> None:
    """Data dirs ``data_dir/{train,test}`` and ``data_dir/test/trials``.

    ``trials``: an existing list (validated against the test set); otherwise a seeded list is drawn.
    """
    corpus_dir, data_dir = Path(corpus_dir).resolve(), Path(data_dir)
    if not corpus_dir.is_dir():
        raise InputError(corpus_dir, "corpus directory not found (expected WAVE/, train/, test/)")
    train = prepare_subset(corpus_dir, "train", data_dir / "train")
    test = prepare_subset(corpus_dir, "test", data_dir / "test")
    shared = set(train.spk2utt) & set(test.spk2utt)
    if shared:
        raise InputError(corpus_dir / "test" / "utt2spk",
                         f"speaker '{sorted(shared)[0]}' is in both train and test ({len(shared)} shared)")
    if trials:
        trial_list = read_trials(trials, known_utts=set(test.utts))
    else:
        trial_list = make_trials(test.utt2spk, num_target, num_nontarget, seed)
    write_trials(data_dir / "test" / "trials", trial_list)
    targets = sum(t.is_target for t in trial_list)
    log.info("trials: %d (%d target, %d nontarget)", len(trial_list), targets, len(trial_list) - targets)
