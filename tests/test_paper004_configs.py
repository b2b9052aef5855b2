"""Paper 004 (SupMarginCon + MI): one config per table row, each loading, building its objective at
full size (meta device) and switching on exactly the terms its row names (METHODS.md §5)."""

from pathlib import Path

import pytest
import torch

from conftest import ROOT
from wespeaker_like.models import count_parameters
from wespeaker_like.objectives import build_objective
from wespeaker_like.training.schema import load_experiment_config

VOX = ROOT / "egs" / "voxceleb" / "supmargincon" / "conf"
CNCELEB = ROOT / "egs" / "cnceleb" / "supmargincon" / "conf"
CONFIGS = sorted(VOX.glob("table*.yaml")) + sorted(CNCELEB.glob("table*.yaml"))

# row label (the loss part) -> (objective, classifier loss, contrastive, positives, MI term)
METHODS = {
    "CE": ("classification", "softmax", None, None, False),
    "AM-Softmax": ("classification", "am", None, None, False),
    "AAM-Softmax": ("supmargincon", "aam", None, None, False),
    "AAM": ("supmargincon", "aam", None, None, False),
    "AAM + MI": ("supmargincon", "aam", None, None, True),
    "AAM + SupCon": ("supmargincon", "aam", "supcon", "speaker", False),
    "AAM + SupMarginCon": ("supmargincon", "aam", "supmargincon", "speaker", False),
    "AAM + SupMarginCon + MI": ("supmargincon", "aam", "supmargincon", "speaker", True),
    "Ours (eq.8)": ("supmargincon", "aam", "supmargincon", "speaker", True),
    "SimCLR": ("supmargincon", None, "supcon", "instance", False),
    "SimCLR+MI": ("supmargincon", None, "supcon", "instance", True),
    "SupCon": ("supmargincon", None, "supcon", "speaker", False),
    "SupCon+MI": ("supmargincon", None, "supcon", "speaker", True),
    "MoCo": ("moco", None, None, None, False),
    "MoCo+MI": ("moco", None, None, None, True),
}
# encoder label -> (model name, trainable parameters of the backbone: the 3D-Speaker sizes of test_models)
ENCODERS = {"Res2Net": ("res2net", 4_033_600), "ResNet34": ("resnet", 6_343_648),
            "ECAPA-TDNN": ("ecapa_tdnn", 20_767_552), "ERes2Net": ("eres2net", 6_610_688),
            "CAM++": ("campplus", 7_176_224), "ERes2NetV2": ("eres2netv2", 17_859_632)}
ECAPA_C512 = ("ecapa_tdnn", 6_190_720)  # Table V: WeSpeaker's self-supervised baselines
VOX_TRIALS = {"I": {"vox1_O", "vox1_E", "vox1_H"}, "IV": {"vox1_O"}, "V": {"vox1_O"}}  # CN-Celeb: cnceleb1_eval


def test_every_paper_row_has_one_config():
    vox = [load_experiment_config(p)["paper"] for p in sorted(VOX.glob("table*.yaml"))]
    cn = [load_experiment_config(p)["paper"] for p in sorted(CNCELEB.glob("table*.yaml"))]
    assert len(vox) == 33 and len(cn) == 24
    rows = {(t.strip(), p["row"]) for p in vox for t in p["table"].split(",")}
    assert sum(1 for t, _ in rows if t == "I") == 24
    assert sum(1 for t, _ in rows if t == "IV") == 5  # 3 own files + Table I's ERes2NetV2 AAM and Ours
    assert sum(1 for t, _ in rows if t == "V") == 6
    assert len({p["row"] for p in cn}) == 24 and {p["table"].split(",")[0] for p in cn} == {"II"}


def expected_switches(paper):
    label = paper["row"]
    encoder, _, method = label.rpartition(", ")
    model = ENCODERS[encoder] if encoder else (ENCODERS["ERes2NetV2"] if "IV" in paper["table"] else ECAPA_C512)
    return model, METHODS[method]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.parent.parent.name}/{p.stem}")
def test_config_builds_the_objective_of_its_row(path: Path):
    cfg = load_experiment_config(path)
    paper = cfg["paper"]
    (model_name, backbone_parameters), (objective, loss, contrastive, positives, mi) = expected_switches(paper)
    tables = [t.strip() for t in paper["table"].split(",")]
    if path.is_relative_to(CNCELEB):
        assert set(paper["numbers"]) == {"cnceleb1_eval"}
    else:
        assert set(paper["numbers"]) == set().union(*(VOX_TRIALS[t] for t in tables))
    for values in paper["numbers"].values():
        assert 0 < values["eer"] < 20 and 0 < values["min_dcf"] < 1
    section = cfg["objective"]
    assert cfg["model"]["name"] == model_name and section["name"] == objective
    assert section["num_frames"] == (200 if tables == ["V"] else 300)
    assert (section.get("loss") or {}).get("name") == loss
    if objective == "supmargincon":
        spec = section.get("contrastive") or {}
        assert spec.get("name") == contrastive and spec.get("positives") == positives
        if contrastive == "supmargincon":
            assert spec["margin"] == (0.3 if path.is_relative_to(CNCELEB) else 0.2) and spec["margin_type"] == "arc"
        if loss == "aam":
            assert section["loss"]["margin"] == 0.3 and section["loss"]["scale"] == 32.0
    assert bool((section.get("mi") or {}).get("weight")) == mi
    if mi:
        assert section["mi"] == {"weight": 0.1, "rho": 0.05, "sigma": 0.1, "positive_term": True,
                                 "noise_embedding": False, "critic_hidden": 512}
    num_classes = 5994 * 3 if path.is_relative_to(VOX) else 2793  # VoxCeleb2-dev speed copies as speakers
    with torch.device("meta"):
        built = build_objective(cfg["objective"], cfg["model"], {"spk": num_classes})
    assert type(built).__name__.lower().replace("_", "") == objective.replace("_", "") or \
        built.__class__.__module__.endswith(objective)
    assert count_parameters(built.embedding_model()) == backbone_parameters
    assert (getattr(built, "mi", None) is not None) == mi
    if objective == "supmargincon":
        assert (built.head is None) == (loss is None)
        assert (built.contrastive or {}).get("name") == contrastive
        assert (built.contrastive or {}).get("positives") == positives
