"""Crops, views, labels and the seeded batch samplers."""

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from conftest import SHARED, make_feature_data_dir
from wespeaker_like.augment import make_noise_resources, write_resource_dir
from wespeaker_like.augment.additive import snr_db
from wespeaker_like.data.kaldi_dir import DataDir
from wespeaker_like.dataset import FeatureDataset, RandomBatchSampler, SpeakerBalancedBatchSampler, View, collate
from wespeaker_like.dataset.views import (STREAM_AUGMENT, STREAM_POSITION, SpecAugment, looped_ranges, place_crops, stream,
                                          timeline_length)
from wespeaker_like.errors import InputError


def test_crops_of_short_utterances_wrap(tmp_path):
    assert looped_ranges(7, 25, 10) == [(7, 3), (0, 10), (0, 10), (0, 2)]
    assert looped_ranges(13, 4, 10) == [(3, 4)]
    ds = FeatureDataset(make_feature_data_dir(tmp_path), views=[View(200)])
    crop = ds[(0, 5)][0][0]
    ds.views = [View(None)]
    whole = ds[(0, 5)][0][0]
    start = int(np.argmin(np.abs(whole - crop[0]).sum(1)))
    expected = np.concatenate([whole] * 5)[start:start + 200]
    np.testing.assert_array_equal(crop, expected)  # the utterance repeated end to end


def test_dataset_views_labels_and_determinism(tmp_path):
    make_feature_data_dir(tmp_path, num_speakers=3, utts_per_speaker=2)
    ds = FeatureDataset(tmp_path, ("spk",), views=[View(50), View(20), View(None)])
    views, labels, utt = ds[(4, 123)]
    assert utt == "spk2-utt0" and labels == {"spk": 2}
    assert views[0].shape == (50, 20) and views[1].shape == (20, 20)
    assert abs(views[2].mean(0)).max() < 1e-5  # CMN over the whole utterance
    again = ds[(4, 123)][0]
    assert all(np.array_equal(a, b) for a, b in zip(views, again))
    ds.views = [View(50), View(20)]
    batch = collate([ds[(i, i)] for i in range(4)])
    assert [tuple(v.shape) for v in batch["views"]] == [(4, 50, 20), (4, 20, 20)]
    assert batch["labels"]["spk"].tolist() == [0, 0, 1, 1]


def test_missing_features_and_labels_are_named(tmp_path):
    make_feature_data_dir(tmp_path, num_speakers=2, utts_per_speaker=2)
    lines = (tmp_path / "feats.scp").read_text().splitlines()
    (tmp_path / "feats.scp").write_text("\n".join(lines[1:]) + "\n")
    with pytest.raises(InputError, match="feats.scp: no features for utterance 'spk0-utt0'"):
        FeatureDataset(tmp_path)
    (tmp_path / "feats.scp").write_text("spk0-utt0 cat feats.ark |\n")
    with pytest.raises(InputError, match=r"feats.scp:1: expected '<key> <ark path>:<byte offset>'"):
        FeatureDataset(tmp_path)


def test_random_sampler_is_seeded_resumable_and_sharded():
    sampler = RandomBatchSampler(50, 8, seed=1)
    sampler.set_epoch(2)
    full = list(sampler)
    assert len(full) == 6 and len({i for b in full for i, _ in b}) == 48
    sampler.set_epoch(2, start_batch=4)
    assert list(sampler) == full[4:]
    sampler.set_epoch(3)
    assert list(sampler) != full
    ranks = [RandomBatchSampler(50, 8, seed=1, rank=r, world_size=2) for r in (0, 1)]
    for s in ranks:
        s.set_epoch(2)
    assert list(ranks[0]) == full[0:6:2] and list(ranks[1]) == full[1:6:2]


def test_speaker_balanced_sampler_has_distinct_speakers():
    speakers = [f"s{i % 7}" for i in range(70)]
    sampler = SpeakerBalancedBatchSampler(speakers, speakers_per_batch=5, utts_per_speaker=2, seed=0)
    batches = list(sampler)
    assert batches
    for batch in batches:
        spk = [speakers[i] for i, _ in batch]
        assert len(batch) == 10 and len(set(spk)) == 5 and all(spk.count(s) == 2 for s in set(spk))



def test_speaker_balanced_sampler_names_speakers_without_enough_utterances():
    speakers = ["a", "a", "b", "c", "d"]  # four speakers, one of them with the two utterances a group needs
    with pytest.raises(ValueError, match="only 1 of 4 speakers have the 2 utterances"):
        SpeakerBalancedBatchSampler(speakers, speakers_per_batch=2, utts_per_speaker=2)


# ---- views, raw audio, augmentation, determinism, bad input ------------------------------------

FBANK = {"type": "fbank", "num_mel_bins": 24, "norm": "cmn"}


def make_audio_data_dir(path: Path, num_speakers: int = 3, utts_per_speaker: int = 4, seed: int = 0) -> Path:
    """16 kHz WAV files of 0.6-1.6 s of coloured noise whose spectrum depends on the speaker."""
    rng = np.random.default_rng(seed)
    wavs, utt2spk = {}, {}
    for s in range(num_speakers):
        colour = rng.uniform(-0.9, 0.9)
        for u in range(utts_per_speaker):
            utt = f"spk{s}-utt{u}"
            white = rng.normal(0, 0.1, int(rng.integers(9600, 25600)))
            wave = np.copy(white)
            wave[1:] += colour * white[:-1]
            file = path / "wav" / f"{utt}.wav"
            file.parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(str(file), wave.astype(np.float32), 16000, subtype="FLOAT")
            wavs[utt], utt2spk[utt] = str(file), f"spk{s}"
    DataDir({"utt2spk": utt2spk, "wav.scp": wavs}).save(path)
    return path


class WaveFrontEnd:
    """Identity front-end: a view is its waveform crop as (S, 1), so positions can be checked exactly."""

    sample_rate, dim = 16000, 1

    def num_samples(self, num_frames: int) -> int:
        return num_frames

    def __call__(self, wave):
        return torch.from_numpy(np.asarray(wave, dtype=np.float32).copy())[:, None]


def wave_dataset(path, views, **options):
    ds = FeatureDataset(path, views=(), features=FBANK, **options)
    ds.frontends = {"default": WaveFrontEnd()}
    ds.views = views
    return ds


def position_in(whole: np.ndarray, crop: np.ndarray) -> int:
    """Start of ``crop`` in ``whole`` repeated end to end (exact match)."""
    looped = np.concatenate([whole] * (len(crop) // len(whole) + 2))
    for start in np.flatnonzero(looped[:len(whole)] == crop[0]):
        if np.array_equal(looped[start:start + len(crop)], crop):
            return int(start)
    raise AssertionError("crop not found in the utterance")


def test_place_crops_relations_hold_for_any_length():
    views = [View(30), View(50, position="disjoint", relative_to=0), View(30, position="same", relative_to=0),
             View(20, position="disjoint", relative_to=1)]
    lengths = [30, 50, 30, 20]
    for total in (10, 79, 80, 81, 100, 1000):
        span = timeline_length(total, lengths, views)
        assert span == max(total, 80)
        for seed in range(200):
            a, b, c, d = place_crops(total, lengths, views, stream(seed, 0))
            assert c == a and all(0 <= x < span for x in (a, b, d)) and a + 30 <= span
            for (s1, n1), (s2, n2) in (((a, 30), (b, 50)), ((b, 50), (d, 20))):
                cells1 = {(s1 + i) % span for i in range(n1)}
                cells2 = {(s2 + i) % span for i in range(n2)}
                assert not cells1 & cells2
    # every placement of the disjoint crop is reachable: both sides of the first crop are used
    sides = {np.sign(place_crops(1000, lengths[:2], views[:2], stream(seed, 0))[1] -
                     place_crops(1000, lengths[:2], views[:2], stream(seed, 0))[0]) for seed in range(50)}
    assert sides == {-1, 1}


def test_audio_views_non_overlapping_and_same_crop(tmp_path):
    make_audio_data_dir(tmp_path)
    views = [View(4000), View(6000, position="disjoint", relative_to=0), View(4000, position="same", relative_to=0)]
    ds = wave_dataset(tmp_path, views)
    assert ds.source == "audio"
    for seed in range(20):
        index = seed % len(ds)
        out, labels, utt = ds[(index, seed)]
        whole = ds.audio.read(utt)
        crops = [v[:, 0] for v in out]
        assert [len(c) for c in crops] == [4000, 6000, 4000]
        np.testing.assert_array_equal(crops[0], crops[2])
        span = max(len(whole), 10000)
        a, b = position_in(whole, crops[0]), position_in(whole, crops[1])
        if len(whole) >= 10000:  # on the utterance itself: disjoint sample ranges
            assert a + 4000 <= b or b + 6000 <= a
        else:
            assert not {(a + i) % span for i in range(4000)} & {(b + i) % span for i in range(6000)}


def test_same_crop_through_two_front_ends(tmp_path):
    """001: STFT input and log-mel target of one crop."""
    make_audio_data_dir(tmp_path)
    frontends = {"stft": {"type": "stft", "n_fft": 512, "norm": "none"},
                 "logmel": {"type": "logmel", "n_fft": 512, "num_mel_bins": 64, "norm": "none"}}
    views = [View(30, frontend="stft"), View(30, position="same", relative_to=0, frontend="logmel")]
    ds = FeatureDataset(tmp_path, views=views, features=FBANK, frontends=frontends)
    (stft, logmel), _, utt = ds[(2, 9)]
    assert stft.shape == (30, 257) and logmel.shape == (30, 64)
    n = ds.frontends["stft"].num_samples(30)
    start = place_crops(ds.audio.num_samples(utt), [n, n], views, stream(9, STREAM_POSITION))[0]
    crop = ds.audio.read(utt, start, n)
    np.testing.assert_allclose(ds.frontends["stft"](crop).numpy(), stft, atol=1e-5)
    np.testing.assert_allclose(ds.frontends["logmel"](crop).numpy(), logmel, atol=1e-5)
    shifted = ds.audio.read(utt, start + 1, n)  # one sample off is measurably different
    assert np.abs(ds.frontends["logmel"](shifted).numpy() - logmel).max() > 1e-3


def test_spec_augment_shared_positions(tmp_path):
    make_feature_data_dir(tmp_path, dim=20)
    shared = SpecAugment(prob=1.0, time_width=(3, 10), freq_width=(2, 6), group="local")
    own = SpecAugment(prob=1.0, time_width=(3, 10), freq_width=(2, 6))
    views = [View(40)] + [View(30, spec_augment=shared)] * 4 + [View(30, spec_augment=own)]
    ds = FeatureDataset(tmp_path, views=views)
    differs = 0
    for seed in range(30):
        out = ds[(seed % len(ds), seed)][0]
        zero_rows = [tuple(np.flatnonzero((v == 0).all(1))) for v in out]
        zero_cols = [tuple(np.flatnonzero((v == 0).all(0))) for v in out]
        assert zero_rows[0] == () and zero_cols[0] == ()
        assert len(set(zero_rows[1:5])) == 1 and len(set(zero_cols[1:5])) == 1
        assert 3 <= len(zero_rows[1]) <= 10 and 2 <= len(zero_cols[1]) <= 6
        assert np.ptp(zero_rows[1]) == len(zero_rows[1]) - 1  # one contiguous mask
        differs += (zero_rows[5], zero_cols[5]) != (zero_rows[1], zero_cols[1])
    assert differs >= 25  # a view outside the group draws its own positions
    rare = SpecAugment(prob=0.2)
    applied = [bool(rare.draw(stream(seed, 3), 30, 20)) for seed in range(2000)]
    assert abs(np.mean(applied) - 0.2) < 0.03


@pytest.fixture(scope="module")
def resources(tmp_path_factory):
    """The shared noise/music as resource dirs, and two synthetic RIRs (decaying noise)."""
    root = tmp_path_factory.mktemp("res")
    made = make_noise_resources(SHARED / "noise", root)
    rng = np.random.default_rng(1)
    wavs, durations = {}, {}
    for k in range(2):
        rir = rng.normal(0, 1, 4000) * np.exp(-np.arange(4000) / 800.0)
        rir[0] = 4.0
        file = root / "rirs" / f"rir{k}.flac"
        file.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(str(file), (rir / np.abs(rir).max()).astype(np.float32), 16000, subtype="PCM_24")
        wavs[f"rir{k}"], durations[f"rir{k}"] = str(file), 0.25
    write_resource_dir(root / "rirs", wavs, durations)
    return {"rirs": str(root / "rirs"), "noise": str(made["noise"]), "music": str(made["music"])}


def test_augmented_view_has_the_drawn_snr(tmp_path, resources):
    make_audio_data_dir(tmp_path)
    augment = {"resources": resources, "profiles": {"noisy": {"choices": [["noise"]], "noise_snr": [0, 15]}}}
    views = [View(8000), View(8000, position="same", relative_to=0, augment="noisy")]
    ds = wave_dataset(tmp_path, views, augment=augment)
    profile = ds.profiles["noisy"]
    snrs = []
    for seed in range(12):
        (clean, noisy), _, utt = ds[(seed % len(ds), seed)]
        clean, noisy = clean[:, 0], noisy[:, 0]
        drawn = {}
        again = profile.apply(clean, stream(seed, STREAM_AUGMENT, 1), ds.utt2spk[utt], drawn)
        np.testing.assert_array_equal(again, noisy)  # the view's draws come from its own seeded stream
        assert drawn["types"] == ("noise",)
        assert np.abs(noisy).max() < 0.99  # not rescaled by the peak limit: noisy - clean is the noise
        assert abs(snr_db(clean, noisy - clean) - drawn["noise_snr"]) < 0.5
        snrs.append(drawn["noise_snr"])
    assert 0 <= min(snrs) and max(snrs) <= 15 and np.ptp(snrs) > 3


def test_batches_identical_for_0_and_2_workers_and_after_resume(tmp_path, resources):
    make_audio_data_dir(tmp_path)
    augment = {"resources": resources | {"speech": str(tmp_path)}, "profiles": {"sdpn": None, "reverb_noise": None}}
    views = [View(40), View(20, augment="sdpn", spec_augment=SpecAugment(prob=0.5, group="g")),
             View(20, position="disjoint", relative_to=0, augment="reverb_noise", spec_augment=SpecAugment(group="g"))]
    ds = FeatureDataset(tmp_path, views=views, features=FBANK, augment=augment, speed_perturb=(0.9,))
    assert len(ds) == 24 and ds.num_classes("spk") == 6
    sampler = RandomBatchSampler(len(ds), 4, seed=3)

    def batches(workers, start_batch=0):
        sampler.set_epoch(1, start_batch)
        loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler, collate_fn=collate, num_workers=workers)
        return [b for b in loader]

    serial, parallel, resumed = batches(0), batches(2), batches(2, start_batch=3)
    assert len(serial) == 6 and [b["utts"] for b in resumed] == [b["utts"] for b in serial[3:]]
    for got in (parallel, resumed):
        for a, b in zip(serial[len(serial) - len(got):], got):
            assert a["utts"] == b["utts"] and torch.equal(a["labels"]["spk"], b["labels"]["spk"])
            assert all(torch.equal(x, y) for x, y in zip(a["views"], b["views"]))
    assert [tuple(v.shape[1:]) for v in serial[0]["views"]] == [(40, 24), (20, 24), (20, 24)]
    # speed-perturbed items are new speakers, and their crops differ from the originals'
    assert ds.spk_of_index[12] == "sp0.9-spk0" and ds.labels["spk"][12] != ds.labels["spk"][0]
    assert not np.array_equal(ds[(12, 5)][0][0], ds[(0, 5)][0][0])


def test_stage2_copy_view_reads_the_same_crop_of_a_copy(tmp_path):
    make_feature_data_dir(tmp_path, num_speakers=2, utts_per_speaker=2)
    data = DataDir.load(tmp_path)
    feats = data.tables["feats.scp"]
    # spk0-utt1 and spk1-utt1 become (fake) stage-2 copies of utt0 of their speaker
    data.tables["utt2uniq"] = {"spk0-utt0": "spk0-utt0", "spk0-utt1": "spk0-utt0",
                               "spk1-utt0": "spk1-utt0", "spk1-utt1": "spk1-utt0"}
    data.save(tmp_path)
    ds = FeatureDataset(tmp_path, views=[View(30), View(30, position="same", relative_to=0, augment="copy")])
    assert ds.copies["spk0-utt0"] == ["spk0-utt1"] and feats
    (clean, copy), _, utt = ds[(0, 4)]
    assert utt == "spk0-utt0"
    ds.views = [View(None)]
    whole_clean, whole_copy = ds[(0, 0)][0][0], ds[(1, 0)][0][0]
    start = position_in(whole_clean[:, 0], clean[:, 0])
    np.testing.assert_array_equal(copy, np.concatenate([whole_copy] * 3)[start:start + 30])


def test_originals_only_samples_the_clean_roots_and_still_reaches_their_copies(tmp_path):
    make_feature_data_dir(tmp_path, num_speakers=2, utts_per_speaker=3)
    data = DataDir.load(tmp_path)
    data.tables["utt2uniq"] = {"spk0-utt0": "spk0-utt0", "spk0-utt1": "spk0-utt0", "spk0-utt2": "spk0-utt2",
                               "spk1-utt0": "spk1-utt0", "spk1-utt1": "spk1-utt0", "spk1-utt2": "spk1-utt0"}
    data.save(tmp_path)
    views = [View(30), View(30, position="same", relative_to=0, augment="copy")]
    ds = FeatureDataset(tmp_path, views=views, originals_only=True)
    assert ds.utts == ["spk0-utt0", "spk0-utt2", "spk1-utt0"] and len(ds) == 3
    assert ds.spk_of_index == ["spk0", "spk0", "spk1"] and ds.num_classes("spk") == 2
    assert sorted(ds.copies["spk1-utt0"]) == ["spk1-utt1", "spk1-utt2"] and ds.copies["spk0-utt2"] == []
    (clean, copy), labels, utt = ds[(2, 7)]
    assert utt == "spk1-utt0" and labels["spk"] == 1 and not np.array_equal(clean, copy)
    data.tables["utt2uniq"] = {u: "elsewhere" for u in data.utts}
    data.save(tmp_path)
    with pytest.raises(InputError, match="originals_only"):
        FeatureDataset(tmp_path, views=[View(30)], originals_only=True)


def test_bad_audio_is_reported_at_build_and_in_workers(tmp_path, caplog):
    make_audio_data_dir(tmp_path, num_speakers=2, utts_per_speaker=3)
    wavs = (tmp_path / "wav.scp").read_text().splitlines()
    missing = wavs[1].split()[1]
    Path(missing).rename(missing + ".gone")
    with pytest.raises(InputError, match=r"wav.scp: 1 bad audio entries:\n  .*wav.scp:2: utterance 'spk0-utt1': "
                                         r"audio file '.*' not found"):
        FeatureDataset(tmp_path, features=FBANK)
    Path(missing + ".gone").rename(missing)
    with pytest.raises(InputError, match=r"wav.scp:\d+: utterance '\S+' has \d+ samples; expected at least 48000"):
        FeatureDataset(tmp_path, features=FBANK, min_seconds=3.0)
    ds = FeatureDataset(tmp_path, views=[View(50)], features=FBANK)
    Path(wavs[2].split()[1]).write_bytes(b"RIFF garbage")  # broken after the build check
    with pytest.raises(InputError, match=r"wav.scp:3: utterance 'spk0-utt2': "):
        ds[(2, 0)]
    loader = torch.utils.data.DataLoader(ds, batch_sampler=[[(0, 1), (2, 1)]], collate_fn=collate, num_workers=1)
    with pytest.raises(Exception, match=r"wav.scp:3: utterance 'spk0-utt2'"):
        list(loader)
    skipping = FeatureDataset.__new__(FeatureDataset)
    skipping.__dict__.update(ds.__dict__)
    skipping.skip_bad = True
    with caplog.at_level(logging.WARNING):
        batch = collate([skipping[(0, 1)], skipping[(2, 1)], skipping[(3, 1)]])
    assert batch["utts"] == ["spk0-utt0", "spk1-utt0"] and skipping.skipped == 1
    assert "skipped a sample (1 so far in this worker)" in caplog.text and "spk0-utt2" in caplog.text


def test_dataset_options_are_checked(tmp_path, resources):
    make_feature_data_dir(tmp_path / "feats")
    with pytest.raises(InputError, match="dataset option 'augment' needs raw audio"):
        FeatureDataset(tmp_path / "feats", augment={"profiles": {"kaldi": None}})
    with pytest.raises(ValueError, match="view 1: position 'same' needs relative_to = an earlier view index"):
        FeatureDataset(tmp_path / "feats", views=[View(20), View(20, position="same", relative_to=1)])
    with pytest.raises(InputError, match="view 0 uses a stage-2 copy, but no utterance has a copy"):
        FeatureDataset(tmp_path / "feats", views=[View(20, augment="copy")])
    make_audio_data_dir(tmp_path / "audio")
    with pytest.raises(ValueError, match="the augmentation profiles need dataset.augment.resources.music"):
        FeatureDataset(tmp_path / "audio", features=FBANK,
                       augment={"resources": resources | {"music": None}, "profiles": {"kaldi": None}})
    with pytest.raises(ValueError, match="view 0: augmentation profile 'sdpn' is not in dataset.augment.profiles"):
        FeatureDataset(tmp_path / "audio", features=FBANK, views=[View(20, augment="sdpn")])
    with pytest.raises(ValueError, match="unknown key 'snr'"):
        FeatureDataset(tmp_path / "audio", features=FBANK,
                       augment={"resources": resources, "profiles": {"x": {"choices": [["noise"]], "snr": [1, 2]}}})


def test_raw_audio_recipe_config_trains(tmp_path, resources):
    """The mini recipe's raw-audio config (on-the-fly Kaldi profile, speed copies) starts training."""
    from conftest import ROOT
    from wespeaker_like.bin import train

    data = make_audio_data_dir(tmp_path / "train", num_speakers=2, utts_per_speaker=4)
    config = ROOT / "egs" / "speechocean762" / "v1" / "conf" / "ecapa_aam_raw.yaml"
    overrides = ["trainer.epochs=1", "trainer.device=cpu", "trainer.num_threads=1", "trainer.average_last=1",
                 "dataset.num_workers=0", "dataset.sampler.batch_size=8", "dataset.speed_perturb=[0.9,1.1]",
                 "model.channels=[16,16,16,16,48]", "model.embed_dim=16", "objective.num_frames=40",
                 "features.num_mel_bins=24", "model.feat_dim=24", "dataset.min_seconds=0.5"]
    overrides += [f"dataset.augment.resources.{k}={v}" for k, v in resources.items()]
    overrides.append(f"dataset.augment.resources.speech={data}")
    exp = tmp_path / "exp"
    assert train.main(["--config", str(config), "--train_data", str(data), "--exp_dir", str(exp),
                       "--set", *overrides]) == 0
    log = (exp / "train.log").read_text()
    assert "24 utterances, {'spk': 6} classes, 3 batches/epoch" in log and (exp / "final_model.pt").is_file()
    bad = overrides + ["model.feat_dim=80"]
    assert train.main(["--config", str(config), "--train_data", str(data), "--exp_dir", str(tmp_path / "x"),
                       "--set", *bad]) == 1
