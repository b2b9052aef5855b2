#!/usr/bin/env python3
"""queue.pl: Kaldi-style job launcher; `queue.pl --help` for usage. Implementation: tools/launchers/."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from launchers import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("queue.pl"))
