"""Front-ends: waveform -> features, one object per kind, built from the config's ``features:`` section.

Stage 3, the training dataset and extraction all build theirs with ``build_frontend(cfg)``, so the
same settings always give the same features. Kinds (``features.type``):

- ``fbank``: Kaldi filterbank (``torchaudio.compliance.kaldi.fbank``), dim = num_mel_bins.
- ``mfcc``: Kaldi MFCC (``compliance.kaldi.mfcc``), dim = num_ceps; "hires 40" is num_mel_bins 40,
  num_ceps 40, low_freq 20, high_freq -400.
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

from typing import Any, Dict, Mapping

import numpy as np
import torch
import torchaudio.compliance.kaldi as kaldi

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
NORMS = ("none", "cmn", "cmvn", "instance")
_TORCH_WINDOWS = {"hamming": torch.hamming_window, "hanning": torch.hann_window,
                  "rectangular": lambda n: torch.ones(n), "blackman": torch.blackman_window}
_INSTANCE_EPS = 1e-5


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
    return full


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
        self.dim: int = {"fbank": self.cfg["num_mel_bins"], "mfcc": self.cfg["num_ceps"],
                         "stft": self.cfg["n_fft"] // 2 + 1, "logmel": self.cfg["num_mel_bins"]}[self.kind]
        self._mel = None
        if self.kind == "logmel":
            import torchaudio.functional as AF

            high = self.cfg["high_freq"] if self.cfg["high_freq"] > 0 else self.sample_rate / 2 + self.cfg["high_freq"]
            # (n_fft//2+1, n_mels), the matrix MelSpectrogram uses (htk scale, no norm).
            self._mel = AF.melscale_fbanks(self.cfg["n_fft"] // 2 + 1, float(self.cfg["low_freq"]), float(high),
                                           self.cfg["num_mel_bins"], self.sample_rate)

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
                          window=_TORCH_WINDOWS[self.cfg["window_type"]](self._win_length), center=False,
                          return_complex=True).abs()  # (n_fft//2+1, T)
        if self.kind == "stft":
            return torch.log(spec + self.cfg["log_offset"]).T.contiguous()
        power_mel = torch.matmul(spec.pow(2).T, self._mel)  # (T, n_mels)
        return torch.log(power_mel + self.cfg["log_offset"])

    def _kaldi(self, wave: torch.Tensor) -> torch.Tensor:
        # Kaldi works on 16-bit integer scale; the log-energies then match Kaldi's own binaries.
        common = dict(sample_frequency=self.sample_rate, frame_length=self.cfg["frame_length"],
                      frame_shift=self.cfg["frame_shift"], dither=self.cfg["dither"],
                      window_type=self.cfg["window_type"], energy_floor=0.0,
                      num_mel_bins=self.cfg["num_mel_bins"], low_freq=self.cfg["low_freq"],
                      high_freq=self.cfg["high_freq"], preemphasis_coefficient=self.cfg["preemphasis"])
        wave = wave.unsqueeze(0) * (1 << 15)
        if self.kind == "fbank":
            return kaldi.fbank(wave, **common)
        return kaldi.mfcc(wave, num_ceps=self.cfg["num_ceps"], **common)

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
