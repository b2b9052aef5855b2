"""Outputs of one job of a split stage, named by a fingerprint of everything that decides them.

A job of stage 3 (features, packed audio) or stage 5 (embeddings) writes ``<name>.<job>.<fingerprint>.*``
where the fingerprint hashes its ``inputs`` (settings, the audio or feature entries of its share, the
model). So a finished job is skipped only when its inputs are unchanged; a change (a config key, a
wav.scp entry, another ``nj`` split, a retrained model) gets new file names and never overwrites files
that an existing merged scp points into. The merge removes what no current job refers to.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any, Dict, Iterable, Optional

from wespeaker_like.fileio import atomic_write

log = logging.getLogger("jobs")
_SUFFIXES = ("ark", "scp", "utt2num_frames", "bad_utts", "inputs.json")


class KeyedJob:
    """Job ``job`` of a stage writing ``name`` outputs into ``out_dir``; ``inputs`` is JSON-able."""

    def __init__(self, out_dir: Path, name: str, job: int, inputs: Dict[str, Any]):
        self.out_dir, self.name, self.job, self.inputs = Path(out_dir), name, job, inputs
        digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:12]
        self.stem = f"{name}.{job}.{digest}"

    def path(self, suffix: str) -> Path:
        """``out_dir/<name>.<job>.<fingerprint>.<suffix>``; suffix one of ark, scp, utt2num_frames, ..."""
        return self.out_dir / f"{self.stem}.{suffix}"

    def record_inputs(self) -> None:
        """Write the inputs beside the outputs, so a later change can be explained."""
        with atomic_write(self.path("inputs.json")) as handle:
            json.dump(self.inputs, handle, indent=0)

    def why_changed(self) -> Optional[str]:
        """What differs from the recorded inputs of other outputs of this job number, or None."""
        reasons = []
        own = self.path("inputs.json")
        for record in sorted(self.out_dir.glob(f"{self.name}.{self.job}.*.inputs.json")):
            if record == own:
                continue
            try:
                old = json.loads(record.read_text())
            except (OSError, ValueError):
                continue
            reasons.append(_difference(old, self.inputs))
        return "; ".join(reason for reason in reasons if reason) or None

    def remove_stale_temporaries(self) -> None:
        """Temporary files left by killed runs of this job number (``.<name>.<job>.*.tmp*``)."""
        if not self.out_dir.is_dir():
            return
        for tmp in self.out_dir.glob(f".{self.name}.{self.job}.*.tmp*"):
            log.info("job %d: removing %s left by a killed run", self.job, tmp)
            tmp.unlink(missing_ok=True)


def _difference(old: Dict[str, Any], new: Dict[str, Any]) -> str:
    """Short description of how two input records differ (first differing part)."""
    for part in sorted(set(old) | set(new)):
        was, now = old.get(part), new.get(part)
        if was == now:
            continue
        if isinstance(was, dict) and isinstance(now, dict):
            keys = sorted(k for k in set(was) | set(now) if was.get(k) != now.get(k))
            return f"{part} changed: {', '.join(keys)}"
        if isinstance(was, list) and isinstance(now, list):
            first = next((f"'{n}' was '{w}'" for n, w in zip(now, was) if n != w),
                         f"{len(was)} -> {len(now)} entries")
            return f"{part} changed (wav.scp, segments, feats.scp or the job split; first: {first})"
        return f"{part} changed"
    return ""


def remove_unreferenced(out_dir: Path, name: str, keep: Iterable[KeyedJob]) -> None:
    """Delete ``<name>.<job>.<fingerprint>.*`` outputs no job in ``keep`` owns (older settings or
    splits); call it after writing the merged scp that replaces the one pointing into them."""
    stems = {job.stem for job in keep}
    pattern = re.compile(rf"^({re.escape(name)}\.\d+\.[0-9a-f]{{12}})\.({'|'.join(map(re.escape, _SUFFIXES))})$")
    for path in Path(out_dir).iterdir():
        match = pattern.match(path.name)
        if match and match[1] not in stems:
            path.unlink()
