"""Step groups: full optimiser specs, sub-groups, LR and weight-decay schedules, clipping modes."""

import pytest
import torch

import wespeaker_like.training.schedulers  # noqa: F401  (registers the schedules)
from wespeaker_like.objectives.base import Objective
from wespeaker_like.training.step_groups import SPEC_DEFAULTS, StepGroup, check_disjoint, group_specs

BASE = {"optim": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4},
        "scheduler": {"name": "constant"}, "trainer": {"grad_clip": 5.0}}


class TwoGroups(Objective):
    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)

    def parameter_groups(self):
        return {"main": list(self.a.parameters()), "est": list(self.b.parameters())}

    def step_group_defaults(self):
        return {"est": {"optim": {"name": "adam", "lr": 1e-3}, "clip": {"mode": "none"}}}


def make(params, **spec):
    return StepGroup("g", params, {**SPEC_DEFAULTS, **BASE, "clip": None, **spec}, total_epochs=10,
                     global_batch=128, amp=False, device_type="cpu")


def test_group_optimiser_spec_replaces_the_base_one():
    objective = TwoGroups()
    cfg = {**BASE, "step_groups": {"est": {"optim": {"name": "adam", "lr": 2e-3, "betas": [0.5, 0.999]}}}}
    specs = group_specs(objective, cfg)
    assert specs["main"]["optim"] == BASE["optim"] and specs["main"]["clip"] == {"mode": "global", "max_norm": 5.0}
    assert specs["est"]["optim"] == {"name": "adam", "lr": 2e-3, "betas": [0.5, 0.999]}  # no momentum/nesterov
    assert specs["est"]["clip"] == {"mode": "none"}
    group = StepGroup("est", objective.parameter_groups()["est"], specs["est"], 10, 128, False, "cpu")
    assert isinstance(group.optimizer, torch.optim.Adam) and tuple(group.optimizer.defaults["betas"]) == (0.5, 0.999)


def test_sub_groups_lr_scale_and_weight_decay_schedule():
    w, b = torch.nn.Parameter(torch.ones(3, 3)), torch.nn.Parameter(torch.ones(3))
    group = make({"decay": [w], "no_decay": [b]}, scheduler={"name": "warmup_cosine", "final_lr": 0.0},
                 weight_decay_scheduler={"name": "warmup_cosine", "final_lr": 0.4},
                 sub_groups={"no_decay": {"weight_decay": 0.0, "lr_scale": 0.5}}, lr_reference_batch=256)
    group.set_progress(5.0)  # half-way: cosine midpoints
    decay, no_decay = group.optimizer.param_groups
    assert decay["lr"] == pytest.approx(0.05 / 2) and no_decay["lr"] == pytest.approx(0.05 / 4)  # 0.1 x 128/256
    assert decay["weight_decay"] == pytest.approx((1e-4 + 0.4) / 2) and no_decay["weight_decay"] == 0.0


def test_clip_modes():
    def clipped(mode):
        p, q = torch.nn.Parameter(torch.zeros(4)), torch.nn.Parameter(torch.zeros(4))
        p.grad, q.grad = torch.full((4,), 3.0), torch.full((4,), 0.5)  # norms 6 and 1
        make([p, q], clip={"mode": mode, "max_norm": 3.0}).clip()
        return p.grad.norm().item(), q.grad.norm().item()

    assert clipped("per_parameter") == pytest.approx((3.0, 1.0))
    total = (36 + 1) ** 0.5
    assert clipped("global") == pytest.approx((6 * 3 / total, 3 / total))
    assert clipped("none") == pytest.approx((6.0, 1.0))


def test_active_window_and_schedule_relative_to_it():
    group = make([torch.nn.Parameter(torch.zeros(1))], start_epoch=2, end_epoch=6,
                 scheduler={"name": "warmup_cosine", "final_lr": 0.0})
    assert not group.is_active(1.99) and group.is_active(2.0) and not group.is_active(6.0)
    group.set_progress(4.0)  # middle of its own 4-epoch window
    assert group.optimizer.param_groups[0]["lr"] == pytest.approx(0.05)


def test_a_parameter_in_two_groups_is_refused():
    p = torch.nn.Parameter(torch.zeros(1))
    with pytest.raises(ValueError, match="step group 'g' also belongs to an EMA teacher"):
        check_disjoint([make([p])], frozen=[p])


@pytest.mark.parametrize("optim", [BASE["optim"], {"name": "adamw", "lr": 1e-2, "weight_decay": 0.05}])
def test_multi_tensor_updates_equal_the_per_tensor_loop(optim):
    """Step groups default to ``foreach=True`` (one multi-tensor kernel per update); the weights after
    five steps equal, bit for bit, those of torch's per-tensor loop (``foreach: false``)."""
    def train(foreach):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
        spec = {"optim": dict(optim) if foreach is None else {**optim, "foreach": foreach}}
        group = make(list(net.parameters()), **spec)
        initial = [p.detach().clone() for p in net.parameters()]
        for step in range(5):
            x = torch.randn(8, 6)
            group.optimizer.zero_grad(set_to_none=True)
            net(x).pow(2).mean().backward()
            group.optimizer.step()
        return group, initial, [p.detach().clone() for p in net.parameters()]

    default, initial, fast = train(None)
    assert default.optimizer.param_groups[0]["foreach"] is True
    _, _, loop = train(False)
    assert all(torch.equal(a, b) for a, b in zip(fast, loop))
    assert not any(torch.equal(a, b) for a, b in zip(fast, initial))  # every tensor was updated
