"""Stage 2: reverb / noise / music / babble copies of a data dir (Kaldi-style, offline).

    python -m wespeaker_like.bin.augment_data_dir --src data/train --out data/train_aug \\
        --audio_dir exp/aug_audio --rirs data/rirs --noise data/noise_res/noise \\
        --music data/noise_res/music --babble_from data/train \\
        --types reverb,noise,music,babble --seed 0 --sample_rate 16000 --nj 4 \\
        [--num_utts N] [--max_copies_per_utt K] [--combined_out data/train_combined]

Each utterance <utt> gets <utt>-<type> (same speaker, utt2uniq -> <utt>) as 16-bit FLAC in
<audio_dir>/<type>/<spk>/. Existing audio is kept, so a rerun finishes a killed run.
To spread the audio over a launcher, run ``--job JOB --num_jobs N`` per job (audio only), then
the same command once without --job to write the data dir. See wespeaker_like.augment.offline.
"""

from __future__ import annotations

import logging
import sys
import time

from wespeaker_like.augment.augmenter import AUG_TYPES, AugmentConfig
from wespeaker_like.augment.offline import augment_data_dir
from wespeaker_like.bin._entry import ArgumentParser, entry_point

log = logging.getLogger("augment_data_dir")


def _range(parser, text: str, option: str, kind=float):
    try:
        low, high = (kind(v) for v in text.split(":"))
    except ValueError:
        parser.error(f"{option} expects 'low:high', got '{text}'")
    if low > high:
        parser.error(f"{option}: low {low} is above high {high}")
    return low, high


@entry_point("augment_data_dir")
def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--src", required=True, help="clean Kaldi data dir")
    parser.add_argument("--out", required=True, help="data dir of the copies")
    parser.add_argument("--audio_dir", required=True, help="where the FLAC files go")
    parser.add_argument("--types", default=",".join(AUG_TYPES), help="comma list of reverb,noise,music,babble")
    parser.add_argument("--rirs", help="RIR resource dir (for reverb)")
    parser.add_argument("--noise", help="noise resource dir")
    parser.add_argument("--music", help="music resource dir")
    parser.add_argument("--babble_from", help="speech resource dir or data dir (its utt2spk keeps "
                                              "babble to other speakers)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample_rate", type=int, default=16000)
    parser.add_argument("--nj", type=int, default=1, help="local worker processes")
    parser.add_argument("--job", type=int, help="1-based job of --num_jobs: write only this share of the audio")
    parser.add_argument("--num_jobs", type=int, help="number of --job shares")
    parser.add_argument("--max_copies_per_utt", type=int, help="keep this many random types per utterance")
    parser.add_argument("--num_utts", type=int, help="keep this many random copies in all")
    parser.add_argument("--combined_out", help="also write clean + copies here")
    parser.add_argument("--noise_snrs", default="0:15", help="SNR range (dB) for noise")
    parser.add_argument("--music_snrs", default="5:15", help="SNR range (dB) for music")
    parser.add_argument("--babble_snrs", default="13:20", help="SNR range (dB) for babble")
    parser.add_argument("--num_babble", default="3:7", help="talkers per babble (inclusive range)")
    args = parser.parse_args(argv)
    if (args.job is None) != (args.num_jobs is None):
        parser.error("--job and --num_jobs go together")
    if args.job is not None and not 1 <= args.job <= args.num_jobs:
        parser.error("--job must be in 1..--num_jobs")
    unknown = [t for t in args.types.split(",") if t not in AUG_TYPES]
    if unknown:
        parser.error(f"--types: unknown type '{unknown[0]}' (expected some of {','.join(AUG_TYPES)})")
    for name in ("nj", "num_utts", "max_copies_per_utt"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be >= 1")
    config = AugmentConfig(noise_snr=_range(parser, args.noise_snrs, "--noise_snrs"),
                           music_snr=_range(parser, args.music_snrs, "--music_snrs"),
                           babble_snr=_range(parser, args.babble_snrs, "--babble_snrs"),
                           num_babble=_range(parser, args.num_babble, "--num_babble", int))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    start = time.time()
    result = augment_data_dir(args.src, args.out, args.audio_dir, args.types.split(","), rirs=args.rirs,
                              noise=args.noise, music=args.music, babble_from=args.babble_from,
                              seed=args.seed, sample_rate=args.sample_rate, nj=args.nj, job=args.job,
                              num_jobs=args.num_jobs, max_copies_per_utt=args.max_copies_per_utt,
                              num_utts=args.num_utts, combined_out=args.combined_out, config=config)
    if result is not None:
        log.info("%s: %d utterances (%.1f s)", args.out, len(result.utts), time.time() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
