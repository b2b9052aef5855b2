"""Import modules of an exported WeSpeaker tree in place, for the side-by-side benchmarks.

``wespeaker/__init__.py`` imports the command-line front end and its dependencies; the benchmarks
need only the model and metric modules, so the package objects are registered with their paths
and without running the ``__init__`` files. Nothing is copied: the files are read from ``root``.
"""

import importlib
import sys
import types
from pathlib import Path


def import_wespeaker(root, module: str):
    """``module`` (e.g. ``"wespeaker.models.resnet"``) from the tree at ``root``
    (the directory holding the ``wespeaker`` package)."""
    package_dir = Path(root).resolve() / "wespeaker"
    if not (package_dir / "models" / "speaker_model.py").is_file():
        raise SystemExit(f"{root}: not a WeSpeaker tree (no wespeaker/models/speaker_model.py)")
    parts = module.split(".")
    for depth in range(1, len(parts)):
        name = ".".join(parts[:depth])
        path = package_dir.joinpath(*parts[1:depth])
        known = sys.modules.get(name)
        if known is None:
            stub = types.ModuleType(name)
            stub.__path__ = [str(path)]
            sys.modules[name] = stub
        elif Path(known.__path__[0]).resolve() != path:
            raise SystemExit(f"{name} is already imported from {known.__path__[0]}, not from {path}")
    return importlib.import_module(module)
