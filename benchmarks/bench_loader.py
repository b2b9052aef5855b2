#!/usr/bin/env python3
"""Training views per second of the data pipeline: one loader worker on one thread.

Each row builds the training dataset (``wespeaker_like.dataset.FeatureDataset``, raw-audio source)
on ``--n_utts`` utterances of the speechocean762 test set and draws samples from it in this process,
exactly as one DataLoader worker does (no model, no collation), until ``--seconds`` of CPU time are
spent. Resources are opened once and warmed up (``--warmup`` untimed samples), as in a worker that
has run for a while. Rows (``--case NAME``; default: all, in this order):

    clean_opus         one 200-frame 80-d fbank view (CMN) from the Opus files, no augmentation
    clean_wav          the same from the same audio decoded once to 16 kHz WAV
    reverb_noise_opus  the 200-frame view with reverb then noise (0-15 dB) on every view, Opus
    reverb_noise_wav   the same from WAV
    sdpn               SDPN's set from WAV: one clean 400-frame view + four 200-frame views, each with
                       its own ``sdpn`` WavAugment draw and SpecAugment (p 0.2, shared positions);
                       80-d log-mel with instance norm
    supmargin_pair     004's pair from WAV: a 300-frame fbank view (CMN) and the same crop augmented
                       with the ``3dspeaker`` profile (aug_prob 0.8)

Every row ends with the line ``views/s per core: <number>`` (views / CPU seconds of this process).
For the four rows the issue gives WeSpeaker's figure for, ``--reference`` (default on) first measures a
WeSpeaker-style loop in the same run, so the ratio holds under the same machine load: read the whole
file, a random 200-frame chunk, then (augmented rows) reverb (``scipy.signal.convolve`` with a
random energy-normalised RIR) or noise (a whole noise recording decoded, cut, added at U(0, 15) dB)
with equal probability, Kaldi fbank (``compliance.kaldi``), CMN. Note that our augmented rows apply
reverb *and* noise to every view, so they do more work than that reference.
Resources: the shared noise/music recordings (``make_noise_resources``) and ``--num_rooms``
simulated RIRs; babble for ``sdpn`` draws from the same utterances. The prepared WAV copy, resource
dirs and RIRs are kept in ``--work_dir`` and reused.

    python3 benchmarks/bench_loader.py                      # the whole table (a few minutes)
    python3 benchmarks/bench_loader.py --case clean_opus --seconds 5
"""

import os

os.environ["OMP_NUM_THREADS"] = "1"  # before torch is imported: one worker, one thread

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import soundfile  # noqa: E402
import torch  # noqa: E402

from wespeaker_like.augment import make_noise_resources, simulate_rirs  # noqa: E402
from wespeaker_like.audio.source import AudioSource  # noqa: E402
from wespeaker_like.data.kaldi_dir import DataDir  # noqa: E402
from wespeaker_like.dataset import FeatureDataset, View  # noqa: E402
from wespeaker_like.dataset.views import SpecAugment  # noqa: E402

FBANK = {"type": "fbank", "num_mel_bins": 80, "norm": "cmn"}
LOGMEL = {"type": "logmel", "num_mel_bins": 80, "n_fft": 512, "norm": "instance"}
LOCAL_MASKS = SpecAugment(prob=0.2, time_width=(0, 10), freq_width=(0, 6), group="local")
CASES = {
    "clean_opus": ("opus", FBANK, [View(200)]),
    "clean_wav": ("wav", FBANK, [View(200)]),
    "reverb_noise_opus": ("opus", FBANK, [View(200, augment="reverb_noise")]),
    "reverb_noise_wav": ("wav", FBANK, [View(200, augment="reverb_noise")]),
    "sdpn": ("wav", LOGMEL, [View(400)] + [View(200, augment="sdpn", spec_augment=LOCAL_MASKS)] * 4),
    "supmargin_pair": ("wav", FBANK, [View(300), View(300, position="same", relative_to=0, augment="3dspeaker")]),
}
# WeSpeaker's raw pipeline on this machine (issue 7), views/s per core, where the issue gives one.
REFERENCE = {"clean_opus": 121, "reverb_noise_opus": 96, "clean_wav": 648, "reverb_noise_wav": 266}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", choices=list(CASES), help="one row (default: all)")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="the shared data folder")
    p.add_argument("--work_dir", type=Path, default=Path("/tmp/bench_loader"), help="prepared inputs (reused)")
    p.add_argument("--n_utts", type=int, default=600, help="test utterances to draw from")
    p.add_argument("--num_rooms", type=int, default=20, help="simulated RIRs")
    p.add_argument("--seconds", type=float, default=15.0, help="CPU seconds to measure per row")
    p.add_argument("--warmup", type=int, default=30, help="untimed samples per row")
    p.add_argument("--reference", type=int, default=1, help="1: also time the WeSpeaker-style loop (0: skip)")
    return p.parse_args()


def prepare(args) -> dict:
    """Opus and WAV data dirs of the same utterances, noise/music resources, RIRs (kept in work_dir)."""
    work = args.work_dir
    corpus = args.data / "speechocean762"
    test = DataDir.load(corpus / "test")
    utts = test.utts[: args.n_utts]
    opus_dir, wav_dir = work / "opus", work / "wav"
    if not (opus_dir / "wav.scp").is_file():
        small = test.subset(utts)
        small.tables["wav.scp"] = {u: str((corpus / p).resolve()) for u, p in small.tables["wav.scp"].items()}
        small.save(opus_dir)
    if not (wav_dir / "wav.scp").is_file():
        source = AudioSource.from_data_dir(opus_dir, 16000)
        paths = {}
        for utt in utts:
            path = wav_dir / "audio" / f"{utt}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(str(path), source.read(utt), 16000, subtype="PCM_16")
            paths[utt] = str(path)
        copy = DataDir.load(opus_dir)
        copy.tables["wav.scp"] = paths
        copy.save(wav_dir)
    if not (work / "noise_res" / "music" / "wav.scp").is_file():
        make_noise_resources(args.data / "noise", work / "noise_res")
    if not (work / "rirs" / "wav.scp").is_file():
        simulate_rirs(work / "rirs", num_rooms=args.num_rooms, seed=0)
    return {"opus": opus_dir, "wav": wav_dir,
            "resources": {"rirs": str(work / "rirs"), "noise": str(work / "noise_res" / "noise"),
                          "music": str(work / "noise_res" / "music"), "speech": str(wav_dir)}}


def reference_rate(name: str, inputs: dict, args) -> float:
    """Views/s per core of the WeSpeaker-style loop (module docstring) on the row's audio."""
    import torchaudio.compliance.kaldi as kaldi
    from scipy import signal

    from wespeaker_like.data.kaldi_dir import read_table

    entries = list(read_table(inputs[CASES[name][0]] / "wav.scp").values())
    augment = name.startswith("reverb_noise")
    rirs = [soundfile.read(path, dtype="float32")[0] for path in read_table(Path(inputs["resources"]["rirs"]) /
                                                                           "wav.scp").values()]
    noises = list(read_table(Path(inputs["resources"]["noise"]) / "wav.scp").values())
    length = 200 * 160 + 240
    rng = np.random.default_rng(0)

    def view():
        audio = soundfile.read(entries[int(rng.integers(len(entries)))], dtype="float32")[0]
        if audio.shape[0] < length:
            audio = np.tile(audio, length // audio.shape[0] + 1)
        start = int(rng.integers(audio.shape[0] - length + 1))
        chunk = audio[start:start + length]
        if augment and rng.random() < 0.5:
            rir = rirs[int(rng.integers(len(rirs)))]
            chunk = signal.convolve(chunk, rir / np.sqrt(np.sum(rir ** 2)), mode="full")[:length]
        elif augment:
            noise = soundfile.read(noises[int(rng.integers(len(noises)))], dtype="float32")[0]
            offset = int(rng.integers(noise.shape[0] - length + 1))
            noise = noise[offset:offset + length]
            gain = np.sqrt(np.mean(chunk ** 2) / (np.mean(noise ** 2) + 1e-10) / 10 ** (rng.uniform(0, 15) / 10))
            chunk = chunk + gain * noise
        wave = torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32)).unsqueeze(0) * (1 << 15)
        feats = kaldi.fbank(wave, num_mel_bins=80, frame_length=25, frame_shift=10, dither=0.0, energy_floor=0.0,
                            sample_frequency=16000)
        return feats - feats.mean(0)

    for _ in range(args.warmup):
        view()
    views, cpu0 = 0, time.process_time()
    while time.process_time() - cpu0 < args.seconds:
        view()
        views += 1
    rate = views / (time.process_time() - cpu0)
    print(f"{name}: WeSpeaker-style loop in this run: {rate:.1f} views/s per core")
    return rate


def run_case(name: str, inputs: dict, args) -> float:
    same_run = reference_rate(name, inputs, args) if args.reference and name in REFERENCE else None
    audio, features, views = CASES[name]
    profiles = {v.augment: None for v in views if v.augment}
    augment = {"resources": inputs["resources"], "profiles": profiles} if profiles else None
    dataset = FeatureDataset(inputs[audio], views=views, features=features, augment=augment, source="audio")
    rng = np.random.default_rng(0)
    for _ in range(args.warmup):
        dataset[(int(rng.integers(len(dataset))), int(rng.integers(2**31)))]
    samples, cpu0, wall0 = 0, time.process_time(), time.perf_counter()
    while time.process_time() - cpu0 < args.seconds:
        dataset[(int(rng.integers(len(dataset))), int(rng.integers(2**31)))]
        samples += 1
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    rate = samples * len(views) / cpu
    reference = REFERENCE.get(name)
    print(f"{name}: {samples} samples x {len(views)} views in {cpu:.1f} CPU s ({wall:.1f} wall s); "
          f"{samples * len(views) / wall:.0f} views/s wall"
          + (f"; {rate / reference:.2f}x the issue's WeSpeaker figure {reference}" if reference else "")
          + (f"; {rate / same_run:.2f}x the WeSpeaker-style loop of this run" if same_run else ""))
    print(f"views/s per core: {rate:.1f}", flush=True)
    return rate


def main() -> int:
    args = parse_args()
    torch.set_num_threads(1)
    inputs = prepare(args)
    results = {name: run_case(name, inputs, args) for name in ([args.case] if args.case else CASES)}
    if len(results) > 1:
        print("\n| case | views/s per core | WeSpeaker | ratio |\n|---|---|---|---|")
        for name, rate in results.items():
            reference = REFERENCE.get(name)
            print(f"| {name} | {rate:.0f} | {reference or '-'} | {f'{rate / reference:.2f}x' if reference else '-'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
