"""Stage 2: speed-perturbed copies of a data dir, as new speakers.

    python -m wespeaker_like.bin.speed_perturb_data_dir --src data/train --out data/train_sp \\
        --audio_dir exp/sp_audio --factors 0.9,1.1 [--nj 4] [--combined_out data/train_sp_combined]

Each utterance <utt> of speaker <spk> gets sp<f>-<utt> of speaker sp<f>-<spk> (utt2uniq -> <utt>),
resampled so tempo and pitch change together (length N/f), as 16-bit FLAC in
<audio_dir>/sp<f>/sp<f>-<spk>/. Existing audio is kept, so a rerun finishes a killed run.
``--job JOB --num_jobs N`` writes one share of the audio only; a final call without --job
writes the data dir.
"""

from __future__ import annotations

import logging
import sys
import time

from wespeaker_like.augment.offline import speed_perturb_data_dir
from wespeaker_like.bin._entry import ArgumentParser, entry_point

log = logging.getLogger("speed_perturb_data_dir")


@entry_point("speed_perturb_data_dir")
def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--src", required=True, help="clean Kaldi data dir")
    parser.add_argument("--out", required=True, help="data dir of the copies")
    parser.add_argument("--audio_dir", required=True, help="where the FLAC files go")
    parser.add_argument("--factors", default="0.9,1.1", help="comma list of speed factors (not 1.0)")
    parser.add_argument("--sample_rate", type=int, default=16000)
    parser.add_argument("--nj", type=int, default=1, help="local worker processes")
    parser.add_argument("--job", type=int, help="1-based job of --num_jobs: write only this share of the audio")
    parser.add_argument("--num_jobs", type=int, help="number of --job shares")
    parser.add_argument("--combined_out", help="also write originals + copies here")
    args = parser.parse_args(argv)
    if (args.job is None) != (args.num_jobs is None):
        parser.error("--job and --num_jobs go together")
    if args.job is not None and not 1 <= args.job <= args.num_jobs:
        parser.error("--job must be in 1..--num_jobs")
    if args.nj < 1:
        parser.error("--nj must be >= 1")
    try:
        factors = [float(f) for f in args.factors.split(",")]
    except ValueError:
        parser.error(f"--factors expects numbers like 0.9,1.1, got '{args.factors}'")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    start = time.time()
    result = speed_perturb_data_dir(args.src, args.out, args.audio_dir, factors, args.sample_rate,
                                    nj=args.nj, job=args.job, num_jobs=args.num_jobs,
                                    combined_out=args.combined_out)
    if result is not None:
        log.info("%s: %d utterances (%.1f s)", args.out, len(result.utts), time.time() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
