"""Stage 1 of the mini recipe on the real corpus lists."""

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
