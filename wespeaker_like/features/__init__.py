"""Front-ends (Kaldi fbank/MFCC, log-magnitude STFT, log-mel) with their normalisations, and ark/scp I/O."""

from wespeaker_like.features.frontends import FEATURE_DEFAULTS, FrontEnd, build_frontend  # noqa: F401
