"""Stage 1 (and the stage-2 resources): Kaldi data dirs and official trial lists of a corpus.

    python -m wespeaker_like.bin.prepare_corpus speechocean762 --src corpus/speechocean762 --out data [--trials F]
    python -m wespeaker_like.bin.prepare_corpus voxceleb1 --src corpus/voxceleb1 --out data
    python -m wespeaker_like.bin.prepare_corpus voxceleb2 --src corpus/voxceleb2 --out data --m4a pipe|convert
    python -m wespeaker_like.bin.prepare_corpus cnceleb --src corpus --out data --enroll_mode concat|average \
        [--combine_short 5]
    python -m wespeaker_like.bin.prepare_corpus ffsvc --src corpus/ffsvc --out data [--device_label device]
    python -m wespeaker_like.bin.prepare_corpus musan --src corpus/musan --out data
    python -m wespeaker_like.bin.prepare_corpus rirs_noises --src corpus/RIRS_NOISES --out data
    python -m wespeaker_like.bin.prepare_corpus check_disjoint --train data/vox2_dev --test data/vox1_test

Every data dir is written sorted (LC_ALL=C order) and validated; wav.scp paths are absolute.
Errors name the file or directory and what was expected there, and exit with status 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from wespeaker_like.bin._entry import ArgumentParser, entry_point
from wespeaker_like.data.corpora import cnceleb, ffsvc, musan, rirs_noises, speechocean762, voxceleb
from wespeaker_like.data.corpora.common import check_speakers_disjoint
from wespeaker_like.data.kaldi_dir import DataDir
from wespeaker_like.errors import InputError


def _csv(text: str):
    return [t for t in text.split(",") if t]


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="corpus", required=True)

    def add(name, help_text, src_help):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--src", required=name != "cnceleb", default=None, help=src_help)
        p.add_argument("--out", required=True, help="parent directory of the data dirs written")
        p.add_argument("--nj", type=int, default=1, help="parallel processes for durations/decoding")
        return p

    p = add("speechocean762", "speechocean762 train/test + test trials", "corpus root with WAVE/, train/, test/")
    p.add_argument("--trials", default=None, help="fixed trial list (default: draw a seeded list from test)")
    p.add_argument("--seed", type=int, default=777, help="seed of the drawn trial list")

    p = add("voxceleb1", "VoxCeleb1 dev/test + Vox1-O/E/H trials", "VoxCeleb1 root with dev/wav and test/wav")
    p.add_argument("--trials", type=_csv, default=list(voxceleb.TRIAL_FILES),
                   help="comma-separated trial lists (default all: " + ",".join(voxceleb.TRIAL_FILES) + ")")
    p.add_argument("--trials_dir", default=None, help="where the official trial .txt files are (default --src)")

    p = add("voxceleb2", "VoxCeleb2 dev (AAC via ffmpeg)", "VoxCeleb2 root with dev/aac")
    p.add_argument("--m4a", choices=("pipe", "convert"), default="pipe",
                   help="pipe: wav.scp holds ffmpeg pipes; convert: decode once to WAV under --wav_dir")
    p.add_argument("--wav_dir", default=None, help="converted WAV root (default <src>/dev/wav)")
    p.add_argument("--sample_rate", type=int, default=16000)

    p = add("cnceleb", "CN-Celeb1 dev/eval + CN-Celeb2", "directory holding CN-Celeb_flac/ and CN-Celeb2_flac/")
    p.add_argument("--cn1", default=None, help="CN-Celeb_flac directory (default <src>/CN-Celeb_flac)")
    p.add_argument("--cn2", default=None, help="CN-Celeb2_flac directory (default <src>/CN-Celeb2_flac)")
    p.add_argument("--no_cn2", action="store_true", help="train on CN-Celeb1 dev only")
    p.add_argument("--enroll_mode", choices=("concat", "average"), default="concat")
    p.add_argument("--rebuild_enroll", action="store_true",
                   help="concat mode: concatenate enroll.map utterances instead of using eval/enroll/*.flac")
    p.add_argument("--combine_short", type=float, default=0.0,
                   help="also write cnceleb_train_comb with segments of at least this many seconds (0: off)")

    p = add("ffsvc", "FFSVC2020 train+dev+supplementary, FFSVC2022 dev trials", "FFSVC root (see docs/corpora.md)")
    p.add_argument("--subsets", type=_csv, default=list(ffsvc.SUBSETS))
    p.add_argument("--min_duration", type=float, default=1.0, help="drop training utterances shorter than this")
    p.add_argument("--device_label", choices=("device", "device_distance"), default="device")
    p.add_argument("--dev2022", default=None,
                   help="FFSVC2022 dev audio dir (default: the ffsvc22_dev_*.wav under --src)")
    p.add_argument("--meta", default=None, help="dev_meta_list (default: the one under --src)")
    p.add_argument("--trials", default=None, help="trials_dev_keys (default: the one under --src)")

    p = add("musan", "MUSAN noise/music/speech resources", "the musan/ directory")
    p.add_argument("--categories", type=_csv, default=list(musan.CATEGORIES))
    p.add_argument("--no_music_vocals", action="store_true", help="leave out music with vocals")

    p = add("rirs_noises", "RIRS_NOISES simulated/real RIR resources", "the RIRS_NOISES/ directory")
    p.add_argument("--sets", type=_csv, default=list(rirs_noises.SETS))

    p = sub.add_parser("check_disjoint", help="fail if a speaker is in both training and test data dirs")
    p.add_argument("--train", nargs="+", required=True)
    p.add_argument("--test", nargs="+", required=True)
    return parser


def run(args) -> None:
    out = Path(args.out) if getattr(args, "out", None) else None
    if args.corpus == "speechocean762":
        speechocean762.prepare(Path(args.src), out, args.trials, seed=args.seed)
    elif args.corpus == "voxceleb1":
        voxceleb.prepare_voxceleb1(Path(args.src), out, args.trials, args.trials_dir, args.nj)
    elif args.corpus == "voxceleb2":
        voxceleb.prepare_voxceleb2(Path(args.src), out, args.m4a, args.wav_dir, args.sample_rate, args.nj)
    elif args.corpus == "cnceleb":
        if args.src is None and args.cn1 is None:
            raise InputError(None, "give --src (holding CN-Celeb_flac/) or --cn1")
        src = Path(args.src) if args.src else None
        cn1 = Path(args.cn1) if args.cn1 else src / "CN-Celeb_flac"
        cn2 = None
        if not args.no_cn2:
            cn2 = Path(args.cn2) if args.cn2 else (src / "CN-Celeb2_flac" if src else None)
            if cn2 is None:
                raise InputError(None, "give --cn2 (or --src holding CN-Celeb2_flac/), or --no_cn2")
        cnceleb.prepare_cnceleb(out, cn1, cn2, args.enroll_mode, args.rebuild_enroll, args.combine_short, args.nj)
    elif args.corpus == "ffsvc":
        ffsvc.prepare_ffsvc(Path(args.src), out, args.subsets, args.min_duration, args.device_label,
                            args.dev2022, args.meta, args.trials, args.nj)
    elif args.corpus == "musan":
        musan.prepare_musan(Path(args.src), out, args.categories, not args.no_music_vocals, args.nj)
    elif args.corpus == "rirs_noises":
        rirs_noises.prepare_rirs(Path(args.src), out, args.sets, args.nj)
    elif args.corpus == "check_disjoint":
        train = {}
        for d in args.train:
            train.update(DataDir.load(d).utt2spk)
        for d in args.test:
            check_speakers_disjoint(train, DataDir.load(d).utt2spk, " ".join(args.train), d)
        print(f"speakers of {' '.join(args.test)} are disjoint from {' '.join(args.train)}")


@entry_point("prepare_corpus")
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
