"""wespeaker_like: a Kaldi-style speaker-verification toolkit (one package, numbered recipes).

``wespeaker_like.load_model(exp_dir_or_exported_file)`` gives a ready-to-use speaker model
(``wespeaker_like.inference``); it is imported on first use so that ``import wespeaker_like`` stays light.
"""

__version__ = "0.1.0"


def __getattr__(name):
    if name == "load_model":
        from wespeaker_like.inference import load_model

        return load_model
    raise AttributeError(f"module 'wespeaker_like' has no attribute '{name}'")
