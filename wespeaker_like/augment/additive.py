"""Additive corruption: noise or music at a signal-to-noise ratio, and babble.

SNR here is Kaldi's: the ratio of the *whole-utterance* mean powers, ``10 log10(P_speech / P_noise)``,
with the noise as it is added (already cut or tiled to the utterance length). All functions take
and return float32 arrays of shape (N,).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

_EPS = 1e-20


def mean_power(samples: np.ndarray) -> float:
    """Mean square of (N,) samples, computed in float64."""
    x = np.asarray(samples, dtype=np.float64)
    return float(np.mean(x * x)) if x.size else 0.0


def snr_db(speech: np.ndarray, noise: np.ndarray) -> float:
    """``10 log10(P_speech / P_noise)`` of two (N,) signals."""
    return 10.0 * np.log10(max(mean_power(speech), _EPS) / max(mean_power(noise), _EPS))


def scale_to_snr(speech: np.ndarray, noise: np.ndarray, snr: float) -> np.ndarray:
    """The (N,) noise scaled so that ``snr_db(speech, scaled) == snr``.

    Silent noise stays silent (there is nothing to scale); silent speech gives silent noise.
    """
    if noise.shape != speech.shape:
        raise ValueError(f"noise shape {noise.shape} differs from speech shape {speech.shape}")
    noise_power = mean_power(noise)
    if noise_power <= _EPS:
        return np.zeros_like(speech, dtype=np.float32)
    gain = np.sqrt(mean_power(speech) / (noise_power * 10.0 ** (snr / 10.0)))
    return (np.asarray(noise, dtype=np.float64) * gain).astype(np.float32)


def add_noise(speech: np.ndarray, noise: np.ndarray, snr: float) -> np.ndarray:
    """speech (N,) + noise (N,) scaled to ``snr`` dB -> (N,) float32."""
    return (np.asarray(speech, dtype=np.float32) + scale_to_snr(speech, noise, snr)).astype(np.float32)


def babble_noise(talkers: Sequence[np.ndarray]) -> np.ndarray:
    """Sum of K talkers, each (N,), each first normalised to unit power (equal loudness) -> (N,)."""
    if not talkers:
        raise ValueError("babble needs at least one talker")
    total = np.zeros(talkers[0].shape, dtype=np.float64)
    for talker in talkers:
        power = mean_power(talker)
        if power > _EPS:
            total += np.asarray(talker, dtype=np.float64) / np.sqrt(power)
    return total.astype(np.float32)


def limit_peak(samples: np.ndarray, peak: float = 0.99) -> np.ndarray:
    """Scale (N,) down (never up) so that max |x| <= ``peak``; keeps every ratio (SNR) intact."""
    top = float(np.max(np.abs(samples))) if samples.size else 0.0
    if top > peak:
        return (samples * (peak / top)).astype(np.float32)
    return samples
