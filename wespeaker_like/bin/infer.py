"""Embed or compare audio files with a trained model (an experiment dir or a file from bin.export).

    python -m wespeaker_like.bin.infer --model exp/x embed a.wav b.flac -o emb.ark   # + emb.scp
    python -m wespeaker_like.bin.infer --model exp/x embed --wav_scp data/test/wav.scp -o emb.npy
    python -m wespeaker_like.bin.infer --model exp/x compare a.wav b.wav

``embed`` writes a Kaldi ark with its scp beside it (keys: the paths as given, or the wav.scp /
segments utterance ids), or a ``.npy`` matrix (N, D) whose rows follow the files as given (wav.scp:
its utterances in sorted order). ``compare`` prints the cosine score (mean-normalised as in stage 6)
and, when the experiment has a calibration (``exp/calibration.json``), the log-likelihood ratio and
the decision. Installed with ``pip install``, the same command is ``wespeaker-like-infer``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np

from wespeaker_like.audio.source import AudioSource
from wespeaker_like.bin._entry import ArgumentParser, entry_point
from wespeaker_like.features.ark import ArkScpWriter
from wespeaker_like.fileio import atomic_path
from wespeaker_like.inference import SpeakerModel, load_model
from wespeaker_like.progress import progress_bar

log = logging.getLogger("infer")


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m wespeaker_like.bin.infer", description=__doc__)
    parser.add_argument("--model", required=True, type=Path, help="experiment dir or exported .pt/.onnx file")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--checkpoint", type=Path, help="experiment dirs only (default: final_model.pt)")
    parser.add_argument("--mean_embeddings", type=Path,
                        help="embedding scp whose mean is subtracted (default: the one stage 6 used)")
    commands = parser.add_subparsers(dest="command", required=True)
    embed = commands.add_parser("embed", help="embeddings of audio files")
    embed.add_argument("audio", nargs="*", type=Path, help="audio files (any format soundfile reads)")
    embed.add_argument("--wav_scp", type=Path, help="Kaldi wav.scp (with a 'segments' file beside it, if any)")
    embed.add_argument("-o", "--output", required=True, type=Path, help="out.ark (+ out.scp) or out.npy")
    embed.add_argument("--progress_every", type=int, default=100,
                       help="with stderr in a file: a progress line every N utterances")
    compare = commands.add_parser("compare", help="score two audio files")
    compare.add_argument("first", type=Path)
    compare.add_argument("second", type=Path)
    return parser


def embed(model: SpeakerModel, args) -> None:
    if args.wav_scp:
        segments = args.wav_scp.with_name("segments")
        source = AudioSource(args.wav_scp, model.sample_rate, segments if segments.is_file() else None)
        keys = source.utts
        read = source.read
    else:
        keys = [str(path) for path in args.audio]
        read = Path
    embeddings = []
    with progress_bar(len(keys), "embed", args.progress_every, log) as bar:
        for key in keys:
            embeddings.append(model.embed(read(key)))
            bar.update(1)
    if args.output.suffix == ".npy":
        with atomic_path(args.output) as tmp:
            np.save(tmp, np.stack(embeddings))
    else:
        with ArkScpWriter(args.output, args.output.with_suffix(".scp")) as writer:
            for key, embedding in zip(keys, embeddings):
                writer.write(key, embedding)
    log.info("%d embeddings -> %s", len(keys), args.output)


def compare(model: SpeakerModel, args) -> None:
    score = model.score(args.first, args.second)
    calibrated = model.calibrate(score)
    if calibrated is None:
        print(f"score {score:.6f}")
    else:
        llr, same = calibrated
        print(f"score {score:.6f}  llr {llr:.4f}  {'same speaker' if same else 'different speakers'}")


@entry_point("infer")
def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "embed" and args.output.suffix not in (".ark", ".npy"):
        parser.error(f"-o must end in .ark or .npy, got '{args.output}'")
    if args.command == "embed" and bool(args.audio) == bool(args.wav_scp):
        parser.error("embed needs audio files or --wav_scp (one of them)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    model = load_model(args.model, args.device, args.checkpoint, args.mean_embeddings)
    {"embed": embed, "compare": compare}[args.command](model, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
