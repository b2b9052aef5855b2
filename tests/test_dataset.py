"""Crops, views, labels and the seeded batch samplers."""

import numpy as np
import pytest

from conftest import make_feature_data_dir
from wespeaker_like.dataset import FeatureDataset, RandomBatchSampler, SpeakerBalancedBatchSampler, View, collate
from wespeaker_like.dataset.views import looped_ranges
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
    (tmp_path / "feats.scp").write_text("spk0-utt0 not-an-ark-entry\n")
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
