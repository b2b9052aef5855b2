"""Acoustic features (Kaldi-compatible fbank/MFCC via torchaudio.compliance.kaldi) and CMN."""

from wespeaker_like.features.kaldi_features import FEATURE_DEFAULTS, compute_features, apply_cmn  # noqa: F401
