"""``bin/train.py`` with the objective kit registered, for torchrun subprocesses in the tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import objective_kit  # noqa: E402,F401  (registers the proof objectives)
from wespeaker_like.bin import train  # noqa: E402

if __name__ == "__main__":
    sys.exit(train.main())
