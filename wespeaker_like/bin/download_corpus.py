"""Stage 0: fetch a corpus's official archives and extract them (resumable, MD5-checked).

    python -m wespeaker_like.bin.download_corpus voxceleb1 [voxceleb2 musan ...] --corpus_dir corpus [--dl_dir corpus/archives] \
        [--archives_dir /data/archives] [--base_url URL] [--checksums md5.txt] [--remove_archives]

Corpora: voxceleb1 (dev+test audio and the six trial lists), voxceleb2 (dev AAC), cnceleb
(CN-Celeb1+2 v2), musan, rirs_noises, speechocean762 (OpenSLR 101). FFSVC is distributed on request and has no download.
Archives found in ``--archives_dir`` are used in place; others are downloaded to ``--dl_dir``,
resuming partial files; a corpus already extracted (marker file), or found under ``--corpus_dir``
in the layout its archives extract to (e.g. unpacked by hand), is skipped; a partial copy stops
with what is missing. ``--checksums``
(``md5sum`` output) overrides the built-in MD5 sums, e.g. for a mirror with re-packed archives.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path

from wespeaker_like.bin._entry import ArgumentParser, entry_point
from wespeaker_like.data.corpora import DOWNLOADS
from wespeaker_like.data.corpora.download import fetch_all, read_checksums
from wespeaker_like.errors import InputError


@entry_point("download_corpus")
def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("corpora", nargs="+", choices=sorted(DOWNLOADS) + ["ffsvc"], metavar="corpus",
                        help=f"one or more of {', '.join(sorted(DOWNLOADS) + ['ffsvc'])}")
    parser.add_argument("--corpus_dir", required=True, help="where the archives are extracted")
    parser.add_argument("--dl_dir", default=None, help="where downloads go (default <corpus_dir>/archives)")
    parser.add_argument("--archives_dir", default=None, help="archives (or their parts) already on disk")
    parser.add_argument("--base_url", default=None, help="download from this URL prefix instead of the official one")
    parser.add_argument("--checksums", default=None, help="md5sum-style file overriding the built-in MD5 sums")
    parser.add_argument("--remove_archives", action="store_true", help="delete downloaded archives after extraction")
    args = parser.parse_args(argv)
    for option in ("dl_dir", "archives_dir", "base_url", "checksums"):
        setattr(args, option, getattr(args, option) or None)  # recipes pass "" for "not given"
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if "ffsvc" in args.corpora:
        raise InputError(None, "FFSVC2020/2022 are distributed on request (AISHELL, Zenodo): no public "
                         "download. Extract them by hand into the layout of docs/corpora.md and run stage 1")
    checksums = read_checksums(Path(args.checksums)) if args.checksums else None
    corpus_dir = Path(args.corpus_dir)
    dl_dir = Path(args.dl_dir) if args.dl_dir else corpus_dir / "archives"
    archives_dir = Path(args.archives_dir) if args.archives_dir else None
    for corpus in args.corpora:
        archives, base_url = DOWNLOADS[corpus]
        if args.base_url:
            archives = [dataclasses.replace(a, url_dir=None) for a in archives]
            base_url = args.base_url
        for dest in fetch_all(archives, corpus_dir, dl_dir, archives_dir, base_url, checksums,
                              keep=not args.remove_archives):
            logging.getLogger("download").info("ready: %s", dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
