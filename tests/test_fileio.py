"""Atomic writes: content appears only on success, with the permissions a plain open would give."""

import os
import stat

import pytest

from wespeaker_like.fileio import atomic_path, atomic_write, current_umask


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    saved = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(saved)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_atomic_files_and_their_dirs_honour_the_umask(tmp_path, umask, mask, file_mode, dir_mode):
    umask(mask)
    assert current_umask() == mask
    with atomic_write(tmp_path / "new" / "utt2spk") as handle:
        handle.write("u1 s1\n")
    with atomic_path(tmp_path / "models" / "final_model.pt") as tmp:
        tmp.write_bytes(b"model")
    assert (tmp_path / "new" / "utt2spk").read_text() == "u1 s1\n"
    assert _mode(tmp_path / "new" / "utt2spk") == file_mode
    assert _mode(tmp_path / "models" / "final_model.pt") == file_mode
    assert _mode(tmp_path / "new") == dir_mode
    assert _mode(tmp_path / "models") == dir_mode


def test_failed_atomic_write_leaves_neither_target_nor_temporary(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_write(tmp_path / "feats.scp") as handle:
            handle.write("partial")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
