"""One augmentation implementation for both offline copies and on-the-fly training.

Types and their Kaldi settings (``AugmentConfig`` holds the ranges; all draws uniform):

- ``reverb``: convolve with a random RIR of the ``rirs`` resource (energy-normalised, output
  shifted to the direct path, truncated to the input length, rescaled to the input power).
- ``noise``: one random segment (random offset, tiled if short) of a ``noise`` recording added at
  SNR U(0, 15) dB.
- ``music``: one random ``music`` segment at SNR U(5, 15) dB.
- ``babble``: 3-7 random utterances of ``speech`` from speakers other than the target's (when the
  resource has utt2spk), each at equal power, summed and added at SNR U(13, 20) dB.

After each type the result is scaled down if its peak exceeds 0.99 (never up), which keeps the
SNR and avoids clipping in 16-bit output. Offline, each utterance's generator is
``rng_for(seed, utt, type)``, so results depend only on (seed, utterance id, type), not on job
splitting or reruns.

On the fly::

    aug = Augmenter(AugmentResources.from_dirs(rirs=..., noise=..., music=..., speech=...),
                    types=("reverb", "noise"), probs=(0.3, 0.3), seed=0)
    samples = aug.apply(samples, rng)  # (N,) -> (N,); 40 % of calls return it unchanged
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from wespeaker_like.augment.additive import add_noise, babble_noise, limit_peak
from wespeaker_like.augment.resources import AugmentResources
from wespeaker_like.augment.rir import reverberate, rng_for

AUG_TYPES = ("reverb", "noise", "music", "babble")
# Which resource each type draws from.
RESOURCE_OF = {"reverb": "rirs", "noise": "noise", "music": "music", "babble": "speech"}


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random draws (dB for SNRs, counts inclusive)."""

    noise_snr: Tuple[float, float] = (0.0, 15.0)
    music_snr: Tuple[float, float] = (5.0, 15.0)
    babble_snr: Tuple[float, float] = (13.0, 20.0)
    num_babble: Tuple[int, int] = (3, 7)
    peak: float = 0.99
    # Output gain of reverb in dB (amplitude, 20 log10), e.g. SDPN's (-7, 3); (0, 0) draws nothing.
    reverb_gain_db: Tuple[float, float] = (0.0, 0.0)

    def as_dict(self) -> dict:
        """JSON-friendly form (tuples as lists); ``from_dict`` inverts it."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> "AugmentConfig":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


class Augmenter:
    """Applies reverb / noise / music / babble to (N,) float32 waveforms at ``sample_rate``.

    ``probs`` gives each type's probability in ``apply`` (sum <= 1; the rest is "no
    augmentation"); default: uniform over ``types`` summing to 1.
    """

    def __init__(self, resources: AugmentResources, types: Sequence[str] = AUG_TYPES,
                 probs: Optional[Sequence[float]] = None, seed: int = 0, sample_rate: int = 16000,
                 config: Optional[AugmentConfig] = None):
        self.types = tuple(types)
        for aug_type in self.types:
            if aug_type not in RESOURCE_OF:
                raise ValueError(f"unknown augmentation type '{aug_type}' (expected one of {', '.join(AUG_TYPES)})")
            if getattr(resources, RESOURCE_OF[aug_type]) is None:
                raise ValueError(f"augmentation type '{aug_type}' needs a '{RESOURCE_OF[aug_type]}' resource dir")
        if probs is None:
            probs = [1.0 / len(self.types)] * len(self.types) if self.types else []
        probs = [float(p) for p in probs]
        if len(probs) != len(self.types) or any(p < 0 for p in probs) or sum(probs) > 1 + 1e-6:
            raise ValueError(f"probs {probs} must be one non-negative number per type {self.types}, summing to <= 1")
        self.probs = probs
        self.resources = resources
        self.seed = seed
        self.sample_rate = sample_rate
        self.config = config or AugmentConfig()
        self._rng = np.random.default_rng(seed)
        self._rir_spectra: dict = {}  # RIR id -> its FFTs (see ``reverberate``)

    def rng_for(self, utt: str, aug_type: str) -> np.random.Generator:
        """The generator offline augmentation uses for (this seed, ``utt``, ``aug_type``)."""
        return rng_for(self.seed, utt, aug_type)

    def choose_type(self, rng: np.random.Generator) -> Optional[str]:
        """A type drawn with ``probs``, or None (no augmentation) with the remaining probability."""
        draw = rng.random()
        for aug_type, prob in zip(self.types, self.probs):
            if draw < prob:
                return aug_type
            draw -= prob
        return None

    def apply(self, samples: np.ndarray, rng: Optional[np.random.Generator] = None,
              speaker: Optional[str] = None) -> np.ndarray:
        """Random type (or none) applied to (N,) samples -> (N,). ``speaker`` is kept out of babble."""
        rng = rng if rng is not None else self._rng
        aug_type = self.choose_type(rng)
        if aug_type is None:
            return samples
        return self.augment(samples, aug_type, rng, speaker)

    def augment(self, samples: np.ndarray, aug_type: str, rng: np.random.Generator,
                speaker: Optional[str] = None, drawn: Optional[dict] = None) -> np.ndarray:
        """Apply one given type to (N,) float32 samples -> (N,) float32 (deterministic given ``rng``).

        ``drawn``, if given, receives what was drawn: ``{"<type>_snr": dB}`` or ``{"reverb_gain_db": dB}``.
        """
        drawn = {} if drawn is None else drawn
        samples = np.asarray(samples, dtype=np.float32)
        n = samples.shape[0]
        if n == 0:
            raise ValueError("cannot augment empty audio")
        cfg, res, rate = self.config, self.resources, self.sample_rate
        if aug_type == "reverb":
            key = res.rirs.random_id(rng)
            out = reverberate(samples, res.rirs.load(key, rate), self._rir_spectra, (key, rate))
            if tuple(cfg.reverb_gain_db) != (0.0, 0.0):
                drawn["reverb_gain_db"] = rng.uniform(*cfg.reverb_gain_db)
                out = (out * 10.0 ** (drawn["reverb_gain_db"] / 20.0)).astype(np.float32)
        elif aug_type == "noise":
            noise = res.noise.random_segment(rng, n, rate)
            drawn["noise_snr"] = rng.uniform(*cfg.noise_snr)
            out = add_noise(samples, noise, drawn["noise_snr"])
        elif aug_type == "music":
            music = res.music.random_segment(rng, n, rate)
            drawn["music_snr"] = rng.uniform(*cfg.music_snr)
            out = add_noise(samples, music, drawn["music_snr"])
        elif aug_type == "babble":
            count = int(rng.integers(cfg.num_babble[0], cfg.num_babble[1] + 1))
            keys = res.speech.random_keys(rng, count, exclude_speaker=speaker)
            talkers = [res.speech.random_segment(rng, n, rate, key=key) for key in keys]
            drawn["babble_snr"] = rng.uniform(*cfg.babble_snr)
            out = add_noise(samples, babble_noise(talkers), drawn["babble_snr"])
        else:
            raise ValueError(f"unknown augmentation type '{aug_type}' (expected one of {', '.join(AUG_TYPES)})")
        return limit_peak(out, cfg.peak)
