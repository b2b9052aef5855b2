"""Stage 1 of the mini recipe on the real corpus lists."""

import shutil

import pytest

from wespeaker_like.data.corpora import speechocean762
from wespeaker_like.data.kaldi_dir import DataDir, read_table
from wespeaker_like.data.trials import read_trials
from wespeaker_like.errors import InputError


def test_prepare_full_corpus_lists(tmp_path, corpus_dir):
    speechocean762.prepare(corpus_dir, tmp_path, corpus_dir / "trials" / "test.trials")
    for subset in ("train", "test"):
        data = DataDir.load(tmp_path / subset)
        data.validate(need=("wav.scp", "spk2gender"))
        assert len(data.utts) == 2500 and len(data.spk2utt) == 125
        assert all(path.startswith("/") and path.endswith(".opus") for path in data["wav.scp"].values())
    assert set(read_table(tmp_path / "test" / "spk2gender").values()) == {"m", "f"}
    trials = read_trials(tmp_path / "test" / "trials")
    assert len(trials) == 9726 and sum(t.is_target for t in trials) == 4732


def test_drawn_trials_are_seeded(tmp_path, corpus_dir):
    speechocean762.prepare(corpus_dir, tmp_path / "a", num_target=300, num_nontarget=300, seed=5)
    speechocean762.prepare(corpus_dir, tmp_path / "b", num_target=300, num_nontarget=300, seed=5)
    a = (tmp_path / "a" / "test" / "trials").read_text()
    assert a == (tmp_path / "b" / "test" / "trials").read_text() and len(a.splitlines()) == 600


def test_trial_with_unknown_utterance_names_file_and_line(tmp_path, corpus_dir):
    lines = (corpus_dir / "trials" / "test.trials").read_text().splitlines()[:5]
    lines[3] = "000030012 999999999 target"
    bad = tmp_path / "bad.trials"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"bad.trials:4: utterance '999999999' is not in the evaluation data"):
        speechocean762.prepare(corpus_dir, tmp_path / "data", bad)


def test_missing_audio_names_wav_scp_line(tmp_path, corpus_dir):
    fake = tmp_path / "corpus"
    (fake / "train").mkdir(parents=True)
    # a blank line first: the reported line must still be the entry's own
    (fake / "train" / "wav.scp").write_text("\n000010011\tWAVE/SPEAKER0001/000010011.opus\n")
    with pytest.raises(InputError, match=r"train/wav.scp:2: audio file 'WAVE/SPEAKER0001/000010011.opus'"):
        speechocean762.prepare(fake, tmp_path / "data")


def test_corpus_utt2spk_lacking_an_utterance_is_named(tmp_path, corpus_dir):
    """The corpus's own lists disagree: the error names the corpus file, not the output data dir."""
    fake = tmp_path / "corpus"
    fake.mkdir()
    (fake / "WAVE").symlink_to(corpus_dir / "WAVE")
    for subset in ("train", "test"):
        shutil.copytree(corpus_dir / subset, fake / subset)
    utt2spk = (fake / "test" / "utt2spk").read_text().splitlines()
    dropped = utt2spk.pop(7).split()[0]
    (fake / "test" / "utt2spk").write_text("\n".join(utt2spk) + "\n")
    line = next(n for n, text in enumerate((fake / "test" / "wav.scp").read_text().splitlines(), 1)
                if text.split()[0] == dropped)
    with pytest.raises(InputError) as error:
        speechocean762.prepare(fake, tmp_path / "dprep")
    assert str(error.value) == (f"{fake}/test/utt2spk: no line for utterance '{dropped}' (listed in "
                                f"{fake}/test/wav.scp line {line}; expected '<utterance> <speaker>' for each)")
    # A speaker without a gender names the corpus's spk2gender and the utt2spk line.
    (fake / "test" / "utt2spk").write_text((corpus_dir / "test" / "utt2spk").read_text())
    spk2gender = (fake / "test" / "spk2gender").read_text().splitlines()
    speaker = spk2gender.pop(0).split()[0]
    (fake / "test" / "spk2gender").write_text("\n".join(spk2gender) + "\n")
    with pytest.raises(InputError, match=rf"{fake}/test/spk2gender: no line for speaker '{speaker}' \(of utterance"):
        speechocean762.prepare(fake, tmp_path / "dprep")
