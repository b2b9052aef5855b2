"""Augmentation on real audio: SNR, reverb, RIR simulation, augmented and speed-perturbed data dirs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile

from wespeaker_like.audio.io import load_audio
from wespeaker_like.augment import (
    AugmentResources,
    Augmenter,
    Resource,
    add_noise,
    augment_data_dir,
    babble_noise,
    make_noise_resources,
    reverberate,
    simulate_rirs,
    snr_db,
    speed_perturb_data_dir,
)
from wespeaker_like.augment.profiles import PRESETS, build_profiles
from wespeaker_like.augment.rir import rng_for
from wespeaker_like.bin import augment_data_dir as augment_cli
from wespeaker_like.bin import make_noise_resources as noise_cli
from wespeaker_like.bin import simulate_rirs as rir_cli
from wespeaker_like.bin import speed_perturb_data_dir as speed_cli
from wespeaker_like.data.kaldi_dir import DataDir, job_split, read_table
from wespeaker_like.errors import InputError

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
CORPUS = SHARED / "speechocean762"
NOISE_DIR = SHARED / "noise"

pytestmark = pytest.mark.skipif(not (CORPUS / "train" / "wav.scp").is_file() or not NOISE_DIR.is_dir(),
                                reason="shared data not available")

SPEAKERS = ("0001", "0005")
UTTS_PER_SPEAKER = 3
TYPES = ("reverb", "noise", "music", "babble")


@pytest.fixture(scope="module")
def res(tmp_path_factory):
    """Small real resources: 4 simulated RIRs, the shared noise/music, a 2-speaker data dir."""
    root = tmp_path_factory.mktemp("aug")
    simulate_rirs(root / "rirs", num_rooms=4, seed=0)
    made = make_noise_resources(NOISE_DIR, root / "noise_res")
    train = DataDir.load(CORPUS / "train")
    keep = [u for spk in SPEAKERS for u in train.spk2utt[spk][:UTTS_PER_SPEAKER]]
    small = train.subset(keep)
    # The corpus wav.scp is relative to the corpus dir; data prep writes absolute paths.
    small.tables["wav.scp"] = {k: str((CORPUS / v).resolve()) for k, v in small.tables["wav.scp"].items()}
    small.save(root / "train")
    return {"root": root, "rirs": root / "rirs", "noise": made["noise"], "music": made["music"],
            "train": root / "train"}


def _speech(res, utt_index=0) -> np.ndarray:
    wavs = read_table(res["train"] / "wav.scp")
    return load_audio(list(wavs.values())[utt_index], 16000)


def _run(res, name, **kwargs) -> DataDir:
    root = res["root"]
    args = dict(rirs=res["rirs"], noise=res["noise"], music=res["music"], babble_from=res["train"], seed=0)
    args.update(kwargs)
    return augment_data_dir(res["train"], root / f"{name}_out", root / f"{name}_audio", TYPES, **args)


def _audio_of(data_dir: Path) -> dict:
    return {k: soundfile.read(v, dtype="int16")[0] for k, v in read_table(data_dir / "wav.scp").items()}


def test_noise_resources_format(res):
    wavs = read_table(res["noise"] / "wav.scp")
    durs = read_table(res["noise"] / "utt2dur")
    assert len(wavs) == 8 and set(durs) == set(wavs)
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in wavs.values())
    assert abs(float(durs["noise-sc-white_noise"]) - 60.0) < 0.01
    music = Resource(res["music"])
    assert len(music) == 5
    # 8 kHz music comes back at 16 kHz with the requested length, from a random offset.
    seg1 = music.random_segment(np.random.default_rng(1), 40000, 16000)
    seg2 = music.random_segment(np.random.default_rng(2), 40000, 16000)
    assert seg1.shape == (40000,) and seg1.dtype == np.float32 and not np.array_equal(seg1, seg2)
    assert np.sqrt(np.mean(seg1 ** 2)) > 1e-3
    with pytest.raises(InputError, match="folder not found"):
        make_noise_resources(res["root"], res["root"] / "x")


def test_additive_noise_reaches_snr(res):
    speech = _speech(res)
    noise = Resource(res["noise"])
    rng = np.random.default_rng(0)
    for snr in (0.0, 7.5, 15.0):
        segment = noise.random_segment(rng, speech.shape[0], 16000)
        mixed = add_noise(speech, segment, snr)
        assert mixed.shape == speech.shape and mixed.dtype == np.float32
        assert abs(snr_db(speech, mixed - speech) - snr) < 0.1
    # A noise shorter than the speech is tiled to full length.
    short = Resource(res["noise"]).random_segment(rng, 1000, 16000)
    tiled = Resource(res["noise"]).random_segment(rng, 5000, 16000, key="noise-sc-white_noise")
    assert short.shape == (1000,) and tiled.shape == (5000,)
    babble = babble_noise([speech, 0.01 * speech[::-1].copy()])
    assert babble.shape == speech.shape


def test_reverb_keeps_length_and_power(res):
    speech = _speech(res)
    rirs = Resource(res["rirs"])
    for key in rirs.ids:
        out = reverberate(speech, rirs.load(key, 16000))
        assert out.shape == speech.shape and out.dtype == np.float32
        assert abs(np.mean(out.astype(float) ** 2) / np.mean(speech.astype(float) ** 2) - 1) < 1e-3
    # A pure delay RIR reproduces the input (direct path aligned, nothing lost).
    delay = np.zeros(100, dtype=np.float32)
    delay[37] = 0.3
    np.testing.assert_allclose(reverberate(speech, delay), speech, atol=1e-5)


def test_rir_simulation_count_determinism_resume(tmp_path, res):
    out1, out2 = tmp_path / "a", tmp_path / "b"
    assert simulate_rirs(out1, num_rooms=3, rirs_per_room=2, seed=5) == {"written": 6, "skipped": 0}
    simulate_rirs(out2, num_rooms=3, rirs_per_room=2, seed=5)
    wavs = read_table(out1 / "wav.scp")
    assert sorted(wavs) == [f"room000{r}-0{k}" for r in (1, 2, 3) for k in (1, 2)]
    assert set(read_table(out1 / "utt2dur")) == set(wavs) and set(read_table(out1 / "rir_info")) == set(wavs)
    for key, path in wavs.items():
        assert Path(path).read_bytes() == (out2 / "wav" / f"{key}.flac").read_bytes()
        rir, rate = soundfile.read(path)
        assert rate == 16000 and 0.05 < len(rir) / rate <= 1.3 and np.max(np.abs(rir)) == pytest.approx(1.0, abs=1e-6)
    assert (out1 / "rir_info").read_text() == (out2 / "rir_info").read_text()
    # Resume: delete one file; only that one is simulated again, identically.
    before = {k: os.stat(p).st_mtime_ns for k, p in wavs.items()}
    old = Path(wavs["room0002-01"]).read_bytes()
    Path(wavs["room0002-01"]).unlink()
    assert simulate_rirs(out1, num_rooms=3, rirs_per_room=2, seed=5) == {"written": 1, "skipped": 5}
    after = {k: os.stat(p).st_mtime_ns for k, p in wavs.items()}
    assert [k for k in wavs if after[k] != before[k]] == ["room0002-01"]
    assert Path(wavs["room0002-01"]).read_bytes() == old
    assert simulate_rirs(tmp_path / "c", num_rooms=1, seed=6)["written"] == 1
    other_seed = (tmp_path / "c" / "wav" / "room0001-01.flac").read_bytes()
    assert other_seed != (out1 / "wav" / "room0001-01.flac").read_bytes()


def test_augmenter_babble_uses_other_speakers_only(res, monkeypatch):
    resources = AugmentResources.from_dirs(speech=res["train"])
    utt2spk = read_table(res["train"] / "utt2spk")
    augmenter = Augmenter(resources, types=("babble",), seed=0)
    used = []
    original = Resource.random_segment

    def spy(self, rng, num_samples, sample_rate, key=None):
        used.append(key)
        return original(self, rng, num_samples, sample_rate, key)

    monkeypatch.setattr(Resource, "random_segment", spy)
    speech = _speech(res)
    for i in range(10):
        used.clear()
        out = augmenter.augment(speech, "babble", np.random.default_rng(i), speaker="0001")
        # Only 3 utterances of other speakers exist here, so babble uses all 3 of them.
        assert len(used) == UTTS_PER_SPEAKER and {utt2spk[k] for k in used} == {"0005"}
        assert out.shape == speech.shape and 13 - 0.1 < snr_db(speech, out - speech) < 20 + 0.1
    assert snr_db(speech, out - speech) != pytest.approx(0.0)


def test_augmenter_apply_probabilities(res):
    resources = AugmentResources.from_dirs(noise=res["noise"], rirs=res["rirs"])
    speech = _speech(res)
    never = Augmenter(resources, types=("noise", "reverb"), probs=(0.0, 0.0))
    assert never.apply(speech, np.random.default_rng(0)) is speech
    always = Augmenter(resources, types=("noise", "reverb"), probs=(0.5, 0.5))
    picks = [always.choose_type(np.random.default_rng(i)) for i in range(200)]
    assert set(picks) == {"noise", "reverb"}
    a = always.apply(speech, np.random.default_rng(3))
    b = always.apply(speech, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="needs a 'music' resource"):
        Augmenter(resources, types=("music",))
    with pytest.raises(ValueError, match="summing to <= 1"):
        Augmenter(resources, types=("noise",), probs=(1.5,))


def test_profiles_draw_their_documented_probabilities(res):
    resources = AugmentResources.from_dirs(rirs=res["rirs"], noise=res["noise"], music=res["music"],
                                           speech=res["train"])
    profiles = build_profiles({name: None for name in PRESETS}, resources)
    draws = 12000

    chains = [profiles["sdpn"].choose(np.random.default_rng([7, i])) for i in range(draws)]
    additive = ("noise", "babble", "music")
    groups = {"none": 0.0, "reverb": 0.0, "one additive": 0.0, "reverb + additive": 0.0}
    for chain in chains:
        key = ("none" if not chain else "reverb" if chain == ("reverb",) else
               "one additive" if len(chain) == 1 else "reverb + additive")
        groups[key] += 1 / draws
        assert chain in ((), ("reverb",)) or chain[-1] in additive
    for key, expected in (("none", 1 / 6), ("reverb", 1 / 8), ("one additive", 3 / 8), ("reverb + additive", 1 / 3)):
        assert abs(groups[key] - expected) < 0.015, key
    assert all(abs(np.mean([c[-1:] == (t,) for c in chains if c and c[-1] != "reverb"]) - 1 / 3) < 0.02
               for t in additive)
    unsup = [profiles["voxceleb_unsupervised"].choose(np.random.default_rng([8, i])) for i in range(draws)]
    assert abs(np.mean([c == ("reverb",) for c in unsup]) - 0.25) < 0.015 and all(len(c) == 1 for c in unsup)
    speaker3d = [profiles["3dspeaker"].choose(np.random.default_rng([9, i])) for i in range(draws)]
    assert abs(np.mean([c == () for c in speaker3d]) - 0.2) < 0.015
    assert abs(np.mean([c == ("reverb", "noise") for c in speaker3d]) - 0.8 / 3) < 0.015
    kaldi = [profiles["kaldi"].choose(np.random.default_rng([10, i])) for i in range(draws)]
    assert {c for c in kaldi} == {("reverb",), ("noise",), ("music",), ("babble",)}
    assert profiles["kaldi"].augmenter.config.babble_snr == (13, 20)
    assert profiles["kaldi"].augmenter.config.num_babble == (3, 7)


def test_profile_reverb_gain_and_chain(res):
    resources = AugmentResources.from_dirs(rirs=res["rirs"], noise=res["noise"])
    speech = 0.1 * _speech(res) / np.abs(_speech(res)).max()
    profiles = build_profiles({"gain": {"choices": [["reverb"]], "reverb_gain_db": [-7, 3]},
                               "both": {"preset": "reverb_noise", "noise_snr": [5, 5]}}, resources)
    gains = []
    for seed in range(8):
        drawn = {}
        out = profiles["gain"].apply(speech, np.random.default_rng(seed), drawn=drawn)
        measured = 10 * np.log10(np.mean(out.astype(float) ** 2) / np.mean(speech.astype(float) ** 2))
        assert drawn["types"] == ("reverb",) and abs(measured - drawn["reverb_gain_db"]) < 0.01
        gains.append(drawn["reverb_gain_db"])
    assert -7 <= min(gains) and max(gains) <= 3 and np.ptp(gains) > 2
    drawn = {}
    out = profiles["both"].apply(speech, np.random.default_rng(0), drawn=drawn)
    assert drawn["types"] == ("reverb", "noise") and drawn["noise_snr"] == 5.0 and out.shape == speech.shape
    with pytest.raises(ValueError, match="unknown preset 'sdpnn'"):
        build_profiles({"x": {"preset": "sdpnn"}}, resources)
    with pytest.raises(ValueError, match="weights .* must be one non-negative number per choice"):
        build_profiles({"x": {"choices": [["noise"]], "weights": [1, 2]}}, resources)


def test_augment_data_dir_real_corpus(res):
    root = res["root"]
    data = _run(res, "run1", nj=1, combined_out=root / "combined")
    out = DataDir.load(root / "run1_out")
    out.validate()
    src = DataDir.load(res["train"])
    assert len(out.utts) == len(src.utts) * len(TYPES)
    for utt in src.utts:
        for aug_type in TYPES:
            new = f"{utt}-{aug_type}"
            assert out.utt2spk[new] == src.utt2spk[utt]
            assert out["utt2uniq"][new] == utt
            assert out["text"][new] == src["text"][utt]
            path = Path(out["wav.scp"][new])
            assert path.is_absolute() and path.suffix == ".flac"
            info = soundfile.info(str(path))
            assert info.samplerate == 16000 and info.subtype == "PCM_16"
            assert abs(float(out["utt2dur"][new]) - soundfile.info(src["wav.scp"][utt]).duration) < 1e-3
    assert out["spk2gender"] == src["spk2gender"]
    assert data.utts == out.utts
    combined = DataDir.load(root / "combined")
    combined.validate()
    assert len(combined.utts) == 5 * len(src.utts)
    assert all(combined["utt2uniq"][u] == u for u in src.utts)
    # The copies differ from the clean audio and from each other.
    audio = _audio_of(root / "run1_out")
    first = src.utts[0]
    clean = (load_audio(src["wav.scp"][first], 16000) * 32767).astype(np.int16)
    for aug_type in TYPES:
        assert audio[f"{first}-{aug_type}"].shape == clean.shape
        assert np.abs(audio[f"{first}-{aug_type}"].astype(int) - clean).max() > 100

    # Same seed, another run with 2 workers: identical audio and tables.
    _run(res, "run2", nj=2)
    audio2 = _audio_of(root / "run2_out")
    assert audio.keys() == audio2.keys()
    assert all(np.array_equal(audio[k], audio2[k]) for k in audio)
    for name in ("utt2spk", "utt2uniq", "utt2dur", "spk2utt"):
        assert (root / "run1_out" / name).read_text() == (root / "run2_out" / name).read_text()

    # A rerun keeps the existing files (resume) and rewrites the same data dir.
    stamps = {k: os.stat(v).st_mtime_ns for k, v in out["wav.scp"].items()}
    victim = out["wav.scp"][f"{first}-music"]
    os.unlink(victim)
    _run(res, "run1", nj=1)
    assert [k for k, v in out["wav.scp"].items() if os.stat(v).st_mtime_ns != stamps[k]] == [f"{first}-music"]
    assert np.array_equal(soundfile.read(victim, dtype="int16")[0], audio[f"{first}-music"])

    # Different settings into the same audio dir are refused.
    with pytest.raises(InputError, match="different settings"):
        _run(res, "run1", seed=1)
    settings = json.loads((root / "run1_audio" / "noise" / "augment_settings.json").read_text())
    assert settings["seed"] == 0 and settings["config"] == {"noise_snr": [0.0, 15.0], "peak": 0.99}
    assert settings["resource"] == str(Path(res["noise"]).resolve())


def test_augment_data_dir_shards_and_subsets(res):
    root = res["root"]
    kwargs = dict(types=("noise", "reverb"), rirs=res["rirs"], noise=res["noise"], seed=0)
    for job in (1, 2):
        assert augment_data_dir(res["train"], root / "shard_out", root / "shard_audio", job=job, num_jobs=2,
                                **kwargs) is None
    assert not (root / "shard_out").exists()
    files = sorted((root / "shard_audio").rglob("*.flac"))
    assert len(files) == 2 * 2 * UTTS_PER_SPEAKER
    full = augment_data_dir(res["train"], root / "shard_out", root / "shard_audio", **kwargs)
    full.validate()
    assert sorted((root / "shard_audio").rglob("*.flac")) == files
    sub = augment_data_dir(res["train"], root / "sub_out", root / "sub_audio", num_utts=5, max_copies_per_utt=1,
                           **kwargs)
    assert len(sub.utts) == 5
    assert len({sub["utt2uniq"][u] for u in sub.utts}) == 5  # one copy per utterance at most
    assert job_split(list(range(10)), 3, 3) == [6, 7, 8, 9]
    with pytest.raises(InputError, match="needs --music"):
        augment_data_dir(res["train"], root / "x", root / "x_audio", types=("music",))
    with pytest.raises(InputError, match="unknown augmentation type 'echo'"):
        augment_data_dir(res["train"], root / "x", root / "x_audio", types=("echo",))


def test_speed_perturb_data_dir(res):
    root = res["root"]
    out = speed_perturb_data_dir(res["train"], root / "sp", root / "sp_audio", factors=(0.9, 1.1), nj=2,
                                 combined_out=root / "sp_combined")
    loaded = DataDir.load(root / "sp")
    loaded.validate()
    src = DataDir.load(res["train"])
    assert len(out.utts) == 2 * len(src.utts)
    for utt in src.utts:
        spk, dur = src.utt2spk[utt], soundfile.info(src["wav.scp"][utt]).duration
        for factor in (0.9, 1.1):
            new = f"sp{factor:g}-{utt}"
            assert loaded.utt2spk[new] == f"sp{factor:g}-{spk}"
            assert loaded["utt2uniq"][new] == utt
            assert abs(float(loaded["utt2dur"][new]) - dur / factor) < 2 / 16000 + 1e-4
    assert loaded["spk2gender"]["sp0.9-0001"] == src["spk2gender"]["0001"]
    combined = DataDir.load(root / "sp_combined")
    combined.validate()
    assert len(set(combined.utt2spk.values())) == 3 * len(SPEAKERS)
    with pytest.raises(InputError, match="not 1.0"):
        speed_perturb_data_dir(res["train"], root / "sp2", root / "sp_audio2", factors=(1.0,))


def test_command_lines(res, tmp_path):
    assert rir_cli.main(["--out_dir", str(tmp_path / "rirs"), "--num_rooms", "2", "--seed", "0"]) == 0
    assert len(read_table(tmp_path / "rirs" / "wav.scp")) == 2
    assert noise_cli.main(["--src_dir", str(NOISE_DIR), "--out_dir", str(tmp_path / "nr")]) == 0
    assert (tmp_path / "nr" / "music" / "utt2dur").is_file()
    assert augment_cli.main(["--src", str(res["train"]), "--out", str(tmp_path / "aug"), "--audio_dir",
                             str(tmp_path / "audio"), "--types", "noise", "--noise",
                             str(tmp_path / "nr" / "noise"), "--num_utts", "2", "--noise_snrs", "5:5"]) == 0
    aug = DataDir.load(tmp_path / "aug")
    assert len(aug.utts) == 2
    # The missing resource dir is reported (exit code 1), not a traceback.
    assert augment_cli.main(["--src", str(res["train"]), "--out", str(tmp_path / "aug2"), "--audio_dir",
                             str(tmp_path / "audio2"), "--types", "noise", "--noise",
                             str(tmp_path / "missing")]) == 1
    assert speed_cli.main(["--src", str(res["train"]), "--out", str(tmp_path / "sp"), "--audio_dir",
                           str(tmp_path / "spa"), "--factors", "1.1"]) == 0
    assert len(DataDir.load(tmp_path / "sp").utts) == len(SPEAKERS) * UTTS_PER_SPEAKER


def test_rng_for_is_stable():
    a = rng_for(0, "utt1", "noise").random(3)
    np.testing.assert_array_equal(a, rng_for(0, "utt1", "noise").random(3))
    assert not np.array_equal(a, rng_for(0, "utt1", "music").random(3))
    assert not np.array_equal(a, rng_for(1, "utt1", "noise").random(3))
