"""Room impulse responses: simulate a Kaldi-like set with pyroomacoustics, and reverberate speech.

Simulation (``simulate_rirs``) follows the recipe of Kaldi's simulated RIR set: shoebox rooms whose
length and width are drawn from a room-type range (small 1-10 m, medium 10-30 m, large 30-50 m),
height 2-5 m, RT60 drawn from U(0.2, 0.9) s and turned into a wall absorption with Sabine's
formula (``pra.inverse_sabine``), source and microphone at random positions at least 0.5 m (or a
quarter of the room size, if smaller) from the walls.

The full image-source model needs up to a few hundred reflection orders for a small, reverberant
room (seconds to minutes per RIR), so each RIR is a *hybrid*: the image-source model up to order
``ism_order`` (10 by default; exact early reflections) and, after the time ``t_mix`` up to which
that order is complete, a Gaussian tail whose energy decays by 60 dB per RT60, level-matched to
the image-source response just before ``t_mix``. The RIR starts just before the direct sound
(the time of flight is dropped), is cut where the tail is 60 dB down (at most ``max_seconds``
after the direct sound), peak-normalised and written as 24-bit FLAC (about -144 dB quantisation;
deterministic bytes, unlike float WAV whose PEAK chunk holds a time stamp), one file per RIR.
The tail is white (no frequency-dependent decay); RT60 measured on the output matches the target.

Each room's random draws depend only on (seed, room index) and each RIR's positions only on
(seed, room index, rir index), so a rerun skips existing files and a resumed run writes exactly
what an uninterrupted one would.

Output (a resource dir, see ``augment.resources``)::

    <out>/wav/<room>-<k>.flac   e.g. room0007-01.flac
    <out>/wav.scp               room0007-01 /abs/path/room0007-01.flac
    <out>/utt2dur
    <out>/rir_info              room0007-01 type=small dims=4.21x3.10x2.64 rt60=0.53 src=... mic=...
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import scipy.fft
import soundfile

from wespeaker_like.audio.io import write_audio

log = logging.getLogger(__name__)

ROOM_TYPES: Dict[str, Tuple[float, float]] = {"small": (1.0, 10.0), "medium": (10.0, 30.0), "large": (30.0, 50.0)}
HEIGHT_RANGE = (2.0, 5.0)
SOUND_SPEED = 343.0


def rng_for(seed: int, *keys: object) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``keys`` (stable across runs and processes)."""
    text = "\x1f".join([str(seed), *(str(k) for k in keys)])
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return np.random.default_rng(np.frombuffer(digest[:16], dtype=np.uint32))


@dataclass(frozen=True)
class Room:
    """One simulated room: dimensions (m), target RT60 (s) and the Sabine wall absorption."""

    room_type: str
    dims: Tuple[float, float, float]
    rt60: float
    absorption: float
    sabine_order: int  # the order the full image-source model would need


def draw_room(rng: np.random.Generator, room_type: str = "small",
              rt60_range: Tuple[float, float] = (0.2, 0.9)) -> Room:
    """Random shoebox room of ``room_type``; RT60s a room cannot reach (too big) are redrawn."""
    import pyroomacoustics as pra

    if room_type not in ROOM_TYPES:
        raise ValueError(f"unknown room type '{room_type}' (expected one of {', '.join(ROOM_TYPES)})")
    low, high = ROOM_TYPES[room_type]
    for _ in range(1000):
        dims = (float(rng.uniform(low, high)), float(rng.uniform(low, high)), float(rng.uniform(*HEIGHT_RANGE)))
        rt60 = float(rng.uniform(*rt60_range))
        try:
            absorption, order = pra.inverse_sabine(rt60, list(dims))
        except ValueError:  # needs absorption > 1: room too large for such a short RT60
            continue
        return Room(room_type, dims, rt60, float(absorption), int(order))
    raise ValueError(f"no {room_type} room reaches an RT60 in {rt60_range}")


def draw_position(rng: np.random.Generator, dims: Sequence[float]) -> np.ndarray:
    """A point (3,) inside the room, at least min(0.5 m, size/4) from every wall."""
    margins = [min(0.5, d / 4) for d in dims]
    return np.array([rng.uniform(m, d - m) for m, d in zip(margins, dims)])


def simulate_rir(room: Room, source: np.ndarray, mic: np.ndarray, rng: np.random.Generator,
                 sample_rate: int = 16000, ism_order: int = 10, max_seconds: float = 1.2) -> np.ndarray:
    """Hybrid RIR (image sources + decaying Gaussian tail) -> (L,) float32, peak-normalised.

    ``rng`` draws the tail noise. L <= max_seconds * sample_rate.
    """
    import pyroomacoustics as pra

    order = min(room.sabine_order, ism_order)
    shoebox = pra.ShoeBox(list(room.dims), fs=sample_rate, materials=pra.Material(room.absorption),
                          max_order=order)
    shoebox.add_source(list(source))
    shoebox.add_microphone(np.asarray(mic, dtype=float).reshape(3, 1))
    shoebox.compute_rir()
    ism = np.asarray(shoebox.rir[0][0], dtype=np.float64)
    # pyroomacoustics delays everything by half its fractional-delay filter.
    delay = pra.constants.get("frac_delay_length") // 2
    direct = int(round(np.linalg.norm(np.asarray(source) - np.asarray(mic)) / SOUND_SPEED * sample_rate)) + delay
    max_len = direct - delay + int(max_seconds * sample_rate)  # counted from the direct sound
    decay_len = int(math.ceil(room.rt60 * sample_rate))
    if order >= room.sabine_order:
        rir = ism[:min(len(ism), direct + decay_len, max_len)]
    else:
        # Image sources of total order <= K cover every reflection path shorter than
        # K / sqrt(sum 1/L_i^2) metres (the sphere inside the order-K octahedron of images).
        complete = order / math.sqrt(sum(1.0 / d ** 2 for d in room.dims))
        mix = min(int(complete / SOUND_SPEED * sample_rate) + delay, len(ism))
        window = max(min(int(0.010 * sample_rate), (mix - direct) // 2), 16)
        start = max(mix - window, 0)
        level = np.mean(ism[start:mix] ** 2) if mix > start else 0.0
        centre = (start + mix) / 2.0
        length = min(max(mix, direct) + decay_len, max_len)
        rir = np.zeros(length)
        rir[:mix] = ism[:mix]
        t = np.arange(mix, length)
        envelope = np.sqrt(level * 10.0 ** (-6.0 * (t - centre) / (room.rt60 * sample_rate)))
        rir[mix:] = rng.standard_normal(length - mix) * envelope
    rir = rir[max(direct - delay, 0):]  # drop the silent time of flight; keep the filter's lead-in
    peak = np.max(np.abs(rir))
    if peak <= 0:
        raise RuntimeError(f"simulated RIR is silent (room {room}, source {source}, mic {mic})")
    return (rir / peak).astype(np.float32)


# Bound of a reverberation spectrum cache (RIRs x FFT sizes; training crops have few sizes).
MAX_CACHED_SPECTRA = 4096


def reverberate(speech: np.ndarray, rir: np.ndarray, spectra: Optional[dict] = None, key: object = None) -> np.ndarray:
    """Convolve (N,) speech with an energy-normalised RIR (L,) -> (N,) float32.

    As Kaldi's ``wav-reverberate --shift-output --normalize-output``: the output is shifted so the
    direct path lines up with the input (shift = first RIR sample reaching half the RIR's peak
    magnitude: the direct path, even where later coherent reflections are stronger), truncated to
    the input length, and rescaled to the input's mean *power* (not its peak).

    FFT convolution in float32. ``spectra`` (a dict the caller keeps) with a ``key`` naming the RIR
    caches the RIR's spectrum per FFT size, so on-the-fly reverberation of equal-length crops
    transforms each RIR once.
    """
    cached = spectra.get(key) if spectra is not None else None
    if cached is None:
        h = np.asarray(rir, dtype=np.float64)
        energy = np.sum(h * h)
        if energy <= 0:
            raise ValueError("RIR is all zeros")
        h = (h / np.sqrt(energy)).astype(np.float32)
        magnitude = np.abs(h)
        cached = {"h": h, "shift": int(np.argmax(magnitude >= 0.5 * magnitude.max()))}
        if spectra is not None:
            if len(spectra) >= MAX_CACHED_SPECTRA:
                spectra.clear()
            spectra[key] = cached
    h, shift = cached["h"], cached["shift"]
    x = np.asarray(speech, dtype=np.float32)
    n = x.shape[0]
    size = scipy.fft.next_fast_len(n + h.shape[0] - 1, real=True)
    if size not in cached:
        cached[size] = scipy.fft.rfft(h, size)
    y = scipy.fft.irfft(scipy.fft.rfft(x, size) * cached[size], size)[shift:shift + n]
    if y.shape[0] < n:
        y = np.pad(y, (0, n - y.shape[0]))
    power_in, power_out = np.mean(np.square(x, dtype=np.float64)), np.mean(np.square(y, dtype=np.float64))
    if power_out > 0:
        y = y * np.float32(np.sqrt(power_in / power_out))
    return y.astype(np.float32, copy=False)


def rir_id(room_index: int, rir_index: int) -> str:
    """``room0007-01`` for room 7 (1-based), RIR 1."""
    return f"room{room_index:04d}-{rir_index:02d}"


def simulate_rirs(out_dir: str | Path, num_rooms: int = 200, rirs_per_room: int = 1, seed: int = 0,
                  sample_rate: int = 16000, room_types: Sequence[str] = ("small", "medium"),
                  rt60_range: Tuple[float, float] = (0.2, 0.9), ism_order: int = 10,
                  max_seconds: float = 1.2) -> Dict[str, int]:
    """Simulate ``num_rooms`` x ``rirs_per_room`` RIRs into a resource dir; skip existing ones.

    Room i (1-based) has type ``room_types[(i-1) % len(room_types)]``. Returns counts
    ``{"written": ..., "skipped": ...}``. Writes wav files atomically, then wav.scp/utt2dur/rir_info.
    """
    import pyroomacoustics as pra

    from wespeaker_like.augment.resources import write_resource_dir

    if num_rooms < 1 or rirs_per_room < 1:
        raise ValueError("num_rooms and rirs_per_room must be >= 1")
    for room_type in room_types:
        if room_type not in ROOM_TYPES:
            raise ValueError(f"unknown room type '{room_type}' (expected one of {', '.join(ROOM_TYPES)})")
    pra.constants.set("num_threads", 1)
    out_dir = Path(out_dir).resolve()
    wav_dir = out_dir / "wav"
    wav_dir.mkdir(parents=True, exist_ok=True)
    wavs, durations, info = {}, {}, {}
    counts = {"written": 0, "skipped": 0}
    for room_index in range(1, num_rooms + 1):
        room_type = room_types[(room_index - 1) % len(room_types)]
        room = draw_room(rng_for(seed, "room", room_index), room_type, rt60_range)
        for rir_index in range(1, rirs_per_room + 1):
            key = rir_id(room_index, rir_index)
            path = wav_dir / f"{key}.flac"
            rng = rng_for(seed, "rir", room_index, rir_index)
            source, mic = draw_position(rng, room.dims), draw_position(rng, room.dims)
            if path.is_file():
                frames = soundfile.info(str(path)).frames
                counts["skipped"] += 1
            else:
                rir = simulate_rir(room, source, mic, rng, sample_rate, ism_order, max_seconds)
                write_audio(path, rir, sample_rate, subtype="PCM_24")
                frames = rir.shape[0]
                counts["written"] += 1
            wavs[key] = str(path)
            durations[key] = frames / sample_rate
            info[key] = (f"type={room.room_type} dims={'x'.join(f'{d:.2f}' for d in room.dims)} "
                         f"rt60={room.rt60:.2f} absorption={room.absorption:.3f} "
                         f"src={','.join(f'{v:.2f}' for v in source)} mic={','.join(f'{v:.2f}' for v in mic)}")
    write_resource_dir(out_dir, wavs, durations, extra={"rir_info": info})
    log.info("RIRs in %s: %d written, %d already there", out_dir, counts["written"], counts["skipped"])
    return counts
