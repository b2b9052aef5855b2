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


@pytest.mark.parametrize("text, overrides, where, message", [
    (BASE.replace("lr: 0.1", 'lr: "0.2"'), [], "bad.yaml:10", "'optim.lr': expected a number, got '0.2' (str)"),
    (BASE, ["optim.lr=abc"], "--set:1", "'optim.lr': expected a number, got 'abc'"),
    (BASE, ["trainer.epochs=two"], "--set:1", "'trainer.epochs': expected an integer, got 'two'"),
    (BASE, ["trainer.amp=1"], "--set:1", "'trainer.amp': expected true or false, got 1"),
    (BASE.replace("scale: 32}", "scale: thirty}"), [], "bad.yaml:9", "'objective.loss.scale': expected a number"),
])
def test_value_types_are_checked_with_file_and_line(tmp_path, text, overrides, where, message):
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(InputError) as err:
        load_train_config(path, overrides)
    assert where in str(err.value) and message in str(err.value)


def test_exponent_without_a_dot_is_a_number(tmp_path):
    path = write(tmp_path, "c.yaml", BASE.replace("final_lr: 0.001", "final_lr: 1e-3"))
    cfg = load_train_config(path, ["optim.lr=1e-3", "optim.weight_decay=5E-5"])
    assert cfg["optim"]["lr"] == 0.001 and cfg["optim"]["weight_decay"] == 5e-5
    assert cfg["scheduler"]["final_lr"] == 0.001


STEP_GROUPS = """\
step_groups:
  aux:
    optim: {name: adam, lr: 1.0e-3, betas: [0.5, 0.999]}
    scheduler: {name: constant}
    clip: {mode: per_parameter, max_norm: 3.0}
    sub_groups: {no_decay: {weight_decay: 0.0, lr_scale: 0.5}}
"""


def test_step_groups_are_validated_against_their_classes(tmp_path):
    cfg = load_train_config(write(tmp_path, "ok.yaml", BASE + STEP_GROUPS), [])
    assert cfg["step_groups"]["aux"]["optim"] == {"name": "adam", "lr": 1e-3, "betas": [0.5, 0.999]}
    for bad, line, key in [("betas: [0.5, 0.999]}", "nesterov: true}", "step_groups.aux.optim.nesterov"),
                           ("name: constant}", "name: constnt}", "step_groups.aux.scheduler.name"),
                           ("mode: per_parameter", "mode: per_tensor", "step_groups.aux.clip.mode"),
                           ("lr_scale: 0.5", "lr_scal: 0.5", "step_groups.aux.sub_groups.no_decay.lr_scal")]:
        path = write(tmp_path, "bad.yaml", BASE + STEP_GROUPS.replace(bad, line))
        with pytest.raises(InputError) as err:
            load_train_config(path, [])
        assert f"{path}:" in str(err.value) and key in str(err.value), str(err.value)
