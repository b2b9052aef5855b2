"""Front-ends: waveform -> features, one object per kind, built from the config's ``features:`` section.

Stage 3, the training dataset and extraction all build theirs with ``build_frontend(cfg)``, so the
same settings always give the same features. Kinds (``features.type``):

- ``fbank``: Kaldi filterbank, equal to ``torchaudio.compliance.kaldi.fbank`` (energy_floor 0, no
  energy), dim = num_mel_bins.
- ``mfcc``: Kaldi MFCC, equal to ``compliance.kaldi.mfcc``, dim = num_ceps; "hires 40" is num_mel_bins 40,
  num_ceps 40, low_freq 20, high_freq -400.
  Both are computed here with the window, mel banks and DCT built once per front-end (compliance.kaldi
  rebuilds them on every call, which was most of a training view's cost).
- ``stft``: log-magnitude STFT, log(|X| + log_offset), dim = n_fft // 2 + 1 (257 for n_fft 512).
- ``logmel``: log(power mel + log_offset) as ``torchaudio.transforms.MelSpectrogram`` computes the mel
  (3D-Speaker's SDPN data: Hamming window, n_fft 512, power 2), dim = num_mel_bins.

Every kind frames like Kaldi's snip_edges: a frame needs a whole window, so
num_frames = 1 + (S - window) // shift (0 when S < window), with window = frame_length for the Kaldi
kinds and n_fft for stft/logmel (torch.stft with center=False pads the window to n_fft).
Normalisation ``norm``: none | cmn (mean over time) | cmvn (mean and variance over time) |
instance (cmvn per feature over time, as InstanceNorm1d without affine, eps 1e-5).
"""

from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Tuple

import numpy as np
import torch
import torchaudio.compliance.kaldi as kaldi
import torchaudio.functional as AF

from wespeaker_like.errors import InputError

FEATURE_DEFAULTS: Dict[str, Any] = {
    "type": "fbank",          # fbank | mfcc | stft | logmel
    "sample_rate": 16000,
    "num_mel_bins": 80,       # fbank, mfcc, logmel
    "num_ceps": 40,           # mfcc
    "frame_length": 25.0,     # ms
    "frame_shift": 10.0,      # ms
    "dither": 0.0,            # fbank, mfcc; 0 keeps features deterministic
    "window_type": "hamming",  # hamming | hanning | povey (Kaldi kinds) | rectangular | blackman
    "low_freq": 20.0,         # Hz, mel filters (Kaldi's default)
    "high_freq": 0.0,         # Hz; <= 0 means Nyquist + high_freq (Kaldi convention)
    "preemphasis": 0.97,      # Kaldi kinds: Kaldi's default
    "n_fft": 512,             # stft, logmel
    "log_offset": 1e-6,       # stft, logmel: log(x + log_offset)
    "norm": "cmn",            # none | cmn | cmvn | instance
}

KINDS = ("fbank", "mfcc", "stft", "logmel")
KALDI_WINDOWS = ("hamming", "hanning", "povey", "rectangular", "blackman")
NORMS = ("none", "cmn", "cmvn", "instance")
_TORCH_WINDOWS = {"hamming": torch.hamming_window, "hanning": torch.hann_window,
                  "rectangular": lambda n: torch.ones(n), "blackman": torch.blackman_window}
_INSTANCE_EPS = 1e-5
# compliance.kaldi's defaults for what the config does not expose
_EPSILON = torch.finfo(torch.float32).eps
_BLACKMAN_COEFF = 0.42
_CEPSTRAL_LIFTER = 22.0
_VTLN_LOW, _VTLN_HIGH = 100.0, -500.0


def check_feature_config(cfg: Mapping[str, Any], source: str = "features") -> Dict[str, Any]:
    """Defaults filled in and every value checked; unknown keys or bad values raise InputError."""
    unknown = sorted(set(cfg) - set(FEATURE_DEFAULTS))
    if unknown:
        raise InputError(source, f"unknown key 'features.{unknown[0]}' (known: {', '.join(FEATURE_DEFAULTS)})")
    full = {**FEATURE_DEFAULTS, **cfg}
    if full["type"] not in KINDS:
        raise InputError(source, f"features.type is '{full['type']}'; expected one of {', '.join(KINDS)}")
    if full["norm"] not in NORMS:
        raise InputError(source, f"features.norm is '{full['norm']}'; expected one of {', '.join(NORMS)}")
    for key in ("sample_rate", "num_mel_bins", "num_ceps", "n_fft"):
        if isinstance(full[key], bool) or not isinstance(full[key], int) or full[key] <= 0:
            raise InputError(source, f"features.{key} must be a positive integer, got {full[key]!r}")
    for key in ("frame_length", "frame_shift", "dither", "low_freq", "high_freq", "preemphasis", "log_offset"):
        if isinstance(full[key], bool) or not isinstance(full[key], (int, float)):
            raise InputError(source, f"features.{key} must be a number, got {full[key]!r}")
    if full["frame_length"] <= 0 or full["frame_shift"] <= 0:
        raise InputError(source, "features.frame_length and features.frame_shift (ms) must be positive")
    if full["type"] in ("stft", "logmel"):
        if full["window_type"] not in _TORCH_WINDOWS:
            raise InputError(source, f"features.window_type '{full['window_type']}' is not available for "
                             f"{full['type']} (expected one of {', '.join(_TORCH_WINDOWS)})")
        if full["dither"] != 0:
            raise InputError(source, f"features.dither applies to fbank/mfcc only; set it to 0 for {full['type']}")
    else:
        _check_kaldi_config(full, source)
    return full


def _check_kaldi_config(full: Mapping[str, Any], source: str) -> None:
    """What compliance.kaldi would assert on, as InputError naming the key."""
    if full["window_type"] not in KALDI_WINDOWS:
        raise InputError(source, f"features.window_type '{full['window_type']}' is not available for "
                         f"{full['type']} (expected one of {', '.join(KALDI_WINDOWS)})")
    if not 0 <= full["preemphasis"] <= 1:
        raise InputError(source, f"features.preemphasis must be in [0, 1], got {full['preemphasis']}")
    if full["dither"] < 0:
        raise InputError(source, f"features.dither must be >= 0, got {full['dither']}")
    if full["num_mel_bins"] <= 3:
        raise InputError(source, f"features.num_mel_bins must be at least 4 for {full['type']}")
    if full["type"] == "mfcc" and full["num_ceps"] > full["num_mel_bins"]:
        raise InputError(source, f"features.num_ceps ({full['num_ceps']}) cannot exceed features.num_mel_bins "
                         f"({full['num_mel_bins']})")
    nyquist = full["sample_rate"] / 2
    high = full["high_freq"] if full["high_freq"] > 0 else nyquist + full["high_freq"]
    if not (0 <= full["low_freq"] < nyquist and 0 < high <= nyquist and full["low_freq"] < high):
        raise InputError(source, f"features.low_freq {full['low_freq']} and features.high_freq {full['high_freq']} "
                         f"(= {high} Hz) must satisfy 0 <= low < high <= Nyquist ({nyquist} Hz)")
    if int(full["sample_rate"] * full["frame_length"] / 1000) < 2:
        raise InputError(source, "features.frame_length is shorter than two samples")


class FrontEnd:
    """Waveform (S,) float32 in [-1, 1] at ``sample_rate`` -> features (T, dim), then the configured norm.

    ``num_frames``/``num_samples`` convert between waveform and feature lengths:
    ``num_frames(num_samples(T)) == T`` for every T >= 1.
    """

    def __init__(self, cfg: Mapping[str, Any], source: str = "features"):
        self.cfg = check_feature_config(cfg, source)
        self.kind = self.cfg["type"]
        self.sample_rate: int = self.cfg["sample_rate"]
        self.shift = int(self.sample_rate * self.cfg["frame_shift"] / 1000)
        win_length = int(self.sample_rate * self.cfg["frame_length"] / 1000)
        if self.kind in ("fbank", "mfcc"):
            self.window = win_length
        else:
            if win_length > self.cfg["n_fft"]:
                raise InputError(source, f"features.frame_length ({self.cfg['frame_length']} ms = {win_length} "
                                 f"samples) is longer than features.n_fft ({self.cfg['n_fft']})")
            self.window = self.cfg["n_fft"]
            self._win_length = win_length
            self._stft_window = _TORCH_WINDOWS[self.cfg["window_type"]](win_length)
        self.dim: int = {"fbank": self.cfg["num_mel_bins"], "mfcc": self.cfg["num_ceps"],
                         "stft": self.cfg["n_fft"] // 2 + 1, "logmel": self.cfg["num_mel_bins"]}[self.kind]
        self._mel = None
        if self.kind in ("fbank", "mfcc"):
            self._init_kaldi_constants()
        if self.kind == "logmel":
            high = self.cfg["high_freq"] if self.cfg["high_freq"] > 0 else self.sample_rate / 2 + self.cfg["high_freq"]
            # (n_fft//2+1, n_mels), the matrix MelSpectrogram uses (htk scale, no norm).
            self._mel = AF.melscale_fbanks(self.cfg["n_fft"] // 2 + 1, float(self.cfg["low_freq"]), float(high),
                                           self.cfg["num_mel_bins"], self.sample_rate)

    def _init_kaldi_constants(self) -> None:
        """Window, mel banks and (MFCC) liftered DCT: what compliance.kaldi rebuilds on every call."""
        cfg = self.cfg
        self._padded = 1 << (self.window - 1).bit_length()  # Kaldi's round_to_power_of_two
        self._kaldi_window = _kaldi_window(cfg["window_type"], self.window)
        banks, _ = kaldi.get_mel_banks(cfg["num_mel_bins"], self._padded, self.sample_rate, cfg["low_freq"],
                                       cfg["high_freq"], _VTLN_LOW, _VTLN_HIGH, 1.0)
        # (padded//2 + 1, num_mel_bins): the Nyquist bin has no weight, as in Kaldi.
        self._kaldi_mel = torch.nn.functional.pad(banks.float(), (0, 1)).T.contiguous()
        if self.kind == "mfcc":
            self._dct, self._lifter = _kaldi_dct(cfg["num_ceps"], cfg["num_mel_bins"])

    def num_frames(self, num_samples: int) -> int:
        """Frames produced by ``num_samples`` samples (0 if shorter than one window)."""
        return 0 if num_samples < self.window else 1 + (num_samples - self.window) // self.shift

    def num_samples(self, num_frames: int) -> int:
        """Fewest samples that give exactly ``num_frames`` frames (num_frames >= 1)."""
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        return self.window + (num_frames - 1) * self.shift

    def features(self, waveform: torch.Tensor | np.ndarray) -> torch.Tensor:
        """(S,) float32 waveform in [-1, 1] -> (T, dim) float32 features, unnormalised.

        Raises ValueError when S is shorter than one window.
        """
        wave = _float_tensor(waveform)
        if wave.dim() != 1:
            raise ValueError(f"expected a waveform of shape (samples,), got {tuple(wave.shape)}")
        if wave.shape[0] < self.window:
            raise ValueError(f"{wave.shape[0]} samples is shorter than one {self.kind} window ({self.window})")
        if self.kind in ("fbank", "mfcc"):
            return self._kaldi(wave)
        spec = torch.stft(wave, self.cfg["n_fft"], hop_length=self.shift, win_length=self._win_length,
                          window=self._stft_window, center=False,
                          return_complex=True).abs()  # (n_fft//2+1, T)
        if self.kind == "stft":
            return torch.log(spec + self.cfg["log_offset"]).T.contiguous()
        power_mel = torch.matmul(spec.pow(2).T, self._mel)  # (T, n_mels)
        return torch.log(power_mel + self.cfg["log_offset"])

    def _kaldi(self, wave: torch.Tensor) -> torch.Tensor:
        """(S,) -> (T, dim): Kaldi's fbank/MFCC (snip_edges, raw energy unused) with cached constants."""
        # Kaldi works on 16-bit integer scale; the log-energies then match Kaldi's own binaries.
        frames = (wave * (1 << 15)).unfold(0, self.window, self.shift)  # (T, window), a view
        if self.cfg["dither"] != 0:  # the global generator, as compliance.kaldi draws it
            frames = frames + torch.randn(frames.shape) * self.cfg["dither"]
        frames = frames - frames.mean(1, keepdim=True)
        # Pre-emphasis x[j] - c x[j-1] (x[-1] = x[0]) and the window, written into the zero-padded FFT input.
        padded = torch.zeros(frames.shape[0], self._padded)
        coefficient = self.cfg["preemphasis"]
        emphasised = padded[:, :self.window]
        torch.mul(frames[:, :-1], coefficient, out=emphasised[:, 1:])  # rounded as compliance.kaldi rounds
        torch.mul(frames[:, 0], coefficient, out=emphasised[:, 0])
        torch.sub(frames, emphasised, out=emphasised)
        emphasised *= self._kaldi_window
        spectrum = torch.fft.rfft(padded)  # (T, padded//2 + 1)
        if self.kind == "mfcc":  # |X|² rounded as compliance.kaldi rounds it: the DCT magnifies 1-ulp differences
            power = spectrum.abs().square_()
        else:  # within an ulp of |X|², at a third of the cost
            power = spectrum.real.square().add_(spectrum.imag.square())
        log_mel = torch.mm(power, self._kaldi_mel).clamp_min_(_EPSILON).log_()  # (T, num_mel_bins)
        if self.kind == "fbank":
            return log_mel
        return torch.mm(log_mel, self._dct).mul_(self._lifter)  # in compliance.kaldi's order: equal rounding

    def normalise(self, feats: torch.Tensor | np.ndarray) -> torch.Tensor:
        """(T, dim) -> (T, dim) float32 with the configured normalisation over time."""
        feats = _float_tensor(feats)
        norm = self.cfg["norm"]
        if norm == "none":
            return feats
        centred = feats - feats.mean(0, keepdim=True)
        if norm == "cmn":
            return centred
        if norm == "cmvn":
            return centred / feats.std(0, unbiased=False, keepdim=True).clamp_min(_INSTANCE_EPS)
        return centred / torch.sqrt(feats.var(0, unbiased=False, keepdim=True) + _INSTANCE_EPS)

    def __call__(self, waveform: torch.Tensor | np.ndarray) -> torch.Tensor:
        """(S,) waveform -> (T, dim) normalised features."""
        return self.normalise(self.features(waveform))


def _kaldi_window(window_type: str, size: int) -> torch.Tensor:
    """(size,) float32 Kaldi window (symmetric, as feature-window.cc defines them)."""
    if window_type == "hamming":
        return torch.hamming_window(size, periodic=False, alpha=0.54, beta=0.46)
    if window_type in ("hanning", "povey"):
        hann = torch.hann_window(size, periodic=False)
        return hann if window_type == "hanning" else hann.pow(0.85)
    if window_type == "rectangular":
        return torch.ones(size)
    phase = 2 * math.pi / (size - 1) * torch.arange(size, dtype=torch.float32)  # blackman
    return _BLACKMAN_COEFF - 0.5 * torch.cos(phase) + (0.5 - _BLACKMAN_COEFF) * torch.cos(2 * phase)


def _kaldi_dct(num_ceps: int, num_mel_bins: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Kaldi's orthonormal DCT-II, (num_mel_bins, num_ceps) float32 with C0 weights sqrt(1/num_mel_bins), and
    its cepstral lifter (num_ceps,)."""
    dct = AF.create_dct(num_mel_bins, num_mel_bins, "ortho")
    dct[:, 0] = math.sqrt(1 / num_mel_bins)
    lifter = 1.0 + 0.5 * _CEPSTRAL_LIFTER * torch.sin(math.pi * torch.arange(num_ceps) / _CEPSTRAL_LIFTER)
    return dct[:, :num_ceps].contiguous(), lifter


def _float_tensor(array: torch.Tensor | np.ndarray) -> torch.Tensor:
    """float32 tensor sharing memory where possible; read-only arrays (memory-mapped arks) are copied."""
    if torch.is_tensor(array):
        return array.float()
    array = np.asarray(array, dtype=np.float32)
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def build_frontend(cfg: Mapping[str, Any], source: str = "features") -> FrontEnd:
    """The front-end of a ``features:`` config section; ``source`` names the config in errors."""
    return FrontEnd(cfg, source)


def model_input_dim(model_cfg: Mapping[str, Any]) -> Any:
    """``model.feat_dim``, or the backbone's default when the config leaves it out (None if unknown)."""
    if "feat_dim" in model_cfg:
        return model_cfg["feat_dim"]
    import inspect

    import wespeaker_like.models  # noqa: F401  (registers the backbones)
    from wespeaker_like.registry import MODELS

    if model_cfg.get("name") not in MODELS:
        return None
    parameter = inspect.signature(MODELS.get(model_cfg["name"])).parameters.get("feat_dim")
    return None if parameter is None or parameter.default is inspect.Parameter.empty else parameter.default


def check_model_input_dim(frontend: FrontEnd, model_cfg: Mapping[str, Any], source: str = "config") -> None:
    """The model's ``model.feat_dim`` (given or its default) must equal the front-end's output dim;
    else InputError naming both keys."""
    feat_dim = model_input_dim(model_cfg)
    if feat_dim is not None and feat_dim != frontend.dim:
        key = {"fbank": "num_mel_bins", "mfcc": "num_ceps", "stft": "n_fft // 2 + 1",
               "logmel": "num_mel_bins"}[frontend.kind]
        given = "" if "feat_dim" in model_cfg else f" ({model_cfg['name']}'s default)"
        raise InputError(source, f"model.feat_dim is {feat_dim}{given} but the {frontend.kind} front-end gives "
                         f"{frontend.dim}-d features (features.{key}); make them equal")
