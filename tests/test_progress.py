"""Progress reports: a tqdm bar on a terminal, log lines (no carriage returns) when stderr is a file."""

import io
import logging
import sys

from tqdm import tqdm

from conftest import TINY_TRAIN_CONFIG, make_feature_data_dir
from wespeaker_like.bin import train
from wespeaker_like.progress import LogProgress, progress_bar

log = logging.getLogger("test_progress")


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_a_bar_a_file_gets_log_lines(monkeypatch, caplog):
    monkeypatch.setattr(sys, "stderr", Terminal())
    bar = progress_bar(10, "embed", 4, log)
    assert isinstance(bar, tqdm)
    bar.close()
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    caplog.set_level(logging.INFO, logger="test_progress")
    with progress_bar(10, "embed", 4, log, initial=1) as bar:
        assert isinstance(bar, LogProgress)
        for _ in range(9):
            bar.update(1)
            bar.set_postfix_str(f"n {bar.n}")
    lines = [record.getMessage() for record in caplog.records]
    assert [line.split()[1] for line in lines] == ["4/10", "8/10", "10/10"]  # every 4 steps, then the end
    assert lines[1].endswith("n 7") and "s left" in lines[0]
    caplog.clear()
    with progress_bar(10, "quiet", None, log) as bar:
        bar.update(10)
    with progress_bar(10, "off", 1, log, enabled=False) as bar:
        bar.update(10)
    assert not caplog.records
    assert sys.stderr.getvalue() == ""


def test_training_with_stderr_in_a_file_writes_no_carriage_returns(tmp_path, capfd):
    data = make_feature_data_dir(tmp_path / "data")
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_TRAIN_CONFIG)
    assert train.main(["--config", str(config), "--train_data", str(data), "--exp_dir", str(tmp_path / "exp"),
                       "--set", "trainer.epochs=1", "trainer.log_every=2"]) == 0
    err = capfd.readouterr().err
    assert "\r" not in err
    steps = [line for line in err.splitlines() if " step " in line and "epoch 1 batch" in line]
    assert steps and all(int(line.split(" step ")[1].split()[0]) % 2 == 0 for line in steps)
    assert [line for line in (tmp_path / "exp" / "train.log").read_text().splitlines() if " step " in line] \
        == [line for line in steps]
