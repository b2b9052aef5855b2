"""Trial lists: ``<enroll> <test> target|nontarget`` (Kaldi), reading and seeded generation."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Collection, Dict, List, Mapping, NamedTuple, Optional

from wespeaker_like.data.kaldi_dir import table_lines
from wespeaker_like.errors import InputError
from wespeaker_like.fileio import atomic_write

LABELS = {"target": True, "nontarget": False}


class Trial(NamedTuple):
    enroll: str
    test: str
    is_target: bool


def read_trials(path: str | Path, known_utts: Optional[Collection[str]] = None) -> List[Trial]:
    """Read a trial list; with ``known_utts``, every enroll/test id must be one of them.

    Raises ``InputError`` naming the file and line for a malformed line, a label other than
    target/nontarget, or an unknown utterance.
    """
    path = Path(path)
    trials = []
    for line in table_lines(path, "trial list not found (expected '<enroll> <test> target|nontarget' lines)"):
        if len(line.fields) != 3:
            raise line.expected("'<enroll> <test> target|nontarget'")
        enroll, test, label = line.fields
        if label not in LABELS:
            raise line.error(f"label must be 'target' or 'nontarget', got '{label}'")
        if known_utts is not None:
            for utt in (enroll, test):
                if utt not in known_utts:
                    raise line.error(f"utterance '{utt}' is not in the evaluation data")
        trials.append(Trial(enroll, test, LABELS[label]))
    if not trials:
        raise InputError(path, "trial list is empty")
    return trials


def require_both_kinds(trials: List[Trial], path: str | Path) -> None:
    """InputError unless ``trials`` hold target and non-target trials (EER and minDCF need both)."""
    num_target = sum(trial.is_target for trial in trials)
    if num_target in (0, len(trials)):
        kind = "target" if num_target else "nontarget"
        raise InputError(path, f"all {len(trials)} trials are {kind}; EER and minDCF need both target "
                               "and nontarget trials")


def write_trials(path: str | Path, trials: List[Trial]) -> None:
    with atomic_write(path) as handle:
        for trial in trials:
            handle.write(f"{trial.enroll} {trial.test} {'target' if trial.is_target else 'nontarget'}\n")


def make_trials(utt2spk: Mapping[str, str], num_target: int, num_nontarget: int, seed: int = 0) -> List[Trial]:
    """Draw distinct trials without replacement: targets pair two utterances of one speaker,
    non-targets two utterances of different speakers. Same seed -> same list.

    Raises ``ValueError`` when fewer pairs exist than asked for, or nothing is asked for.
    """
    if num_target < 0 or num_nontarget < 0:
        raise ValueError(f"trial counts must not be negative, got {num_target} target, {num_nontarget} nontarget")
    if num_target + num_nontarget == 0:
        raise ValueError("asked for no trials (num_target and num_nontarget are both 0)")
    rng = random.Random(seed)
    spk2utt: Dict[str, List[str]] = {}
    for utt in sorted(utt2spk):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    target_pairs = [(a, b) for utts in spk2utt.values() for i, a in enumerate(utts) for b in utts[i + 1:]]
    if num_target > len(target_pairs):
        raise ValueError(f"only {len(target_pairs)} target pairs exist; asked for {num_target}")
    utts = sorted(utt2spk)
    max_nontarget = len(utts) * (len(utts) - 1) // 2 - len(target_pairs)
    if num_nontarget > max_nontarget:
        raise ValueError(f"only {max_nontarget} non-target pairs exist; asked for {num_nontarget}")
    targets = rng.sample(target_pairs, num_target)
    if 2 * num_nontarget > max_nontarget:
        # Dense request: rejection sampling would mostly redraw pairs it already has, so list
        # all non-target pairs (at most twice the request) and sample from them.
        all_pairs = [(a, b) for i, a in enumerate(utts) for b in utts[i + 1:] if utt2spk[a] != utt2spk[b]]
        nontargets = set(rng.sample(all_pairs, num_nontarget))
    else:
        nontargets = set()
        while len(nontargets) < num_nontarget:
            a, b = rng.sample(utts, 2)
            if utt2spk[a] != utt2spk[b]:
                nontargets.add((min(a, b), max(a, b)))
    trials = [Trial(a, b, True) for a, b in targets] + [Trial(a, b, False) for a, b in sorted(nontargets)]
    rng.shuffle(trials)
    return trials
