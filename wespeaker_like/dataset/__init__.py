"""The one training data pipeline: feats.scp or raw audio -> views (crops, augmentation, masks) -> batches."""

from wespeaker_like.dataset.features import FeatureDataset, collate  # noqa: F401
from wespeaker_like.dataset.samplers import RandomBatchSampler, SpeakerBalancedBatchSampler, build_batch_sampler  # noqa: F401
from wespeaker_like.dataset.views import SpecAugment, View  # noqa: F401
