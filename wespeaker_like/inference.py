"""Use a trained model outside the recipes: ``load_model`` and the ``SpeakerModel`` it returns.

    import wespeaker_like
    model = wespeaker_like.load_model("egs/speechocean762/v1/exp/ecapa_aam")   # or an exported file
    score = model.score("a.wav", "b.flac")

An experiment directory is read as stage 5 reads it (``config.yaml``, ``final_model.pt``, the saved
front-end) and embeds through the same code (``embed_features``); a file written by ``bin.export``
(TorchScript ``.pt``, with or without the front-end in the graph, or ONNX ``.onnx``) carries the
front-end settings, the mean vector and the calibration in its metadata. Audio is read with
soundfile, downmixed and resampled to the front-end's rate.

Scores are cosine scores with the experiment's mean normalisation when it has one: the
``--mean_embeddings`` that stage 6 recorded in ``exp/scores/*.result``. With ``exp/calibration.json``
(``{"a", "b", "threshold", "trials"}``, written by the calibration back-end) ``calibrate(score)``
gives the log-likelihood ratio ``a * score + b`` and the decision ``llr >= threshold``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from wespeaker_like.audio.io import load_audio, resample
from wespeaker_like.errors import InputError
from wespeaker_like.features.frontends import FrontEnd, build_frontend, check_model_input_dim
from wespeaker_like.objectives import build_objective
from wespeaker_like.scoring.calibration import read_calibration
from wespeaker_like.scoring.cosine import load_embeddings, mean_vector, normalise
from wespeaker_like.training.checkpoint import load_checkpoint, load_matching_state
from wespeaker_like.training.schema import load_experiment_config

Audio = Union[str, Path, np.ndarray]
METADATA_KEY = "wespeaker_like"  # TorchScript extra file / ONNX metadata entry holding ``export_metadata``
ONNX_SUFFIX = ".onnx"


def experiment_config(exp_dir: Path) -> dict:
    """The config training saved in ``exp_dir``, loaded and checked as training loads it."""
    config_path = exp_dir / "config.yaml"
    if not config_path.is_file():
        raise InputError(config_path, "not found: train the model first (stage 4)")
    return load_experiment_config(config_path)


def load_embedding_model(exp_dir: Path, checkpoint: Path | None = None, device: str = "cpu") -> tuple:
    """(eval-mode embedding network, config dict) from an experiment directory."""
    config_path = exp_dir / "config.yaml"
    cfg = experiment_config(exp_dir)
    checkpoint = checkpoint or exp_dir / "final_model.pt"
    if not checkpoint.is_file():
        raise InputError(checkpoint, "not found: training has not finished (stage 4)")
    state = load_checkpoint(checkpoint)
    objective = build_objective(cfg["objective"], cfg["model"], state["num_classes"])
    model = objective.embedding_model()
    load_matching_state(model, state["embedding"], checkpoint, config_path)
    return model.to(device).eval(), cfg


def saved_frontend(cfg: dict, config_path: Path) -> FrontEnd:
    """The training front-end from a saved config, checked against the model's input size."""
    frontend = build_frontend(cfg.get("features") or {}, str(config_path))
    check_model_input_dim(frontend, cfg.get("model", {}), str(config_path))
    return frontend


def embed_features(model: Callable, feats: torch.Tensor, device: str) -> Union[np.ndarray, Dict[str, np.ndarray]]:
    """One utterance's embedding: normalised features (T, dim) -> float32 (D,) through a torch network
    (eager or TorchScript) that maps (1, T, dim) to (1, D); or {name: (D,)} when it maps them to
    {name: (1, D)} (several outputs of one pass, e.g. the branches of a decoupled encoder)."""
    with torch.inference_mode():
        out = model(feats.unsqueeze(0).to(device))
    if isinstance(out, dict):
        return {name: value.squeeze(0).float().cpu().numpy() for name, value in out.items()}
    return out.squeeze(0).float().cpu().numpy()


def stage6_mean(exp_dir: Path) -> Optional[np.ndarray]:
    """The mean embedding [D] that stage 6 subtracted (``scoring.mean_embeddings`` of
    ``exp_dir/scores/*.result``), or None when stage 6 ran without one or has not run."""
    recorded = {}
    for result in sorted((exp_dir / "scores").glob("*.result")):
        try:
            path = json.loads(result.read_text()).get("scoring", {}).get("mean_embeddings")
        except (json.JSONDecodeError, AttributeError):
            raise InputError(result, "is not a stage-6 results file (JSON with a 'scoring' section)") from None
        if path:
            recorded[path] = result
    if len(recorded) > 1:
        raise InputError(exp_dir / "scores", f"stage-6 results name different mean embeddings {sorted(recorded)}; "
                         f"pass mean_embeddings= to load_model to choose one")
    if not recorded:
        return None
    path, result = next(iter(recorded.items()))
    if not Path(path).is_file():
        raise InputError(result, f"scoring.mean_embeddings '{path}' not found (run from the directory stage 6 "
                         f"ran in, or pass mean_embeddings= to load_model)")
    return mean_vector(load_embeddings(path))


def calibration_of(exp_dir: Path) -> Optional[Dict[str, float]]:
    """``{"a", "b", "threshold"}`` of the experiment's stage-6 ``calibration.json`` (None when there is none)."""
    path = exp_dir / "calibration.json"
    if not path.is_file():
        return None
    record = read_calibration(path)
    return {key: float(record[key]) for key in ("a", "b", "threshold")}


def export_metadata(exp_dir: Path, cfg: dict, mean_embeddings: Optional[Path] = None) -> dict:
    """What an exported file needs besides the network: front-end settings, mean [D] and calibration."""
    mean = load_mean(exp_dir, mean_embeddings)
    return {"features": cfg.get("features") or {}, "model": cfg.get("model", {}),
            "mean": None if mean is None else mean.tolist(),
            "calibration": calibration_of(exp_dir)}


def load_mean(exp_dir: Path, mean_embeddings: Optional[Path]) -> Optional[np.ndarray]:
    return stage6_mean(exp_dir) if mean_embeddings is None else mean_vector(load_embeddings(mean_embeddings))


class SpeakerModel:
    """A front-end plus an embedding network: audio -> embedding (D,), pairs -> cosine score.

    ``network`` maps normalised features (T, dim) to a float32 embedding (D,), or, with
    ``frontend_in_network``, the waveform (S,) itself; ``mean`` [D] is subtracted before the L2
    normalisation of scoring; ``calibration`` is ``{"a", "b", "threshold"}``.
    """

    def __init__(self, network: Callable[[torch.Tensor], np.ndarray], frontend: FrontEnd,
                 mean: Optional[np.ndarray] = None, calibration: Optional[Dict[str, float]] = None,
                 source: str = "model", frontend_in_network: bool = False):
        self.network = network
        self.frontend = frontend
        self.frontend_in_network = frontend_in_network
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        self.calibration = calibration
        self.source = source

    @property
    def sample_rate(self) -> int:
        return self.frontend.sample_rate

    def waveform(self, audio: Audio, sample_rate: Optional[int] = None) -> np.ndarray:
        """A path (any soundfile format, or a ``cmd |`` pipe) or an array -> mono float32 (S,) at the model's
        rate. An array is (S,), (S, channels) as soundfile reads it, or (channels, S); ``sample_rate``
        (default: the model's) is the array's rate."""
        if isinstance(audio, (str, Path)):
            if sample_rate is not None:
                raise ValueError("sample_rate is only for arrays; a file's rate is read from the file")
            return load_audio(str(audio), self.sample_rate, source=str(audio))
        samples = np.asarray(audio, dtype=np.float32)
        if samples.ndim == 2:
            channel_axis = 0 if samples.shape[0] < samples.shape[1] else 1
            samples = samples.mean(axis=channel_axis)
        if samples.ndim != 1:
            raise ValueError(f"expected audio of shape (samples,) or (samples, channels), got {audio.shape}")
        return resample(samples, sample_rate or self.sample_rate, self.sample_rate)

    def embed(self, audio: Audio, sample_rate: Optional[int] = None) -> np.ndarray:
        """One utterance -> its embedding, float32 (D,)."""
        samples = self.waveform(audio, sample_rate)
        if self.frontend.num_frames(samples.shape[0]) == 0:
            what = audio if isinstance(audio, (str, Path)) else "<array>"
            raise InputError(what, f"audio has {samples.shape[0]} samples at {self.sample_rate} Hz; expected at "
                             f"least {self.frontend.window} for one {self.frontend.kind} frame")
        inputs = torch.from_numpy(np.ascontiguousarray(samples)) if self.frontend_in_network else self.frontend(samples)
        embedding = self.network(inputs)
        if not np.isfinite(embedding).all():
            raise InputError(self.source, "the embedding is not finite (NaN or inf): the model has diverged "
                             "or the audio is broken")
        return embedding

    def embed_batch(self, audios: Sequence[Audio], sample_rate: Optional[int] = None) -> np.ndarray:
        """Utterances one by one (full length, no padding) -> (N, D)."""
        return np.stack([self.embed(audio, sample_rate) for audio in audios])

    def score_embeddings(self, first: np.ndarray, second: np.ndarray) -> float:
        """Cosine score of two embeddings (D,) after mean subtraction, as stage 6 scores."""
        a, b = normalise(np.stack([first, second]).astype(np.float64), self.mean)
        return float(a @ b)

    def score(self, first: Audio, second: Audio) -> float:
        """Cosine score of two utterances."""
        return self.score_embeddings(self.embed(first), self.embed(second))

    def calibrate(self, score: float) -> Optional[Tuple[float, bool]]:
        """(log-likelihood ratio, same speaker?) of a score; None without a calibration."""
        if self.calibration is None:
            return None
        llr = self.calibration["a"] * score + self.calibration["b"]
        return llr, llr >= self.calibration["threshold"]


def load_model(model: str | Path, device: str = "cpu", checkpoint: Optional[str | Path] = None,
               mean_embeddings: Optional[str | Path] = None) -> SpeakerModel:
    """A ``SpeakerModel`` from an experiment directory or from a file written by ``bin.export``.

    ``checkpoint`` (default ``final_model.pt``) and ``mean_embeddings`` (an embedding scp; default
    the one stage 6 used) apply to experiment directories only.
    """
    path = Path(model)
    if path.is_dir():
        cfg = experiment_config(path)
        frontend = saved_frontend(cfg, path / "config.yaml")
        network, _ = load_embedding_model(path, None if checkpoint is None else Path(checkpoint), device)
        mean = load_mean(path, None if mean_embeddings is None else Path(mean_embeddings))
        return SpeakerModel(lambda feats: embed_features(network, feats, device), frontend, mean,
                            calibration_of(path), str(checkpoint or path / "final_model.pt"))
    if not path.is_file():
        raise InputError(path, "not found: expected an experiment directory or a file written by bin.export")
    if checkpoint is not None or mean_embeddings is not None:
        raise ValueError("checkpoint= and mean_embeddings= apply to experiment directories, not exported files")
    network, metadata = load_exported(path, device)
    frontend = build_frontend(metadata["features"], f"{path} (metadata)")
    return SpeakerModel(network, frontend, metadata["mean"], metadata["calibration"], str(path),
                        metadata.get("with_frontend", False))


def load_exported(path: Path, device: str) -> Tuple[Callable[[torch.Tensor], np.ndarray], dict]:
    """(features (T, dim), or the waveform (S,) with the front-end inside, -> embedding (D,); metadata)
    of an exported TorchScript or ONNX file."""
    if path.suffix == ONNX_SUFFIX:
        import onnxruntime

        providers = ["CUDAExecutionProvider"] if device.startswith("cuda") else []
        try:
            session = onnxruntime.InferenceSession(str(path), providers=providers + ["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable files
            raise InputError(path, f"is not a readable ONNX model ({str(exc).splitlines()[0]})") from None
        text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        input_name = session.get_inputs()[0].name

        def network(feats: torch.Tensor) -> np.ndarray:
            return session.run(None, {input_name: feats.unsqueeze(0).numpy()})[0][0]
    else:
        extra = {METADATA_KEY: ""}
        try:
            module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
        except (RuntimeError, ValueError) as exc:
            raise InputError(path, f"is not a readable TorchScript model ({str(exc).splitlines()[0]})") from None
        text = extra[METADATA_KEY]
        text = text.decode() if isinstance(text, bytes) else text
        module.eval()

        def network(feats: torch.Tensor) -> np.ndarray:
            return embed_features(module, feats, device)
    if not text:
        raise InputError(path, f"has no '{METADATA_KEY}' metadata: export it with python -m wespeaker_like.bin.export")
    return network, json.loads(text)
