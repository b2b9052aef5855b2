"""Data augmentation: resource dirs, RIR simulation, reverb/noise/music/babble, speed copies.

- ``resources``: the resource-dir format (``wav.scp`` + ``utt2dur``), ``Resource``,
  ``AugmentResources``, ``make_noise_resources``.
- ``rir``: ``simulate_rirs`` (pyroomacoustics shoebox rooms), ``reverberate``, ``rng_for``.
- ``additive``: ``add_noise`` at an SNR, ``babble_noise``, ``snr_db``, ``limit_peak``.
- ``augmenter``: ``Augmenter`` — the one implementation used offline and on the fly.
- ``profiles``: named on-the-fly profiles (``PRESETS``: kaldi, 3dspeaker, sdpn, voxceleb_unsupervised,
  reverb_noise), ``AugmentProfile``, ``build_profiles``.
- ``offline``: ``augment_data_dir``, ``speed_perturb_data_dir`` (stage 2 data dirs).
"""

from wespeaker_like.augment.additive import add_noise, babble_noise, limit_peak, mean_power, snr_db  # noqa: F401
from wespeaker_like.augment.augmenter import AUG_TYPES, AugmentConfig, Augmenter  # noqa: F401
from wespeaker_like.augment.offline import augment_data_dir, speed_perturb_data_dir  # noqa: F401
from wespeaker_like.augment.resources import (  # noqa: F401
    AugmentResources,
    Resource,
    fit_length,
    make_noise_resources,
    write_resource_dir,
)
from wespeaker_like.augment.rir import reverberate, rng_for, simulate_rirs  # noqa: F401
