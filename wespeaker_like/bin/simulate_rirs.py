"""Stage 2: simulate room impulse responses into a resource dir (pyroomacoustics shoebox rooms).

    python -m wespeaker_like.bin.simulate_rirs --out_dir data/rirs --num_rooms 200 \\
        --rirs_per_room 1 --seed 0 --sample_rate 16000

Writes ``<out_dir>/wav/room0001-01.flac`` ... (24-bit FLAC) and ``wav.scp``, ``utt2dur``,
``rir_info``. Existing RIR files are kept, so a rerun (or a resumed killed run) only simulates
the missing ones. See ``wespeaker_like.augment.rir`` for the room model.
"""

from __future__ import annotations

import logging
import sys
import time

from wespeaker_like.augment.rir import ROOM_TYPES, simulate_rirs
from wespeaker_like.bin._entry import ArgumentParser, entry_point

log = logging.getLogger("simulate_rirs")


@entry_point("simulate_rirs")
def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--out_dir", required=True, help="resource dir to write (e.g. data/rirs)")
    parser.add_argument("--num_rooms", type=int, default=200)
    parser.add_argument("--rirs_per_room", type=int, default=1, help="source/mic position pairs per room")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample_rate", type=int, default=16000)
    parser.add_argument("--room_types", default="small,medium",
                        help=f"comma list from {','.join(ROOM_TYPES)}; room i gets type i mod the list")
    parser.add_argument("--rt60", default="0.2:0.9", help="RT60 range in seconds, 'low:high'")
    parser.add_argument("--ism_order", type=int, default=10,
                        help="image-source order for early reflections (the late tail is statistical)")
    parser.add_argument("--max_seconds", type=float, default=1.2, help="longest RIR after the direct sound")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        low, high = (float(v) for v in args.rt60.split(":"))
    except ValueError:
        parser.error(f"--rt60 expects 'low:high' in seconds, got '{args.rt60}'")
    start = time.time()
    try:
        counts = simulate_rirs(args.out_dir, args.num_rooms, args.rirs_per_room, args.seed, args.sample_rate,
                               args.room_types.split(","), (low, high), args.ism_order, args.max_seconds)
    except ValueError as exc:  # an impossible room type / RT60 / count combination
        parser.error(str(exc))
    log.info("%s: %d RIRs written, %d kept (%.1f s)", args.out_dir, counts["written"], counts["skipped"],
             time.time() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
