"""Kaldi data dirs and trial lists: wespeaker_like.data.kaldi_dir / trials, the data_dir CLI
and the tools/ wrappers around it."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # runnable from any directory

from wespeaker_like.bin import data_dir as cli  # noqa: E402
from wespeaker_like.data.kaldi_dir import (  # noqa: E402
    DataDir, c_sorted, job_split, line_of, table_lines, parse_table, read_list_table, read_number_table, read_table,
    spk2utt_to_utt2spk, utt2spk_to_spk2utt, write_table,
)
from wespeaker_like.data.trials import Trial, make_trials, read_trials, write_trials  # noqa: E402
from wespeaker_like.errors import InputError  # noqa: E402


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def make_dir(path: Path, speakers=("spkA", "spkB", "spkC"), per_speaker=3, extra: dict | None = None) -> Path:
    """A consistent data dir: utterances <spk>-<i>, wav.scp, utt2spk, spk2utt, spk2gender."""
    utt2spk = {f"{spk}-{i}": spk for spk in speakers for i in range(per_speaker)}
    tables = {"utt2spk": utt2spk, "wav.scp": {utt: f"/audio/{utt}.wav" for utt in utt2spk},
              "spk2gender": {spk: "mf"[n % 2] for n, spk in enumerate(speakers)}}
    tables.update(extra or {})
    DataDir(tables).save(path)
    return path


# --- tables ----------------------------------------------------------------------------------

def test_write_read_round_trip_in_c_order(tmp_path):
    table = {"b": "2", "B": "1", "a_1": "x y  z", "a-1": "dash", "\u00e9t\u00e9": "accent", "a": "first"}
    write_table(tmp_path / "t", table)
    keys = [line.split()[0] for line in (tmp_path / "t").read_text(encoding="utf-8").splitlines()]
    assert keys == ["B", "a", "a-1", "a_1", "b", "\u00e9t\u00e9"]  # bytes: 'B' < 'a' < '-' suffix < '_'
    assert keys == c_sorted(table)
    back = read_table(tmp_path / "t")
    assert back == {**table, "a_1": "x y  z"}
    assert list(back) == keys
    # the same order as the C locale's sort(1)
    sorted_by_sort = subprocess.run(["sort"], input="\n".join(table) + "\n", capture_output=True, text=True,
                                    env=dict(os.environ, LC_ALL="C")).stdout.split()
    assert sorted_by_sort == keys


def test_write_table_joins_lists_and_is_atomic(tmp_path):
    write_table(tmp_path / "spk2utt", {"s2": ["u3"], "s1": ("u1", "u2")})
    assert (tmp_path / "spk2utt").read_text() == "s1 u1 u2\ns2 u3\n"
    assert [p.name for p in tmp_path.iterdir()] == ["spk2utt"]  # no temporary left behind


def test_duplicate_key_names_file_and_line(tmp_path):
    path = write(tmp_path / "utt2spk", "u1 s1\n\nu2 s1\nu1 s2\n")
    with pytest.raises(InputError) as info:
        read_table(path)
    assert str(info.value) == f"{path}:4: duplicate key 'u1'"
    assert (info.value.path, info.value.line) == (str(path), 4)


def test_malformed_line_names_file_and_line(tmp_path):
    path = write(tmp_path / "wav.scp", "u1 /a.wav\nu2\n")
    with pytest.raises(InputError, match=rf"^{path}:2: expected '<key> <value>', got 'u2'$"):
        read_table(path)
    assert read_table(path, allow_empty_value=True) == {"u1": "/a.wav", "u2": ""}


def test_missing_file_and_non_utf8(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_table(tmp_path / "nope")
    path = tmp_path / "text"
    path.write_bytes(b"u1 fine\nu2 caf\xe9\n")
    with pytest.raises(InputError, match=rf"^{path}:2: not UTF-8 text$"):
        read_table(path)
    path.write_bytes(b"a b target\n" * 5000 + b"x \xff target\n")
    with pytest.raises(InputError, match=rf"^{path}:5001: not UTF-8 text$"):
        read_trials(path)


def test_parse_table_from_lines():
    assert parse_table(["k  v w\n", "  \n", "k2 v\r\n"], "<stdin>") == {"k": "v w", "k2": "v"}
    with pytest.raises(InputError, match=r"^<stdin>:1: expected 'x', got 'k a b'$"):
        parse_table(["k a b\n"], "<stdin>", value_format=(lambda v: " " not in v, "'x'"))


def test_number_and_list_tables(tmp_path):
    path = write(tmp_path / "utt2dur", "u1 1.5\nu2 2\n")
    assert read_number_table(path) == {"u1": 1.5, "u2": 2.0}
    write(path, "u1 1.5\n\nu2 long\n")
    with pytest.raises(InputError, match=rf"^{path}:3: expected '<key> <float>', got 'u2 long'$"):
        read_number_table(path)
    assert read_list_table(write(tmp_path / "spk2utt", "s1 u1 u2\n")) == {"s1": ["u1", "u2"]}


def test_line_of(tmp_path):
    path = write(tmp_path / "wav.scp", "u1 a\n\nu2 b\n")
    assert (line_of(path, "u2"), line_of(path, "u1"), line_of(path, "u9")) == (3, 1, None)
    write(path, "u2 b\nu1 a\nu3 c\n")  # the cache follows changes of the file
    assert line_of(path, "u3") == 3


def test_utt2spk_spk2utt_conversions():
    utt2spk = {"b-2": "b", "a-1": "a", "b-1": "b"}
    spk2utt = utt2spk_to_spk2utt(utt2spk)
    assert spk2utt == {"a": ["a-1"], "b": ["b-1", "b-2"]}
    assert spk2utt_to_utt2spk(spk2utt) == utt2spk


# --- DataDir ---------------------------------------------------------------------------------

def test_save_load_round_trip(tmp_path):
    path = make_dir(tmp_path / "d", extra={"utt2dur": {"spkA-0": "1.25"}})
    data = DataDir.load(path)
    assert set(data.tables) == {"utt2spk", "wav.scp", "spk2gender", "utt2dur"}
    assert data.utts == c_sorted(data.utt2spk) and len(data.utts) == 9
    assert (path / "spk2utt").read_text().splitlines()[0] == "spkA spkA-0 spkA-1 spkA-2"
    data.tables.pop("utt2dur")
    data.save(path)
    assert not (path / "utt2dur").exists()  # a file the data dir no longer has is removed
    assert DataDir.load(path).tables == data.tables


def test_load_checks_value_formats(tmp_path):
    path = make_dir(tmp_path / "d")
    write(path / "utt2spk", "spkA-0 spkA\nspkA-1 spk A\n")
    with pytest.raises(InputError, match=r"utt2spk:2: expected '<utterance> <speaker>', got 'spkA-1 spk A'"):
        DataDir.load(path)
    path = make_dir(tmp_path / "e", extra={"utt2dur": {"spkA-0": "abc"}})
    with pytest.raises(InputError, match=r"utt2dur:1: expected '<utterance> <duration in seconds>'"):
        DataDir.load(path)
    with pytest.raises(InputError, match=r"utt2spk: file not found"):
        DataDir.load(write(tmp_path / "f" / "wav.scp", "u a\n").parent)


def test_validate_accepts_a_consistent_dir(tmp_path):
    DataDir.load(make_dir(tmp_path / "d")).validate(need=("wav.scp", "spk2gender"))


def validation_error(path: Path, **kwargs) -> str:
    with pytest.raises(InputError) as info:
        DataDir.load(path).validate(**kwargs)
    return str(info.value)


def test_validate_messages(tmp_path):
    path = make_dir(tmp_path / "d")
    write(path / "wav.scp", "".join(f"{u} x\n" for u in DataDir.load(path).utts[1:]))
    assert validation_error(path) == (f"{path}/wav.scp: no entry for utterance 'spkA-0' of utt2spk "
                                      "(1 missing; run fix_data_dir)")
    write(path / "wav.scp", "".join(f"{u} x\n" for u in DataDir.load(path).utts + ["zz"]))
    assert validation_error(path) == f"{path}/wav.scp: utterance 'zz' is not in utt2spk (1 extra; run fix_data_dir)"

    path = make_dir(tmp_path / "g")
    write(path / "spk2gender", "spkA m\nspkC f\n")
    assert validation_error(path) == f"{path}/spk2gender: no entry for speaker 'spkB' (run fix_data_dir)"

    path = make_dir(tmp_path / "s")
    write(path / "wav.scp", "".join(f"{u} x\n" for u in reversed(DataDir.load(path).utts)))
    assert "wav.scp: not sorted in C (byte) order: 'spkC-2' comes before 'spkC-1'" in validation_error(path)

    path = make_dir(tmp_path / "k")
    write(path / "spk2utt", "spkA spkA-0 spkA-1\nspkB spkA-2 spkB-0 spkB-1 spkB-2\nspkC spkC-0 spkC-1 spkC-2\n")
    assert validation_error(path) == f"{path}/spk2utt: entry of speaker 'spkA' does not match utt2spk " \
                                     "(run fix_data_dir to regenerate it)"
    (path / "spk2utt").unlink()
    assert "spk2utt: file not found" in validation_error(path)

    path = make_dir(tmp_path / "n")
    assert validation_error(path, need=("wav.scp", "text")) == f"{path}/text: file not found (required here)"
    write(path / "utt2spk", "")
    write(path / "wav.scp", "")
    assert validation_error(path) == f"{path}/utt2spk: no utterances (the file is empty)"


def test_validate_in_memory_dir_skips_on_disk_checks(tmp_path):
    data = DataDir({"utt2spk": {"b": "s", "a": "s"}, "wav.scp": {"b": "x", "a": "y"}}, tmp_path / "new")
    data.validate()  # unsorted in memory is fine: save() sorts


def test_fixed_drops_entries_missing_from_any_file(tmp_path):
    path = make_dir(tmp_path / "d", extra={"text": {u: "hi" for u in ["spkA-0", "spkA-1", "spkB-0", "spkC-0",
                                                                       "spkC-1", "spkC-2", "stray"]}})
    write(path / "wav.scp", "".join(f"{u} x\n" for u in DataDir.load(path).utts if u != "spkC-2"))
    write(path / "spk2gender", "spkA m\nspkC f\nspkZ m\n")  # spkB has no gender: its utterances go
    fixed = DataDir.load(path).fixed()
    assert fixed.utts == ["spkA-0", "spkA-1", "spkC-0", "spkC-1"]
    assert set(fixed["text"]) == set(fixed["wav.scp"]) == set(fixed.utts)
    assert fixed["spk2gender"] == {"spkA": "m", "spkC": "f"}
    fixed.save(path)
    DataDir.load(path).validate(need=("wav.scp", "text"))


def test_segments_key_wav_scp_by_recording(tmp_path):
    tables = {"utt2spk": {"r1-a": "s1", "r1-b": "s1", "r2-a": "s2"},
              "segments": {"r1-a": "r1 0.0 1.5", "r1-b": "r1 1.5 3", "r2-a": "r2 0 -1"},
              "wav.scp": {"r1": "/r1.wav", "r2": "/r2.wav"}}
    DataDir(tables).save(tmp_path / "d")
    data = DataDir.load(tmp_path / "d")
    data.validate()
    assert data.fixed().utts == data.utts  # wav.scp keys are recordings, nothing to drop
    assert data.subset(["r1-b"])["wav.scp"] == {"r1": "/r1.wav"}
    write(tmp_path / "d" / "wav.scp", "r1 /r1.wav\n")
    data = DataDir.load(tmp_path / "d")
    assert "recording 'r2' of utterance 'r2-a' is not in wav.scp" in validation_error(tmp_path / "d")
    assert data.fixed().utts == ["r1-a", "r1-b"]
    write(tmp_path / "d" / "segments", "r1-a r1 2.0 1.0\n")
    with pytest.raises(InputError, match=r"segments:1: expected '<utterance> <recording> <start> <end>'"):
        DataDir.load(tmp_path / "d")


def test_subset_variants(tmp_path):
    data = DataDir.load(make_dir(tmp_path / "d"))
    sub = data.subset(["spkB-1", "spkA-0", "unknown"])
    assert sub.utts == ["spkA-0", "spkB-1"]
    assert sub["spk2gender"] == {"spkA": "m", "spkB": "f"}
    assert data.subset_speakers(["spkC"]).utts == ["spkC-0", "spkC-1", "spkC-2"]
    first = data.random_subset(4, seed=3)
    assert first.utts == data.random_subset(4, seed=3).utts and len(first.utts) == 4
    assert any(data.random_subset(4, seed=s).utts != first.utts for s in range(4, 10))
    assert len(data.random_subset(100).utts) == 9


def test_combine(tmp_path):
    one = DataDir.load(make_dir(tmp_path / "a", speakers=("s1", "s2"), extra={"text": {}}))
    two = DataDir.load(make_dir(tmp_path / "b", speakers=("s3",)))
    both = DataDir.combine([one, two])
    assert set(both.tables) == {"utt2spk", "wav.scp", "spk2gender"}  # text is not in both
    assert len(both.utts) == 9 and both["spk2gender"] == {"s1": "m", "s2": "f", "s3": "m"}
    with pytest.raises(InputError, match=r"c/utt2spk: key 's1-0' also appears in an earlier data dir"):
        DataDir.combine([one, DataDir.load(make_dir(tmp_path / "c", speakers=("s1",)))])
    # a shared speaker is fine when its attributes agree
    shared = DataDir({"utt2spk": {"x-9": "s1"}, "spk2gender": {"s1": "m"}})
    assert DataDir.combine([one, shared])["spk2gender"]["s1"] == "m"


# --- trials ----------------------------------------------------------------------------------

UTT2SPK = {f"s{s}-u{u}": f"s{s}" for s in range(5) for u in range(4)}  # 30 target, 160 nontarget pairs


def test_make_trials_is_seeded_and_labels_are_right():
    trials = make_trials(UTT2SPK, 20, 50, seed=7)
    assert trials == make_trials(UTT2SPK, 20, 50, seed=7)
    assert trials != make_trials(UTT2SPK, 20, 50, seed=8)
    assert sum(t.is_target for t in trials) == 20 and len(trials) == 70
    for trial in trials:
        assert trial.enroll != trial.test
        assert trial.is_target == (UTT2SPK[trial.enroll] == UTT2SPK[trial.test])
    pairs = {frozenset((t.enroll, t.test)) for t in trials}
    assert len(pairs) == 70  # no trial twice


def test_make_trials_limits():
    everything = make_trials(UTT2SPK, 30, 160, seed=1)  # every pair: dense sampling path
    assert len({frozenset((t.enroll, t.test)) for t in everything}) == 190
    assert make_trials(UTT2SPK, 0, 150, seed=2) == make_trials(UTT2SPK, 0, 150, seed=2)
    with pytest.raises(ValueError, match="only 30 target pairs exist; asked for 31"):
        make_trials(UTT2SPK, 31, 0)
    with pytest.raises(ValueError, match="only 160 non-target pairs exist; asked for 161"):
        make_trials(UTT2SPK, 0, 161)
    with pytest.raises(ValueError, match="must not be negative"):
        make_trials(UTT2SPK, -1, 5)
    with pytest.raises(ValueError, match="asked for no trials"):
        make_trials(UTT2SPK, 0, 0)


def test_trials_round_trip_and_errors(tmp_path):
    trials = [Trial("a", "b", True), Trial("a", "c", False)]
    write_trials(tmp_path / "trials", trials)
    assert (tmp_path / "trials").read_text() == "a b target\na c nontarget\n"
    assert read_trials(tmp_path / "trials", known_utts={"a", "b", "c"}) == trials
    with pytest.raises(InputError, match=r"trials:2: utterance 'c' is not in the evaluation data"):
        read_trials(tmp_path / "trials", known_utts={"a", "b"})
    bad = write(tmp_path / "bad", "a b target\n\na b c d\n")
    with pytest.raises(InputError, match=rf"^{bad}:3: expected '<enroll> <test> target\|nontarget'"):
        read_trials(bad)
    write(bad, "a b yes\n")
    with pytest.raises(InputError, match=rf"^{bad}:1: label must be 'target' or 'nontarget', got 'yes'"):
        read_trials(bad)
    write(bad, "\n")
    with pytest.raises(InputError, match="trial list is empty"):
        read_trials(bad)


# --- CLI (in process) ------------------------------------------------------------------------

def test_cli_fix_keeps_backup_and_reports(tmp_path, capsys):
    path = make_dir(tmp_path / "d")
    old_wav = "".join(f"{u} x\n" for u in reversed(DataDir.load(path).utts) if u != "spkB-1")
    write(path / "wav.scp", old_wav)
    assert cli.main(["fix", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"fix_data_dir: {path}: kept 8 of 9 utterances (dropped 1), 3 speakers" in out
    assert "removed 1 entries from utt2spk" in out
    assert (path / ".backup" / "wav.scp").read_text() == old_wav
    assert "spkB-1" not in (path / "spk2utt").read_text()
    assert cli.main(["validate", str(path)]) == 0
    assert f"{path} is OK: 8 utterances, 3 speakers" in capsys.readouterr().out


def test_cli_fix_refuses_to_empty_a_dir(tmp_path, capsys):
    path = make_dir(tmp_path / "d")
    write(path / "wav.scp", "other x\n")
    assert cli.main(["fix", str(path)]) == 1
    assert "no utterance is in every file" in capsys.readouterr().err
    assert len(read_table(path / "utt2spk")) == 9  # untouched


def test_cli_validate_failure(tmp_path, capsys):
    path = make_dir(tmp_path / "d")
    (path / "wav.scp").unlink()
    assert cli.main(["validate", str(path)]) == 1
    assert capsys.readouterr().err == f"data_dir: {path}/wav.scp: file not found (required here)\n"
    assert cli.main(["validate", "--no-wav", "--need", "spk2gender", str(path)]) == 0


def test_cli_subset(tmp_path, capsys):
    src = make_dir(tmp_path / "src")
    write(tmp_path / "utts", "spkC-1\nspkA-2 extra fields\nnope\n\n")
    assert cli.main(["subset", "--utt-list", str(tmp_path / "utts"), str(src), str(tmp_path / "u")]) == 0
    assert "1 utterances of" in capsys.readouterr().err
    assert DataDir.load(tmp_path / "u").utts == ["spkA-2", "spkC-1"]
    write(tmp_path / "spks", "spkB\n")
    assert cli.main(["subset", "--spk_list", str(tmp_path / "spks"), str(src), str(tmp_path / "s")]) == 0
    assert list(DataDir.load(tmp_path / "s").spk2utt) == ["spkB"]
    assert cli.main(["subset", "--first", "2", str(src), str(tmp_path / "f")]) == 0
    assert DataDir.load(tmp_path / "f").utts == ["spkA-0", "spkA-1"]
    assert cli.main(["subset", "--random", "5", "--seed", "3", str(src), str(tmp_path / "r1")]) == 0
    assert cli.main(["subset", "--random", "5", "--seed", "3", str(src), str(tmp_path / "r2")]) == 0
    assert (tmp_path / "r1/utt2spk").read_text() == (tmp_path / "r2/utt2spk").read_text()
    for path in ("u", "s", "f", "r1"):
        DataDir.load(tmp_path / path).validate()
    capsys.readouterr()
    assert cli.main(["subset", "--first", "10", str(src), str(tmp_path / "x")]) == 1
    assert "asked for 10 utterances, expected 1..9" in capsys.readouterr().err
    assert cli.main(["subset", "--first", "1", str(src), str(src)]) == 1
    with pytest.raises(SystemExit):
        cli.main(["subset", "--first", "1", "--random", "2", str(src), str(tmp_path / "y")])


def test_cli_combine(tmp_path, capsys):
    a = make_dir(tmp_path / "a", speakers=("s1",), extra={"text": {"s1-0": "x", "s1-1": "y", "s1-2": "z"}})
    b = make_dir(tmp_path / "b", speakers=("s2",))
    assert cli.main(["combine", str(tmp_path / "ab"), str(a), str(b)]) == 0
    captured = capsys.readouterr()
    assert "text is not in every source; left out" in captured.err
    assert "6 utterances, 2 speakers" in captured.out
    DataDir.load(tmp_path / "ab").validate()
    assert cli.main(["combine", str(a), str(a), str(b)]) == 1


def test_cli_make_trials(tmp_path, capsys):
    path = make_dir(tmp_path / "d", speakers=("a", "b", "c", "d"), per_speaker=4)
    args = ["make_trials", "--seed", "5", "--num-target", "10", "--num-nontarget", "20", str(path)]
    assert cli.main(args + [str(tmp_path / "t1")]) == 0
    assert cli.main(args + [str(tmp_path / "t2")]) == 0
    assert "30 trials (10 target, 20 nontarget), seed 5" in capsys.readouterr().out
    assert (tmp_path / "t1").read_text() == (tmp_path / "t2").read_text()
    assert len(read_trials(tmp_path / "t1", known_utts=set(read_table(path / "utt2spk")))) == 30
    assert cli.main(["make_trials", "--num-target", "999", "--num-nontarget", "1", str(path), str(tmp_path / "t")]) == 1
    assert f"{path}/utt2spk: only 24 target pairs exist; asked for 999" in capsys.readouterr().err


# --- tools/ wrappers (as a recipe calls them) -------------------------------------------------

def tool(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{REPO / 'tools'}:{os.environ['PATH']}", PYTHONPATH=str(REPO))
    return subprocess.run(list(args), cwd=tmp_path, env=env, input=stdin, capture_output=True, text=True, timeout=60)


def test_wrappers_on_path(tmp_path):
    spk2utt = tool(tmp_path, "utt2spk_to_spk2utt.pl", stdin="u2 s1\nu1 s1\nu3 s0\n")
    assert spk2utt.returncode == 0, spk2utt.stderr
    assert spk2utt.stdout == "s0 u3\ns1 u1 u2\n"
    utt2spk = tool(tmp_path, "spk2utt_to_utt2spk.pl", stdin=spk2utt.stdout)
    assert utt2spk.stdout == "u1 s1\nu2 s1\nu3 s0\n"
    dup = tool(tmp_path, "spk2utt_to_utt2spk.pl", stdin="s1 u1\ns2 u1\n")
    assert dup.returncode == 1 and "utterance 'u1' is listed under speakers 's1' and 's2'" in dup.stderr

    make_dir(tmp_path / "data/train")
    write(tmp_path / "data/train/wav.scp", "spkA-0 x\n")
    invalid = tool(tmp_path, "validate_data_dir.sh", "data/train")
    assert invalid.returncode == 1 and "data/train/wav.scp: no entry for utterance" in invalid.stderr
    fixed = tool(tmp_path, "fix_data_dir.sh", "data/train")
    assert fixed.returncode == 0 and "kept 1 of 9 utterances (dropped 8)" in fixed.stdout
    assert (tmp_path / "data/train/.backup/utt2spk").is_file()
    assert tool(tmp_path, "validate_data_dir.sh", "data/train").returncode == 0

    make_dir(tmp_path / "data/dev", speakers=("d1", "d2"))
    combined = tool(tmp_path, "combine_data.sh", "data/all", "data/train", "data/dev")
    assert combined.returncode == 0, combined.stderr
    subset = tool(tmp_path, "subset_data_dir.sh", "--random", "4", "--seed", "1", "data/all", "data/sub")
    assert subset.returncode == 0, subset.stderr
    assert len(read_table(tmp_path / "data/sub/utt2spk")) == 4
    trials = tool(tmp_path, "make_trials.sh", "--seed", "3", "--num-target", "2", "--num-nontarget", "5",
                  "data/all", "data/all/trials")
    assert trials.returncode == 0, trials.stderr
    assert len(read_trials(tmp_path / "data/all/trials")) == 7


def test_wrapper_finds_package_without_pythonpath(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([str(REPO / "tools" / "utt2spk_to_spk2utt.pl")], input="u1 s1\n", cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "s1 u1\n"


def test_random_module_state_is_not_used():
    random.seed(1)
    first = make_trials(UTT2SPK, 5, 5, seed=0)
    random.seed(2)
    assert make_trials(UTT2SPK, 5, 5, seed=0) == first


@pytest.mark.parametrize("num_items, num_jobs", [(10, 3), (7, 7), (3, 5), (0, 2)])
def test_job_split_shares_cover_the_items_in_order(num_items, num_jobs):
    items = [f"utt{i}" for i in range(num_items)]
    shares = [job_split(items, job, num_jobs) for job in range(1, num_jobs + 1)]
    assert [item for share in shares for item in share] == items
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
    for bad in (0, num_jobs + 1):
        with pytest.raises(ValueError, match=f"job {bad} is outside 1..{num_jobs}"):
            job_split(items, bad, num_jobs)


def test_table_lines_numbers_non_blank_lines_and_names_bad_ones(tmp_path):
    path = tmp_path / "list"
    path.write_bytes(b"a 1\n\n  b  2 3 \n")
    lines = list(table_lines(path))
    assert [(line.number, line.fields, line.text) for line in lines] == [(1, ["a", "1"], "a 1"),
                                                                         (3, ["b", "2", "3"], "b  2 3")]
    assert str(lines[1].expected("'<key> <n>'")) == f"{path}:3: expected '<key> <n>', got 'b  2 3'"
    path.write_bytes(b"a 1\nb \xff\n")
    with pytest.raises(InputError, match=r"list:2: not UTF-8 text"):
        list(table_lines(path))
    with pytest.raises(InputError, match=r"nowhere: list of ids not found"):
        list(table_lines(tmp_path / "nowhere", "list of ids not found"))


def test_no_other_module_loops_over_file_lines_itself():
    package = Path(__file__).resolve().parents[1] / "wespeaker_like"
    loops = [f"{path.relative_to(package)}:{number}"
             for path in sorted(package.rglob("*.py")) if path.name != "kaldi_dir.py"
             for number, text in enumerate(path.read_text().splitlines(), start=1)
             if re.search(r"enumerate\(handle|for \w+ in handle\b|in handle if", text)]
    assert loops == []
