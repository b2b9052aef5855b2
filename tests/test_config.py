"""Config loading: includes, dotted overrides, and errors that name file and line."""

import pytest

from wespeaker_like.training.schema import load_experiment_config as load_train_config
from wespeaker_like.errors import InputError
from wespeaker_like.training.config import load_config

BASE = """\
seed: 1
model:
  name: ecapa_tdnn
  channels: 64
  embed_dim: 32
objective:
  name: classification
  num_frames: 100
  loss: {name: aam, margin: 0.2, scale: 32}
optim: {name: sgd, lr: 0.1, momentum: 0.9}
scheduler: {name: warmup_exponential, final_lr: 0.001}
trainer: {epochs: 3}
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_include_and_override_merge(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    exp = write(tmp_path, "exp.yaml", "include: base.yaml\noptim:\n  lr: 0.05\n")
    cfg = load_train_config(exp, ["trainer.epochs=7", "model.channels=[64, 64, 64, 64, 192]"])
    assert cfg["optim"] == {"name": "sgd", "lr": 0.05, "momentum": 0.9}
    assert cfg["trainer"]["epochs"] == 7 and cfg["trainer"]["grad_clip"] == 0.0  # default kept
    assert cfg["model"]["channels"] == [64, 64, 64, 64, 192]
    assert cfg.where("optim.lr") == f"{exp}:3"
    assert cfg.where("optim.momentum") == f"{tmp_path / 'base.yaml'}:10"


def test_sections_are_not_aliased(tmp_path):
    cfg = load_train_config(write(tmp_path, "c.yaml", BASE), [])
    assert cfg["model"]["name"] == "ecapa_tdnn" and cfg["scheduler"]["name"] == "warmup_exponential"


@pytest.mark.parametrize("text, line, key", [
    (BASE.replace("trainer: {epochs: 3}", "trainer:\n  epochs: 3\n  epochz: 4"), 14, "trainer.epochz"),
    (BASE + "optimiser: {}\n", 13, "optimiser"),
    (BASE.replace("  embed_dim: 32", "  embed_dims: 32"), 5, "model.embed_dims"),
    (BASE.replace("scale: 32}", "scal: 32}"), 9, "objective.loss.scal"),
    (BASE.replace("momentum: 0.9}", "momentun: 0.9}"), 10, "optim.momentun"),
    (BASE.replace("name: ecapa_tdnn", "name: ecapa"), 3, "model.name"),
])
def test_unknown_key_names_file_and_line(tmp_path, text, line, key):
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(InputError) as err:
        load_train_config(path, [])
    assert f"{path}:{line}" in str(err.value) and key in str(err.value)


def test_unknown_override_names_the_option(tmp_path):
    path = write(tmp_path, "c.yaml", BASE)
    with pytest.raises(InputError, match=r"--set:2: 'trainer.epoch'"):
        load_train_config(path, ["seed=3", "trainer.epoch=2"])


def test_invalid_yaml_and_missing_include(tmp_path):
    with pytest.raises(InputError, match=r"bad.yaml:3: invalid YAML: .*on line 2"):
        load_config(write(tmp_path, "bad.yaml", "a: 1\nb: [1, 2\n"))
    with pytest.raises(InputError, match="nothere.yaml: config file not found"):
        load_config(write(tmp_path, "inc.yaml", "include: nothere.yaml\n"))
