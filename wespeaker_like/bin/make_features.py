"""Stage 3: features of a data dir to ark/scp, split into jobs for a launcher.

Per job (run through ``$feat_cmd JOB=1:nj``)::

    python -m wespeaker_like.bin.make_features --data_dir data/train --feat_dir data/train/fbank \
        --job JOB --num_jobs nj [--config conf/x.yaml]

then once, to write ``feats.scp`` and ``utt2num_frames`` into the data dir::

    python -m wespeaker_like.bin.make_features --data_dir data/train --feat_dir data/train/fbank --num_jobs nj --merge

A job whose scp exists and covers exactly its utterances is skipped, so rerunning a killed stage
only redoes unfinished jobs. Jobs split the C-sorted utterance list into contiguous parts.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import torch

from wespeaker_like.audio.io import load_audio
from wespeaker_like.bin._entry import ArgumentParser, entry_point
from wespeaker_like.data.kaldi_dir import DataDir, job_split, line_of, read_table, write_table
from wespeaker_like.errors import InputError
from wespeaker_like.fileio import atomic_write
from wespeaker_like.features.ark import ArkScpWriter, job_is_done, merge_job_scps
from wespeaker_like.features.kaldi_features import FEATURE_DEFAULTS, compute_features, min_samples
from wespeaker_like.training.config import Config, check_keys, load_config

log = logging.getLogger("make_features")


def feature_config(config_path: str | None) -> dict:
    if not config_path:
        return dict(FEATURE_DEFAULTS)
    cfg = load_config(config_path)
    section = Config({"features": cfg.get("features", {})}, cfg.origins)
    check_keys(section, {"features": FEATURE_DEFAULTS})
    return {**FEATURE_DEFAULTS, **section["features"]}


def run_job(data_dir: Path, feat_dir: Path, job: int, num_jobs: int, feat_cfg: dict, skip_bad: bool) -> None:
    wav_scp = data_dir / "wav.scp"
    wavs = read_table(wav_scp)
    utts = job_split(DataDir.load(data_dir).utts, job, num_jobs)
    missing = [u for u in utts if u not in wavs]
    if missing:
        raise InputError(wav_scp, f"no entry for utterance '{missing[0]}' of utt2spk (run fix_data_dir)")
    name = feat_cfg["type"]
    ark, scp = feat_dir / f"{name}.{job}.ark", feat_dir / f"{name}.{job}.scp"
    frames_path, bad_path = feat_dir / f"utt2num_frames.{job}", feat_dir / f"bad_utts.{job}"
    # The scp is renamed into place last, so its presence means the whole job finished.
    if bad_path.is_file() and job_is_done(scp, utts, bad_path.read_text().split()):
        log.info("job %d: %s already complete, skipping", job, scp)
        return
    frames, bad = {}, []
    with ArkScpWriter(ark, scp) as writer:
        for utt in utts:
            source = f"{wav_scp}:{line_of(wav_scp, utt)}"
            try:
                samples = load_audio(wavs[utt], feat_cfg["sample_rate"], source, min_samples(feat_cfg))
            except InputError as exc:
                if not skip_bad:
                    raise
                log.warning("skipping %s: %s", utt, exc)
                bad.append(utt)
                continue
            feats = compute_features(samples, feat_cfg).numpy()
            writer.write(utt, feats)
            frames[utt] = feats.shape[0]
        write_table(frames_path, frames)
        with atomic_write(bad_path) as handle:
            handle.write("".join(f"{utt}\n" for utt in bad))
    log.info("job %d: wrote %d utterances to %s (%d skipped)", job, len(frames), ark, len(bad))


def merge(data_dir: Path, feat_dir: Path, num_jobs: int, feat_type: str) -> None:
    jobs = range(1, num_jobs + 1)
    feats = merge_job_scps([feat_dir / f"{feat_type}.{job}.scp" for job in jobs], "feature")
    frames = {}
    for job in jobs:
        frames.update(read_table(feat_dir / f"utt2num_frames.{job}"))
    utts = DataDir.load(data_dir).utts
    lost = [u for u in utts if u not in feats]
    if lost:
        log.warning("%d utterances have no features (bad audio); run fix_data_dir to drop them, e.g. %s",
                    len(lost), lost[0])
    write_table(data_dir / "utt2num_frames", frames)
    write_table(data_dir / "feats.scp", feats)
    log.info("%s: feats.scp with %d utterances", data_dir, len(feats))


@entry_point("make_features")
def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--data_dir", required=True, type=Path)
    parser.add_argument("--feat_dir", required=True, type=Path, help="where the ark/scp shards go")
    parser.add_argument("--num_jobs", type=int, default=1)
    parser.add_argument("--job", type=int, help="1-based job index (omit with --merge)")
    parser.add_argument("--merge", action="store_true", help="combine finished jobs into feats.scp")
    parser.add_argument("--config", help="YAML with a 'features:' section (defaults: 80-d fbank)")
    parser.add_argument("--skip_bad", action="store_true",
                        help="warn and skip unreadable/too-short audio instead of stopping")
    parser.add_argument("--num_threads", type=int, default=1, help="torch threads per job")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.num_threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    feat_cfg = feature_config(args.config)
    if args.merge:
        merge(args.data_dir, args.feat_dir, args.num_jobs, feat_cfg["type"])
    else:
        if args.job is None or not 1 <= args.job <= args.num_jobs:
            parser.error("--job must be in 1..--num_jobs")
        run_job(args.data_dir, args.feat_dir, args.job, args.num_jobs, feat_cfg, args.skip_bad)
    return 0


if __name__ == "__main__":
    sys.exit(main())
