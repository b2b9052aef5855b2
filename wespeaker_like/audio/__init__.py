"""Audio I/O (soundfile), resampling and speed perturbation."""

from wespeaker_like.audio.io import load_audio, read_wav_scp_entry, resample, speed_perturb, write_audio  # noqa: F401
