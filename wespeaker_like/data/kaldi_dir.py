"""Kaldi data directories: read, write, validate, fix, subset, combine.

Files follow Kaldi's definitions: one ``<key> <value>`` per line, keys sorted with ``LC_ALL=C``
(byte order), no duplicates. ``wav.scp`` values may be a path or a ``cmd |`` pipe; ``spk2utt``
values are lists. With a ``segments`` file, ``wav.scp`` is keyed by recording, not utterance.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from wespeaker_like.errors import InputError
from wespeaker_like.fileio import atomic_write

# Files keyed by utterance id that a data dir may hold; fix/subset/combine carry them along.
UTT_FILES = (
    "wav.scp", "utt2spk", "text", "utt2dur", "utt2num_frames", "utt2uniq", "utt2dev",
    "utt2lang", "feats.scp", "segments",
)
SPK_FILES = ("spk2gender", "spk2age")

# A check of the value column and the line format it expects, used in error messages.
ValueFormat = Tuple[Callable[[str], bool], str]


def _is_single_token(value: str) -> bool:
    return len(value.split()) == 1


def _is_duration(value: str) -> bool:
    try:
        number = float(value)
    except ValueError:
        return False
    return math.isfinite(number) and number >= 0


def _is_count(value: str) -> bool:
    return value.isdigit()


def _is_segment(value: str) -> bool:
    fields = value.split()
    if len(fields) != 3:
        return False
    try:
        start, end = float(fields[1]), float(fields[2])
    except ValueError:
        return False
    return start >= 0 and (end == -1 or end > start)  # Kaldi: end -1 means "to the end"


# Value checks that ``DataDir.load`` applies to the files it knows.
VALUE_FORMATS: Dict[str, ValueFormat] = {
    "utt2spk": (_is_single_token, "'<utterance> <speaker>'"),
    "utt2dur": (_is_duration, "'<utterance> <duration in seconds>'"),
    "utt2num_frames": (_is_count, "'<utterance> <number of frames>'"),
    "segments": (_is_segment, "'<utterance> <recording> <start> <end>' with end > start or -1"),
    "spk2gender": (lambda value: value in ("m", "f"), "'<speaker> m|f'"),
}


class TableLine(NamedTuple):
    """One non-blank line of a text table: where it is, its whitespace-split fields and its text."""

    source: str | Path
    number: int  # 1-based
    fields: List[str]
    text: str  # without surrounding whitespace

    def error(self, message: str) -> InputError:
        """``InputError`` naming this line: ``source:number: message``."""
        return InputError(self.source, message, self.number)

    def expected(self, form: str) -> InputError:
        """``source:number: expected <form>, got '<line>'``."""
        return self.error(f"expected {form}, got '{self.text}'")


def numbered_lines(lines: Iterable[str | bytes], source: str | Path) -> Iterator[TableLine]:
    """The non-blank lines of ``lines`` with their numbers; a bytes line that is not UTF-8 is an
    ``InputError`` naming ``source`` and the line. This is the one loop over table lines."""
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError(source, "not UTF-8 text", number) from None
        text = raw.strip()
        if text:
            yield TableLine(source, number, text.split(), text)


def table_lines(path: str | Path, not_found: str = "file not found") -> Iterator[TableLine]:
    """``numbered_lines`` of a file; a missing file is an ``InputError`` saying ``not_found``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, not_found)
    with open(path, "rb") as handle:
        yield from numbered_lines(handle, path)


def parse_table(lines: Iterable[str | bytes], source: str | Path = "<input>", allow_empty_value: bool = False,
                value_format: Optional[ValueFormat] = None) -> Dict[str, str]:
    """Parse ``<key> <value...>`` lines (value = rest of the line) into an ordered dict.

    ``source`` names the input in errors. Raises ``InputError`` naming source and line on a
    missing value, a duplicate key, a value rejected by ``value_format`` or non-UTF-8 text.
    """
    table: Dict[str, str] = {}
    number = 0
    try:
        for line in numbered_lines(lines, source):
            number = line.number
            parts = line.text.split(maxsplit=1)
            if len(parts) < 2 and not allow_empty_value:
                raise line.expected("'<key> <value>'")
            key = parts[0]
            value = parts[1] if len(parts) > 1 else ""
            if key in table:
                raise line.error(f"duplicate key '{key}'")
            if value_format is not None and not value_format[0](value):
                raise line.expected(value_format[1])
            table[key] = value
    except UnicodeDecodeError:  # from a text stream such as stdin
        raise InputError(source, "not UTF-8 text", number + 1) from None
    return table


def read_table(path: str | Path, allow_empty_value: bool = False,
               value_format: Optional[ValueFormat] = None) -> Dict[str, str]:
    """Read a ``<key> <value...>`` file into an ordered dict; see ``parse_table`` for errors."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found (expected a Kaldi '<key> <value>' table)")
    with open(path, "rb") as handle:
        return parse_table(handle, path, allow_empty_value, value_format)


def read_list_table(path: str | Path) -> Dict[str, List[str]]:
    """Read ``<key> <item> <item> ...`` (e.g. spk2utt) into key -> list."""
    return {key: value.split() for key, value in read_table(path).items()}


def read_number_table(path: str | Path, kind=float) -> Dict[str, float]:
    """Read ``<key> <number>`` (utt2dur, utt2num_frames); errors name the offending line."""
    def is_number(value: str) -> bool:
        try:
            kind(value)
        except ValueError:
            return False
        return True

    table = read_table(path, value_format=(is_number, f"'<key> <{kind.__name__}>'"))
    return {key: kind(value) for key, value in table.items()}


_line_index_cache: Dict[Path, Tuple[Tuple[int, int], Dict[str, int]]] = {}


def line_of(path: str | Path, key: str) -> Optional[int]:
    """1-based line number of ``key`` in a table file (None if absent), for error messages.

    The key -> line index of each file is cached until the file changes.
    """
    path = Path(path).resolve()
    stat = path.stat()
    version = (stat.st_mtime_ns, stat.st_size)
    cached = _line_index_cache.get(path)
    if cached is None or cached[0] != version:
        index: Dict[str, int] = {}
        for line in table_lines(path):
            index.setdefault(line.fields[0], line.number)
        cached = _line_index_cache[path] = (version, index)
    return cached[1].get(key)


def job_split(items: Sequence, job: int, num_jobs: int) -> List:
    """Contiguous share ``job`` (1-based) of ``num_jobs`` of an ordered sequence (Kaldi's split_data).

    The shares of jobs 1..num_jobs concatenate to ``items``; their sizes differ by at most one.
    """
    if not 1 <= job <= num_jobs:
        raise ValueError(f"job {job} is outside 1..{num_jobs}")
    return list(items[(job - 1) * len(items) // num_jobs: job * len(items) // num_jobs])


def c_sorted(keys: Iterable[str]) -> List[str]:
    """Sort like ``LC_ALL=C sort``: by UTF-8 bytes."""
    return sorted(keys, key=_c_order)


def format_table(table: Mapping[str, object]) -> Iterator[str]:
    """Yield ``<key> <value>\\n`` lines in C byte order. Lists are space-joined."""
    for key in c_sorted(table):
        value = table[key]
        if isinstance(value, (list, tuple)):
            value = " ".join(str(v) for v in value)
        yield f"{key} {value}\n"


def write_table(path: str | Path, table: Mapping[str, object]) -> None:
    """Write ``<key> <value>`` lines sorted in C byte order, atomically. Lists are space-joined."""
    with atomic_write(path) as handle:
        handle.writelines(format_table(table))


def _c_order(key: str) -> bytes:
    return key.encode("utf-8")


def utt2spk_to_spk2utt(utt2spk: Mapping[str, str]) -> Dict[str, List[str]]:
    spk2utt: Dict[str, List[str]] = {}
    for utt in c_sorted(utt2spk):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return spk2utt


def spk2utt_to_utt2spk(spk2utt: Mapping[str, Sequence[str]]) -> Dict[str, str]:
    return {utt: spk for spk, utts in spk2utt.items() for utt in utts}


class DataDir:
    """A Kaldi data directory held in memory as ``{file name: table}``.

    ``DataDir.load(path)`` reads every known file that exists; ``save(path)`` writes them
    (sorted, atomic), regenerates ``spk2utt`` from ``utt2spk`` and removes known files the
    object does not hold, so the directory on disk is exactly this data dir. ``path`` names the
    directory in error messages.
    """

    def __init__(self, tables: Optional[Dict[str, Dict[str, str]]] = None, path: Optional[Path] = None):
        self.tables: Dict[str, Dict[str, str]] = tables or {}
        self.path = path
        # True after load()/save(): the tables are the files on disk, in file order.
        self._mirrors_disk = False

    @classmethod
    def load(cls, path: str | Path, need_speakers: bool = True) -> "DataDir":
        """``need_speakers=False`` (unlabelled training data): without ``utt2spk`` every utterance of
        ``feats.scp``, ``segments`` or ``wav.scp`` is its own speaker, Kaldi's convention for unknown
        speakers."""
        path = Path(path)
        if not path.is_dir():
            raise InputError(path, "data directory not found (expected a Kaldi data dir with wav.scp and utt2spk)")
        tables = {}
        for name in UTT_FILES + SPK_FILES:
            if (path / name).is_file():
                tables[name] = read_table(path / name, value_format=VALUE_FORMATS.get(name))
        if "utt2spk" not in tables:
            # utterance-keyed listings; with segments, wav.scp is keyed by recording
            listing = next((tables[n] for n in ("feats.scp", "segments", "wav.scp") if n in tables), None)
            if need_speakers or listing is None:
                raise InputError(path / "utt2spk", "file not found (every data dir needs utt2spk"
                                 + ("" if need_speakers else ", or feats.scp / wav.scp to list the utterances") + ")")
            tables["utt2spk"] = {utt: utt for utt in c_sorted(listing)}
        data = cls(tables, path)
        data._mirrors_disk = True
        return data

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        for name in UTT_FILES + SPK_FILES:
            if name not in self.tables and (path / name).is_file():
                (path / name).unlink()  # a stale file from an older version of this dir
        for name, table in self.tables.items():
            write_table(path / name, table)
        write_table(path / "spk2utt", utt2spk_to_spk2utt(self.utt2spk))
        # Keep the in-memory order equal to the file order, which validate() checks.
        self.tables = {name: {key: table[key] for key in c_sorted(table)} for name, table in self.tables.items()}
        self.path = path
        self._mirrors_disk = True

    @property
    def utt2spk(self) -> Dict[str, str]:
        return self.tables["utt2spk"]

    @property
    def utts(self) -> List[str]:
        return c_sorted(self.utt2spk)

    @property
    def spk2utt(self) -> Dict[str, List[str]]:
        return utt2spk_to_spk2utt(self.utt2spk)

    def __getitem__(self, name: str) -> Dict[str, str]:
        return self.tables[name]

    def __contains__(self, name: str) -> bool:
        return name in self.tables

    def _utt_keyed_files(self) -> List[str]:
        """Utterance-keyed files held; with segments, wav.scp is keyed by recording instead."""
        return [name for name in UTT_FILES if name in self.tables
                and not (name == "wav.scp" and "segments" in self.tables)]

    def _recording(self, utt: str) -> str:
        return self.tables["segments"][utt].split()[0]

    def validate(self, need: Iterable[str] = ("wav.scp",)) -> None:
        """Check the dir is consistent: every file covers exactly the utterances of utt2spk
        (and their speakers), files are C-sorted and spk2utt matches utt2spk.

        Raises ``InputError`` naming the first offending file and key. Use ``fix`` to repair.
        """
        where = self.path or Path("<data dir>")
        for name in need:
            if name not in self.tables:
                raise InputError(where / name, "file not found (required here)")
        if not self.utt2spk:
            raise InputError(where / "utt2spk", "no utterances (the file is empty)")
        utts = set(self.utt2spk)
        for name in self._utt_keyed_files():
            keys = set(self.tables[name])
            missing = c_sorted(utts - keys)
            extra = c_sorted(keys - utts)
            if missing:
                raise InputError(where / name, f"no entry for utterance '{missing[0]}' of utt2spk "
                                 f"({len(missing)} missing; run fix_data_dir)")
            if extra:
                raise InputError(where / name, f"utterance '{extra[0]}' is not in utt2spk "
                                 f"({len(extra)} extra; run fix_data_dir)")
        if "segments" in self.tables and "wav.scp" in self.tables:
            recordings = set(self.tables["wav.scp"])
            for utt in c_sorted(utts):
                if self._recording(utt) not in recordings:
                    raise InputError(where / "segments", f"recording '{self._recording(utt)}' of utterance "
                                     f"'{utt}' is not in wav.scp (run fix_data_dir)")
        speakers = set(self.utt2spk.values())
        for name in SPK_FILES:
            if name in self.tables:
                missing = c_sorted(speakers - set(self.tables[name]))
                if missing:
                    raise InputError(where / name, f"no entry for speaker '{missing[0]}' (run fix_data_dir)")
        if self._mirrors_disk:
            self._validate_on_disk()

    def _validate_on_disk(self) -> None:
        """Checks that only make sense for files as written: sort order and spk2utt."""
        for name, table in self.tables.items():
            keys = list(table)
            for before, after in zip(keys, keys[1:]):
                if _c_order(before) > _c_order(after):
                    raise InputError(self.path / name, f"not sorted in C (byte) order: '{before}' comes "
                                     f"before '{after}' (run fix_data_dir)")
        spk2utt_path = self.path / "spk2utt"
        if not spk2utt_path.is_file():
            raise InputError(spk2utt_path, "file not found (run fix_data_dir to create it from utt2spk)")
        on_disk = {spk: c_sorted(utts) for spk, utts in read_list_table(spk2utt_path).items()}
        expected = self.spk2utt
        for speaker in c_sorted(set(on_disk) | set(expected)):
            if on_disk.get(speaker) != expected.get(speaker):
                raise InputError(spk2utt_path, f"entry of speaker '{speaker}' does not match utt2spk "
                                 "(run fix_data_dir to regenerate it)")

    def fixed(self) -> "DataDir":
        """Keep only utterances present in every utterance file whose speaker is in every
        speaker file (and, with segments, whose recording is in wav.scp)."""
        keep = set(self.utt2spk)
        for name in self._utt_keyed_files():
            keep &= set(self.tables[name])
        if "segments" in self.tables and "wav.scp" in self.tables:
            keep = {utt for utt in keep if self._recording(utt) in self.tables["wav.scp"]}
        for name in SPK_FILES:
            if name in self.tables:
                keep = {utt for utt in keep if self.utt2spk[utt] in self.tables[name]}
        return self.subset(keep)

    def subset(self, utts: Iterable[str]) -> "DataDir":
        """The given utterances (unknown ids are ignored), their speakers and recordings."""
        keep = set(utts)
        tables = {}
        for name in self._utt_keyed_files():
            tables[name] = {k: v for k, v in self.tables[name].items() if k in keep}
        if "segments" in self.tables and "wav.scp" in self.tables:
            recordings = {value.split()[0] for value in tables["segments"].values()}
            tables["wav.scp"] = {k: v for k, v in self.tables["wav.scp"].items() if k in recordings}
        speakers = set(tables["utt2spk"].values())
        for name in SPK_FILES:
            if name in self.tables:
                tables[name] = {k: v for k, v in self.tables[name].items() if k in speakers}
        return DataDir(tables)

    def subset_speakers(self, speakers: Iterable[str]) -> "DataDir":
        keep = set(speakers)
        return self.subset(u for u, s in self.utt2spk.items() if s in keep)

    def random_subset(self, num_utts: int, seed: int = 0) -> "DataDir":
        utts = self.utts
        rng = random.Random(seed)
        return self.subset(rng.sample(utts, min(num_utts, len(utts))))

    @staticmethod
    def combine(dirs: Sequence["DataDir"]) -> "DataDir":
        """Union of data dirs; only files present in all of them are kept; keys must not collide
        (a speaker may appear in several dirs if its spk2gender/spk2age entries agree)."""
        if not dirs:
            raise ValueError("combine needs at least one data dir")
        # utt2spk first, so that a repeated utterance is reported there.
        names = sorted(set.intersection(*(set(d.tables) for d in dirs)), key=lambda name: name != "utt2spk")
        tables: Dict[str, Dict[str, str]] = {name: {} for name in names}
        for d in dirs:
            for name in names:
                for key, value in d.tables[name].items():
                    old = tables[name].get(key)
                    if old is not None and (name not in SPK_FILES or old != value):
                        raise InputError((d.path or Path("<data dir>")) / name,
                                         f"key '{key}' also appears in an earlier data dir")
                    tables[name][key] = value
        return DataDir(tables)
