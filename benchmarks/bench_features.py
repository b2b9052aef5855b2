#!/usr/bin/env python3
"""Stage 3 (decode + fbank + ark write) in CPU seconds per hour of audio, WAV and Opus side by side.

Reads the Opus and 16 kHz WAV copies of the same speechocean762 utterances that ``bench_loader.py``
prepares (``--work_dir``, default ``/tmp/bench_loader``; run ``bench_loader.py`` once to make them),
and does what a ``make_features`` job does per utterance, on one thread, timing each part with the
process CPU clock: ``AudioSource.read`` (decode), ``FrontEnd.features`` (80-d Kaldi fbank) and
``ArkScpWriter.write`` (ark + scp); for comparison it also times ``torchaudio.compliance.kaldi.fbank``
on the same samples (not part of the stage). The formats alternate ``--rounds`` times and the medians are
printed. On 2 cores, 2 jobs take half the CPU seconds in wall time when the cores are free, so the
stage's seconds per hour of audio on 2 cores is the total divided by 2.

    python3 benchmarks/bench_features.py --rounds 3
"""

import os

os.environ["OMP_NUM_THREADS"] = "1"  # one thread per job, as stage 3 runs

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from wespeaker_like.audio.source import AudioSource  # noqa: E402
from wespeaker_like.data.kaldi_dir import DataDir  # noqa: E402
from wespeaker_like.features.ark import ArkScpWriter  # noqa: E402
from wespeaker_like.features.frontends import build_frontend  # noqa: E402


def one_pass(data_dir: Path, utts, frontend) -> dict:
    """CPU seconds of decode / fbank / write over ``utts``, and the audio seconds."""
    audio = AudioSource.from_data_dir(data_dir, frontend.sample_rate)
    import torchaudio.compliance.kaldi as kaldi

    parts = {"decode": 0.0, "fbank": 0.0, "write": 0.0, "torchaudio": 0.0}
    audio_seconds = 0.0
    with tempfile.TemporaryDirectory() as tmp, ArkScpWriter(Path(tmp) / "f.ark", Path(tmp) / "f.scp") as writer:
        for utt in utts:
            c0 = time.process_time()
            samples = audio.read(utt)
            c1 = time.process_time()
            feats = frontend.features(samples).numpy()
            c2 = time.process_time()
            writer.write(utt, feats)
            c3 = time.process_time()
            wave = torch.from_numpy(samples).float()[None] * (1 << 15)
            c4 = time.process_time()
            kaldi.fbank(wave, num_mel_bins=80, dither=0.0, energy_floor=0.0, sample_frequency=frontend.sample_rate)
            parts["torchaudio"] += time.process_time() - c4
            parts["decode"] += c1 - c0
            parts["fbank"] += c2 - c1
            parts["write"] += c3 - c2
            audio_seconds += samples.shape[0] / frontend.sample_rate
    return {name: seconds * 3600 / audio_seconds for name, seconds in parts.items()} | {"hours": audio_seconds / 3600}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work_dir", type=Path, default=Path("/tmp/bench_loader"))
    p.add_argument("--n_utts", type=int, default=300)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(1)
    frontend = build_frontend({"type": "fbank", "num_mel_bins": 80})
    dirs = {fmt: args.work_dir / fmt for fmt in ("wav", "opus")}
    for path in dirs.values():
        if not (path / "wav.scp").is_file():
            raise SystemExit(f"{path}/wav.scp missing: run benchmarks/bench_loader.py once to prepare it")
    utts = DataDir.load(dirs["wav"]).utts[: args.n_utts]
    print("# load average at start: %.2f %.2f %.2f" % os.getloadavg())
    runs = {fmt: [] for fmt in dirs}
    for _ in range(args.rounds):
        for fmt, path in dirs.items():
            runs[fmt].append(one_pass(path, utts, frontend))
    print(f"# {len(utts)} utterances, {runs['wav'][0]['hours'] * 60:.1f} min of audio; CPU s per hour of audio, "
          f"one thread, median of {args.rounds} alternating rounds")
    print("| audio | decode | fbank | ark write | total (1 core) | 2 jobs on 2 free cores "
          "| torchaudio's Kaldi fbank, same audio |")
    print("|---|---|---|---|---|---|---|")
    for fmt, results in runs.items():
        med = {k: statistics.median(r[k] for r in results) for k in ("decode", "fbank", "write", "torchaudio")}
        total = statistics.median(sum(r[k] for k in ("decode", "fbank", "write")) for r in results)
        print(f"| {fmt} | {med['decode']:.2f} | {med['fbank']:.2f} | {med['write']:.2f} | {total:.2f} | "
              f"{total / 2:.2f} | {med['torchaudio']:.2f} |")
    print("# load average at end: %.2f %.2f %.2f" % os.getloadavg())
    return 0


if __name__ == "__main__":
    sys.exit(main())
