"""Command-line entry points, one per recipe stage: ``python -m wespeaker_like.bin.<name> --help``."""
