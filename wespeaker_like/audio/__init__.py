"""Audio I/O (soundfile), resampling, speed perturbation and per-utterance reading of a data dir."""

from wespeaker_like.audio.io import load_audio, read_wav_scp_entry, resample, speed_perturb, write_audio  # noqa: F401
from wespeaker_like.audio.source import AudioSource  # noqa: F401
