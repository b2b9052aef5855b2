"""The one training data pipeline: feature scp -> crops/views -> batches."""

from wespeaker_like.dataset.features import FeatureDataset, View, collate  # noqa: F401
from wespeaker_like.dataset.samplers import RandomBatchSampler, SpeakerBalancedBatchSampler, build_batch_sampler  # noqa: F401
