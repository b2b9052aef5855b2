"""Matrix scp files: only '<path>:<offset>' / '<path>' values, never a shell, clear errors."""

import kaldiio
import numpy as np
import pytest

from wespeaker_like.data.scp import iter_scp, load_matrix, read_scp
from wespeaker_like.errors import InputError
from wespeaker_like.features.ark import ArkScpWriter
from wespeaker_like.scoring.cosine import load_embeddings


def _write_ark(tmp_path, table):
    with ArkScpWriter(tmp_path / "x.ark", tmp_path / "x.scp") as writer:
        for key, value in table.items():
            writer.write(key, value)
    return tmp_path / "x.scp"


@pytest.mark.parametrize("line", ["utt touch {target} |", "utt touch${{IFS}}{target}|:0", "utt |touch {target}",
                                  "utt -"])
def test_pipe_and_stdin_values_are_rejected_without_running_anything(tmp_path, line):
    target = tmp_path / "created"
    scp = tmp_path / "xvector.scp"
    good = _write_ark(tmp_path, {"a": np.ones(3)}).read_text()
    scp.write_text(good + line.format(target=target) + "\n")
    with pytest.raises(InputError, match=r"xvector\.scp:2: expected '<key> <ark path>:<byte offset>' or "
                                         r"'<key> <path>'"):
        load_embeddings(scp)
    with pytest.raises(InputError, match=r"xvector\.scp:2: "):
        read_scp(scp)
    location = line.format(target=target).split(maxsplit=1)[1]
    with pytest.raises(InputError, match=r"xvector\.scp:2: expected"):
        load_matrix(location, scp, "utt")
    assert not target.exists()


def test_offset_past_the_end_and_truncated_ark_name_the_line(tmp_path):
    rng = np.random.default_rng(0)
    table = {"a": rng.normal(size=(4, 5)), "b": rng.normal(size=(6, 5))}
    scp = _write_ark(tmp_path, table)
    ark = tmp_path / "x.ark"
    size = ark.stat().st_size
    loaded = dict(iter_scp(scp))
    assert np.allclose(loaded["b"], table["b"], atol=1e-6)

    lines = scp.read_text().splitlines()
    scp.write_text(f"a {ark}:{size + 100}\n" + lines[1] + "\n")
    with pytest.raises(InputError, match=rf"x\.scp:1: offset {size + 100} of 'a' is past the end of "
                                         rf"'.*x\.ark' \({size} bytes\)"):
        dict(iter_scp(scp))

    _write_ark(tmp_path, table)
    ark.write_bytes(ark.read_bytes()[: size - 20])
    with pytest.raises(InputError, match=r"x\.scp:2: cannot read 'b' from '.*x\.ark:\d+'"):
        dict(iter_scp(scp))


def test_bare_path_value_reads_a_single_matrix_file(tmp_path):
    matrix = np.arange(6, dtype=np.float32).reshape(2, 3)
    kaldiio.save_mat(str(tmp_path / "m.mat"), matrix)
    (tmp_path / "m.scp").write_text(f"m {tmp_path / 'm.mat'}\n")
    assert np.array_equal(load_matrix(read_scp(tmp_path / "m.scp")["m"], tmp_path / "m.scp", "m"), matrix)
