"""Kaldi data-dir utilities (the tools/*_data_dir.sh wrappers call these).

    python -m wespeaker_like.bin.data_dir utt2spk_to_spk2utt [<utt2spk>|-] [<spk2utt>|-]
    python -m wespeaker_like.bin.data_dir spk2utt_to_utt2spk [<spk2utt>|-] [<utt2spk>|-]
    python -m wespeaker_like.bin.data_dir validate [--no-wav] [--need FILE]... <dir>
    python -m wespeaker_like.bin.data_dir fix <dir>
    python -m wespeaker_like.bin.data_dir subset (--utt-list F | --spk-list F | --first N | --random N [--seed S]) <src> <dest>
    python -m wespeaker_like.bin.data_dir combine [--skip-fix] <dest> <src1> [<src2> ...]
    python -m wespeaker_like.bin.data_dir make_trials --num-target N --num-nontarget N [--seed S] <dir> <trials>
    python -m wespeaker_like.bin.data_dir copy_conditions <dir> [<utt2dev>]

Every output file is written atomically; errors name the file (and line) and exit with status 1.
Options accept ``_`` or ``-`` spelling (``--utt_list`` == ``--utt-list``).
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Dict, List, Optional, TextIO

from wespeaker_like.bin._entry import ArgumentParser, entry_point
from wespeaker_like.data.kaldi_dir import (
    SPK_FILES, UTT_FILES, VALUE_FORMATS, DataDir, c_sorted, format_table, parse_table, table_lines,
    utt2spk_to_spk2utt,
)
from wespeaker_like.data.trials import make_trials, write_trials
from wespeaker_like.errors import InputError
from wespeaker_like.fileio import atomic_write

BACKUP_DIR = ".backup"


# --- spk2utt <-> utt2spk ---------------------------------------------------------------------

def _read_input(path: str, value_format=None) -> Dict[str, str]:
    if path == "-":
        stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8")
        return parse_table(stdin, "<stdin>", value_format=value_format)
    if not Path(path).is_file():
        raise InputError(path, "file not found")
    with open(path, encoding="utf-8") as handle:
        return parse_table(handle, path, value_format=value_format)


def _write_output(path: str, table: Dict[str, object]) -> None:
    if path == "-":
        out: TextIO = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8")
        out.writelines(format_table(table))
        out.flush()
        out.detach()
    else:
        with atomic_write(path) as handle:
            handle.writelines(format_table(table))


def cmd_utt2spk_to_spk2utt(args: argparse.Namespace) -> None:
    utt2spk = _read_input(args.input, VALUE_FORMATS["utt2spk"])
    _write_output(args.output, utt2spk_to_spk2utt(utt2spk))


def cmd_spk2utt_to_utt2spk(args: argparse.Namespace) -> None:
    source = "<stdin>" if args.input == "-" else args.input
    utt2spk: Dict[str, str] = {}
    for speaker, utts in _read_input(args.input).items():
        for utt in utts.split():
            if utt in utt2spk:
                raise InputError(source, f"utterance '{utt}' is listed under speakers '{utt2spk[utt]}' "
                                 f"and '{speaker}' (expected each utterance once)")
            utt2spk[utt] = speaker
    _write_output(args.output, utt2spk)


# --- validate / fix --------------------------------------------------------------------------

def _summary(data: DataDir) -> str:
    files = ", ".join(name for name in UTT_FILES + SPK_FILES if name in data)
    return f"{len(data.utt2spk)} utterances, {len(data.spk2utt)} speakers ({files}, spk2utt)"


def cmd_validate(args: argparse.Namespace) -> None:
    data = DataDir.load(args.dir)
    data.validate(need=([] if args.no_wav else ["wav.scp"]) + args.need)
    print(f"validate_data_dir: {args.dir} is OK: {_summary(data)}")


def backup(data_dir: Path) -> Path:
    """Copy the data dir's known files into ``<dir>/.backup/`` (replacing an older backup)."""
    target = data_dir / BACKUP_DIR
    for name in UTT_FILES + SPK_FILES + ("spk2utt",):
        if (data_dir / name).is_file():
            with atomic_write(target / name, "wb", encoding=None) as handle:
                handle.write((data_dir / name).read_bytes())
    return target


def cmd_fix(args: argparse.Namespace) -> None:
    data = DataDir.load(args.dir)
    fixed = data.fixed()
    if not fixed.utt2spk:
        raise InputError(args.dir, "no utterance is in every file of the data dir; nothing written "
                         "(expected files keyed by the same utterance ids)")
    backup_dir = backup(Path(args.dir))
    fixed.save(args.dir)
    before, after = len(data.utt2spk), len(fixed.utt2spk)
    print(f"fix_data_dir: {args.dir}: kept {after} of {before} utterances (dropped {before - after}), "
          f"{len(fixed.spk2utt)} speakers; old files in {backup_dir}/")
    for name in data.tables:
        removed = len(data[name]) - len(fixed[name])
        if removed:
            print(f"fix_data_dir:   removed {removed} entries from {name}")


# --- subset / combine ------------------------------------------------------------------------

def _read_id_list(path: Path) -> List[str]:
    """First field of every non-empty line."""
    return [line.fields[0] for line in table_lines(path, "list file not found (expected one id per line)")]


def _warn_unknown(kind: str, wanted: List[str], known, list_path: Path) -> None:
    unknown = [item for item in wanted if item not in known]
    if unknown:
        print(f"subset_data_dir: warning: {len(unknown)} {kind} of {list_path} are not in the source "
              f"(e.g. '{unknown[0]}'); skipped", file=sys.stderr)


def cmd_subset(args: argparse.Namespace) -> None:
    if Path(args.src).resolve() == Path(args.dest).resolve():
        raise InputError(args.dest, "destination is the source data dir (expected a new directory)")
    data = DataDir.load(args.src)
    if args.utt_list:
        wanted = _read_id_list(args.utt_list)
        _warn_unknown("utterances", wanted, data.utt2spk, args.utt_list)
        subset = data.subset(wanted)
    elif args.spk_list:
        wanted = _read_id_list(args.spk_list)
        _warn_unknown("speakers", wanted, data.spk2utt, args.spk_list)
        subset = data.subset_speakers(wanted)
    else:
        count = args.first if args.first is not None else args.random
        if not 0 < count <= len(data.utt2spk):
            raise InputError(args.src, f"asked for {count} utterances, expected 1..{len(data.utt2spk)} "
                             "(the number in the source)")
        subset = data.subset(data.utts[:count]) if args.first is not None else data.random_subset(count, args.seed)
    if not subset.utt2spk:
        raise InputError(args.utt_list or args.spk_list, "selects no utterance of the source; nothing written")
    subset.save(args.dest)
    print(f"subset_data_dir: {args.dest}: {_summary(subset)} from {args.src}")


def cmd_combine(args: argparse.Namespace) -> None:
    dest = Path(args.dest).resolve()
    if any(Path(src).resolve() == dest for src in args.src):
        raise InputError(args.dest, "destination is also a source (expected a new directory)")
    sources = [DataDir.load(src) for src in args.src]
    combined = DataDir.combine(sources)
    for name in c_sorted(set().union(*(d.tables for d in sources)) - set(combined.tables)):
        print(f"combine_data: warning: {name} is not in every source; left out", file=sys.stderr)
    total = len(combined.utt2spk)
    if not args.skip_fix:
        combined = combined.fixed()
        if len(combined.utt2spk) < total:
            print(f"combine_data: dropped {total - len(combined.utt2spk)} utterances missing from some file",
                  file=sys.stderr)
    combined.save(args.dest)
    print(f"combine_data: {args.dest}: {_summary(combined)} from {len(sources)} dirs")


# --- trials ----------------------------------------------------------------------------------

def cmd_make_trials(args: argparse.Namespace) -> None:
    data = DataDir.load(args.dir)
    try:
        trials = make_trials(data.utt2spk, args.num_target, args.num_nontarget, args.seed)
    except ValueError as err:
        raise InputError(Path(args.dir) / "utt2spk", str(err)) from None
    write_trials(args.trials, trials)
    targets = sum(trial.is_target for trial in trials)
    print(f"make_trials: {args.trials}: {len(trials)} trials ({targets} target, "
          f"{len(trials) - targets} nontarget), seed {args.seed}")


# --- stage-2 copies -------------------------------------------------------------------------

def copy_conditions(utt2uniq: Dict[str, str], path: Path) -> Dict[str, str]:
    """Per utterance, its stage-2 condition: ``clean`` for an original (utt == its utt2uniq entry),
    else the suffix of ``<original>-<condition>`` (reverb, noise, music, babble...)."""
    conditions = {}
    for utt, original in utt2uniq.items():
        if utt == original:
            conditions[utt] = "clean"
        elif utt.startswith(original + "-") and len(utt) > len(original) + 1:
            conditions[utt] = utt[len(original) + 1:]
        else:
            raise InputError(path, f"utterance '{utt}' is neither its original '{original}' nor a copy named "
                             f"'{original}-<condition>' (expected a stage-2 augmented data dir)")
    return conditions


def cmd_copy_conditions(args: argparse.Namespace) -> None:
    path = Path(args.dir) / "utt2uniq"
    data = DataDir.load(args.dir)
    if "utt2uniq" not in data.tables:
        raise InputError(path, "not found (expected a stage-2 data dir: originals and their augmented copies)")
    conditions = copy_conditions(data.tables["utt2uniq"], path)
    output = args.output or str(Path(args.dir) / "utt2dev")
    _write_output(output, conditions)
    counts = {c: list(conditions.values()).count(c) for c in sorted(set(conditions.values()))}
    print(f"copy_conditions: {output}: " + ", ".join(f"{c} {n}" for c, n in counts.items()), file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m wespeaker_like.bin.data_dir", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for name, source, target in (("utt2spk_to_spk2utt", "utt2spk", "spk2utt"),
                                 ("spk2utt_to_utt2spk", "spk2utt", "utt2spk")):
        sub = commands.add_parser(name, help=f"{source} -> {target} (C-sorted)")
        sub.add_argument("input", nargs="?", default="-", help=f"{source} file ('-' or absent: stdin)")
        sub.add_argument("output", nargs="?", default="-", help=f"{target} file ('-' or absent: stdout)")
        sub.set_defaults(run=globals()[f"cmd_{name}"])

    sub = commands.add_parser("validate", help="check a data dir is consistent (exit 1 naming the problem)")
    sub.add_argument("dir")
    sub.add_argument("--need", action="append", default=[], metavar="FILE",
            help="a file that must exist besides utt2spk and wav.scp (repeatable)")
    sub.add_argument("--no-wav", action="store_true", help="do not require wav.scp (e.g. a features-only dir)")
    sub.set_defaults(run=cmd_validate)

    sub = commands.add_parser("fix", help="keep utterances present in every file; sort; regenerate spk2utt")
    sub.add_argument("dir")
    sub.set_defaults(run=cmd_fix)

    sub = commands.add_parser("subset", help="copy part of a data dir")
    sub.add_argument("src")
    sub.add_argument("dest")
    how = sub.add_mutually_exclusive_group(required=True)
    how.add_argument("--utt-list", type=Path, help="utterance ids, one per line (first field)")
    how.add_argument("--spk-list", type=Path, help="speaker ids, one per line (first field)")
    how.add_argument("--first", type=int, metavar="N", help="the first N utterances in sorted order")
    how.add_argument("--random", type=int, metavar="N", help="N utterances drawn at random (see --seed)")
    sub.add_argument("--seed", type=int, default=0, help="random seed for --random (default 0)")
    sub.set_defaults(run=cmd_subset)

    sub = commands.add_parser("combine", help="union of data dirs (ids must not collide)")
    sub.add_argument("dest")
    sub.add_argument("src", nargs="+")
    sub.add_argument("--skip-fix", action="store_true", help="do not drop utterances missing from some file")
    sub.set_defaults(run=cmd_combine)

    sub = commands.add_parser("make_trials", help="draw a seeded trial list from a data dir's utt2spk")
    sub.add_argument("dir")
    sub.add_argument("trials", help="output '<enroll> <test> target|nontarget' list")
    sub.add_argument("--num-target", type=int, required=True, help="number of same-speaker trials")
    sub.add_argument("--num-nontarget", type=int, required=True, help="number of different-speaker trials")
    sub.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sub.set_defaults(run=cmd_make_trials)

    sub = commands.add_parser("copy_conditions", help="utt2dev = each utterance's stage-2 condition (clean, "
                              "reverb, ...) from utt2uniq and the copy's id suffix")
    sub.add_argument("dir")
    sub.add_argument("output", nargs="?", default=None, help="utt2dev file ('-': stdout; default <dir>/utt2dev)")
    sub.set_defaults(run=cmd_copy_conditions)
    return parser


@entry_point("data_dir")
def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
