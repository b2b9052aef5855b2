"""Stage 3: features (or packed audio) of a data dir to ark/scp, split into jobs for a launcher.

Per job (run through ``$feat_cmd JOB=1:nj``)::

    python -m wespeaker_like.bin.make_features --data_dir data/train --feat_dir data/train/fbank \
        --job JOB --num_jobs nj [--config conf/x.yaml] [--pack data/train_packed]

then once, to write ``feats.scp`` and ``utt2num_frames`` into the data dir (or, with ``--pack``, a copy of
the data dir whose wav.scp points into Kaldi wave arks, segments applied and ``cmd |`` pipes decoded)::

    python -m wespeaker_like.bin.make_features --data_dir data/train --feat_dir data/train/fbank --num_jobs nj --merge

The audio is read through ``AudioSource`` (``segments`` honoured) and the features computed by the
front-end of the config's ``features:`` section (stored unnormalised; ``features.norm`` is applied when
they are used). Each job's outputs are named ``<type>.<job>.<fingerprint>.*``, where the fingerprint
covers the front-end settings and the job's audio entries: a finished job is skipped only when both are
unchanged, a change redoes it under a new name (saying why), and a new ``nj`` split never overwrites
files that an existing feats.scp points into. The merge removes the shards no scp refers to any more.
Temporary files of killed runs of a job are removed when the job starts again.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch

from wespeaker_like.audio.source import AudioSource
from wespeaker_like.bin._entry import ArgumentParser, entry_point
from wespeaker_like.data.kaldi_dir import DataDir, job_split, read_table, write_table
from wespeaker_like.errors import InputError
from wespeaker_like.fileio import atomic_write
from wespeaker_like.features.ark import ArkScpWriter, job_is_done, merge_job_scps
from wespeaker_like.features.frontends import FEATURE_DEFAULTS, FrontEnd, build_frontend
from wespeaker_like.features.jobs import KeyedJob, remove_unreferenced
from wespeaker_like.training.config import Config, check_keys, load_config

log = logging.getLogger("make_features")
PACKED = "wav"  # output name of packed audio shards
# Data dir files a packed copy does not take over: its wav.scp replaces them.
_NOT_PACKED = ("wav.scp", "segments", "feats.scp", "utt2num_frames", "reco2dur", "reco2file_and_channel")


def feature_config(config_path: str | None) -> FrontEnd:
    """The front-end of a config file's ``features:`` section (defaults: 80-d fbank)."""
    if not config_path:
        return build_frontend({})
    cfg = load_config(config_path)
    section = Config({"features": cfg.get("features", {})}, cfg.origins)
    check_keys(section, {"features": FEATURE_DEFAULTS})
    return build_frontend(section["features"], str(config_path))


def plan_job(audio: AudioSource, all_utts: List[str], feat_dir: Path, job: int, num_jobs: int,
             frontend: FrontEnd, pack: bool) -> Tuple[List[str], KeyedJob]:
    """The job's utterances and keyed outputs (fingerprint: front-end settings + audio entries)."""
    utts = job_split(all_utts, job, num_jobs)
    settings = {"sample_rate": frontend.sample_rate} if pack else \
        {key: value for key, value in frontend.cfg.items() if key != "norm"}  # norm is applied on use
    inputs = {"features": settings, "audio": [audio.describe(utt) for utt in utts]}
    return utts, KeyedJob(feat_dir, PACKED if pack else frontend.kind, job, inputs)


def load_data_dir(data_dir: Path, frontend: FrontEnd) -> Tuple[AudioSource, DataDir]:
    """The data dir and its audio; InputError for an utterance without an audio entry."""
    audio = AudioSource.from_data_dir(data_dir, frontend.sample_rate)
    data = DataDir.load(data_dir)
    for utt in data.utts:
        audio.recording(utt)
    return audio, data


def run_job(data_dir: Path, feat_dir: Path, job: int, num_jobs: int, frontend: FrontEnd, skip_bad: bool,
            pack: bool = False) -> None:
    audio, data = load_data_dir(data_dir, frontend)
    utts, plan = plan_job(audio, data.utts, feat_dir, job, num_jobs, frontend, pack)
    scp, bad_path, frames_path = plan.path("scp"), plan.path("bad_utts"), plan.path("utt2num_frames")
    plan.remove_stale_temporaries()
    # The scp is renamed into place last, so its presence means the whole job finished.
    if bad_path.is_file() and job_is_done(scp, utts, bad_path.read_text().split()):
        log.info("job %d: %s already complete with the same settings and audio, skipping", job, scp)
        return
    reason = plan.why_changed()
    if reason:
        log.warning("job %d: redoing it because %s (new outputs %s.*)", job, reason, plan.path("*"))
    frames, bad = {}, []
    with ArkScpWriter(plan.path("ark"), scp) as writer:
        for utt in utts:
            try:
                samples = audio.read(utt)
                if not pack and frontend.num_frames(samples.shape[0]) == 0:
                    raise audio.error(utt, f"audio has {samples.shape[0]} samples; expected at least "
                                           f"{frontend.window}")
            except InputError as exc:
                if not skip_bad:
                    raise
                log.warning("skipping %s: %s", utt, exc)
                bad.append(utt)
                continue
            if pack:
                writer.write_wave(utt, samples, frontend.sample_rate)
                frames[utt] = samples.shape[0]
            else:
                feats = frontend.features(samples).numpy()
                writer.write(utt, feats)
                frames[utt] = feats.shape[0]
        write_table(frames_path, frames)
        with atomic_write(bad_path) as handle:
            handle.write("".join(f"{utt}\n" for utt in bad))
        plan.record_inputs()
    log.info("job %d: wrote %d utterances to %s (%d skipped)", job, len(frames), plan.path("ark"), len(bad))


def merge(data_dir: Path, feat_dir: Path, num_jobs: int, frontend: FrontEnd, pack_dir: Optional[Path] = None) -> None:
    audio, data = load_data_dir(data_dir, frontend)
    utts = data.utts
    plans = [plan_job(audio, utts, feat_dir, job, num_jobs, frontend, pack_dir is not None)[1]
             for job in range(1, num_jobs + 1)]
    for plan in plans:
        if not plan.path("scp").is_file() and plan.why_changed():
            raise InputError(plan.path("scp"), f"job {plan.job} has no output for the current inputs "
                             f"({plan.why_changed()}); rerun the stage")
    table = merge_job_scps([plan.path("scp") for plan in plans], "feature")
    lengths: Dict[str, str] = {}
    for plan in plans:
        lengths.update(read_table(plan.path("utt2num_frames")))
    lost = [u for u in utts if u not in table]
    if lost:
        log.warning("%d utterances have no output (bad audio, see the job logs), e.g. %s; they are left out "
                    "of %s", len(lost), lost[0], pack_dir or data_dir / "feats.scp")
    if pack_dir is not None:
        packed = data.subset(table)
        for name in _NOT_PACKED:
            packed.tables.pop(name, None)
        packed.tables["wav.scp"] = table
        packed.save(pack_dir)
        log.info("%s: packed data dir with %d utterances", pack_dir, len(table))
    else:
        write_table(data_dir / "utt2num_frames", lengths)
        write_table(data_dir / "feats.scp", table)
        if lost:
            log.warning("run fix_data_dir on %s to drop the utterances without features", data_dir)
        log.info("%s: feats.scp with %d utterances", data_dir, len(table))
    remove_unreferenced(feat_dir, plans[0].name, plans)


@entry_point("make_features")
def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--data_dir", required=True, type=Path)
    parser.add_argument("--feat_dir", required=True, type=Path, help="where the ark/scp shards go")
    parser.add_argument("--num_jobs", type=int, default=1)
    parser.add_argument("--job", type=int, help="1-based job index (omit with --merge)")
    parser.add_argument("--merge", action="store_true", help="combine finished jobs into feats.scp")
    parser.add_argument("--config", help="YAML with a 'features:' section (defaults: 80-d fbank)")
    parser.add_argument("--pack", type=Path, metavar="OUT_DATA_DIR",
                        help="pack the audio (at features.sample_rate) into wave arks instead of computing "
                             "features; the merge writes OUT_DATA_DIR, a data dir whose wav.scp points into them")
    parser.add_argument("--skip_bad", action="store_true",
                        help="warn and skip unreadable/too-short audio instead of stopping")
    parser.add_argument("--num_threads", type=int, default=1, help="torch threads per job")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.num_threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    frontend = feature_config(args.config)
    if args.merge:
        merge(args.data_dir, args.feat_dir, args.num_jobs, frontend, args.pack)
    else:
        if args.job is None or not 1 <= args.job <= args.num_jobs:
            parser.error("--job must be in 1..--num_jobs")
        run_job(args.data_dir, args.feat_dir, args.job, args.num_jobs, frontend, args.skip_bad,
                args.pack is not None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
