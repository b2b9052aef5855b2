"""Export an experiment's embedding network to TorchScript or ONNX, for use without this package's training code.

    python -m wespeaker_like.bin.export --model exp/x --format torchscript   # -> exp/x/export/final_model.pt
    python -m wespeaker_like.bin.export --model exp/x --format onnx          # -> exp/x/export/final_model.onnx
    python -m wespeaker_like.bin.export --model exp/x --format torchscript --with_frontend  # final_model_frontend.pt

The graph maps normalised features ``feats`` (batch, frames, dim) to ``embedding`` (batch, D), with
batch and frames dynamic; with ``--with_frontend`` (TorchScript only) it maps one waveform (1, samples)
at the front-end's rate to (1, D), the front-end traced into the graph. The front-end settings, the
stage-6 mean embedding and the calibration travel in the file's metadata (``inference.METADATA_KEY``,
JSON), so ``wespeaker_like.load_model`` on the exported file embeds and scores as it does on the
experiment. ONNX has no operator for the front-end's framing (unfold) or complex STFT, so an ONNX
graph starts at the features. ONNX export needs the ``onnx`` package; ONNX Runtime runs the result.
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from pathlib import Path
from typing import List, Optional

import torch

from wespeaker_like.bin._entry import ArgumentParser, entry_point
from wespeaker_like.features.frontends import FrontEnd
from wespeaker_like.fileio import atomic_path
from wespeaker_like.inference import METADATA_KEY, ONNX_SUFFIX, export_metadata, load_embedding_model, saved_frontend

log = logging.getLogger("export")
EXAMPLE_FRAMES = 200  # the example input's length; the time axis stays dynamic
ONNX_OPSET = 17


class WaveformEmbedder(torch.nn.Module):
    """Waveform (1, S) at the front-end's rate -> embedding (1, D): front-end, normalisation, network."""

    def __init__(self, frontend: FrontEnd, model: torch.nn.Module):
        super().__init__()
        self.frontend, self.model = frontend, model

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.model(self.frontend(wave[0]).unsqueeze(0))


def export_torchscript(model: torch.nn.Module, metadata: dict, output: Path,
                       frontend: Optional[FrontEnd] = None) -> None:
    """``torch.jit.script`` of the network (every backbone in models/ scripts), or with a front-end a trace
    of ``WaveformEmbedder`` (the front-end is plain tensor code, not scriptable); metadata as an extra file."""
    if frontend is None:
        exported = torch.jit.script(model)
    else:
        example = 0.1 * torch.randn(1, frontend.num_samples(EXAMPLE_FRAMES))
        with warnings.catch_warnings():  # the length checks are Python ifs, constant in a trace: expected
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            exported = torch.jit.trace(WaveformEmbedder(frontend, model).eval(), (example,), check_trace=False)
    with atomic_path(output) as tmp:
        torch.jit.save(exported, str(tmp), _extra_files={METADATA_KEY: json.dumps(metadata)})


def export_onnx(model: torch.nn.Module, metadata: dict, feat_dim: int, output: Path) -> None:
    """The TorchScript-based ONNX exporter with dynamic batch and frame axes, metadata in metadata_props."""
    import onnx

    example = torch.randn(1, EXAMPLE_FRAMES, feat_dim)
    with atomic_path(output) as tmp:
        torch.onnx.export(model, (example,), str(tmp), input_names=["feats"], output_names=["embedding"],
                          dynamic_axes={"feats": {0: "batch", 1: "frames"}, "embedding": {0: "batch"}},
                          opset_version=ONNX_OPSET, dynamo=False)
        graph = onnx.load(str(tmp))
        entry = graph.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
        onnx.save(graph, str(tmp))


def export(exp_dir: Path, fmt: str, output: Optional[Path] = None, checkpoint: Optional[Path] = None,
           mean_embeddings: Optional[Path] = None, with_frontend: bool = False) -> Path:
    """Write the exported file (default ``exp_dir/export/final_model[_frontend].pt|.onnx``), return its path."""
    if with_frontend and fmt == "onnx":
        raise ValueError("the front-end cannot go into an ONNX graph (no ONNX operator for its framing)")
    model, cfg = load_embedding_model(exp_dir, checkpoint, "cpu")
    frontend = saved_frontend(cfg, exp_dir / "config.yaml")
    metadata = dict(export_metadata(exp_dir, cfg, mean_embeddings), with_frontend=with_frontend)
    name = "final_model" + ("_frontend" if with_frontend else "") + (ONNX_SUFFIX if fmt == "onnx" else ".pt")
    output = output or exp_dir / "export" / name
    if fmt == "onnx":
        export_onnx(model, metadata, frontend.dim, output)
    else:
        export_torchscript(model, metadata, output, frontend if with_frontend else None)
    return output


@entry_point("export")
def main(argv: Optional[List[str]] = None) -> int:
    parser = ArgumentParser(prog="python -m wespeaker_like.bin.export", description=__doc__)
    parser.add_argument("--model", required=True, type=Path, help="experiment dir (config.yaml, final_model.pt)")
    parser.add_argument("--format", required=True, choices=["torchscript", "onnx"])
    parser.add_argument("--with_frontend", action="store_true",
                        help="torchscript only: the graph takes the waveform (1, samples) instead of features")
    parser.add_argument("-o", "--output", type=Path, help="default: <model>/export/final_model.pt or .onnx")
    parser.add_argument("--checkpoint", type=Path, help="default: <model>/final_model.pt")
    parser.add_argument("--mean_embeddings", type=Path,
                        help="embedding scp whose mean goes with the model (default: the one stage 6 used)")
    args = parser.parse_args(argv)
    if args.output is not None and (args.output.suffix == ONNX_SUFFIX) != (args.format == "onnx"):
        parser.error(f"--output of --format {args.format} must {'' if args.format == 'onnx' else 'not '}"
                     f"end in {ONNX_SUFFIX}: load_model tells the formats apart by it")
    if args.with_frontend and args.format == "onnx":
        parser.error("--with_frontend needs --format torchscript: ONNX has no operator for the front-end's framing "
                     "(unfold) or its complex STFT")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    output = export(args.model, args.format, args.output, args.checkpoint, args.mean_embeddings,
                    args.with_frontend)
    log.info("%s model -> %s", args.format, output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
