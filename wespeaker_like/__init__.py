"""wespeaker_like: a Kaldi-style speaker-verification toolkit (one package, numbered recipes)."""

__version__ = "0.1.0"
