"""Stage 2: ``noise`` and ``music`` resource dirs from a folder of recordings.

    python -m wespeaker_like.bin.make_noise_resources --src_dir ../shared/data/noise --out_dir data/noise_res

expects ``<src_dir>/noise/*.flac`` and ``<src_dir>/music/*.flac`` (or .wav/.ogg/.opus; any sample
rate, any length) and writes ``<out_dir>/noise`` and ``<out_dir>/music`` with ``wav.scp``
(absolute paths) and ``utt2dur``. Audio is not copied; it is resampled and cut at use time.
"""

from __future__ import annotations

import logging
import sys

from wespeaker_like.augment.resources import make_noise_resources
from wespeaker_like.bin._entry import ArgumentParser, entry_point

log = logging.getLogger("make_noise_resources")


@entry_point("make_noise_resources")
def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--src_dir", required=True, help="folder with one sub-folder per category")
    parser.add_argument("--out_dir", required=True, help="where the resource dirs go")
    parser.add_argument("--categories", default="noise,music", help="sub-folders to turn into resource dirs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    made = make_noise_resources(args.src_dir, args.out_dir, args.categories.split(","))
    for category, path in made.items():
        log.info("%s resource dir: %s", category, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
