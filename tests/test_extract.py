"""Stage 5 extraction: from feats.scp or straight from audio through the saved front-end, with checks."""

from __future__ import annotations

import kaldiio
import numpy as np
import pytest
import torch
import yaml

import wespeaker_like.models  # noqa: F401  (registers the backbones)
from test_features import small_data_dir
from wespeaker_like.audio.source import AudioSource
from wespeaker_like.bin import extract, make_features
from wespeaker_like.features import build_frontend
from wespeaker_like.objectives import build_objective

MODEL = {"name": "ecapa_tdnn", "feat_dim": 40, "embed_dim": 16, "channels": [16, 16, 16, 16, 48],
         "se_channels": 8, "attention_channels": 8}
OBJECTIVE = {"name": "classification", "num_frames": 30, "loss": {"name": "aam", "margin": 0.2, "scale": 16}}


def make_exp(path, features, model=MODEL, poison=False, seed=0, objective=OBJECTIVE, classes=None):
    """An experiment dir as training leaves it: config.yaml and final_model.pt (random weights)."""
    classes = classes or {"spk": 3}
    path.mkdir(parents=True, exist_ok=True)
    cfg = {"features": features, "model": model, "objective": objective, "optim": {"name": "sgd", "lr": 0.1},
           "scheduler": {"name": "constant"}}
    (path / "config.yaml").write_text(yaml.safe_dump(cfg))
    torch.manual_seed(seed)
    state = build_objective(objective, dict(model), classes).embedding_model().state_dict()
    if poison:
        name = next(k for k, v in state.items() if v.is_floating_point() and v.dim() > 1)
        state[name] = torch.full_like(state[name], float("nan"))
    torch.save({"embedding": state, "num_classes": classes}, path / "final_model.pt")
    return path


def run_extract(exp, data, out, *extra):
    args = ["--exp_dir", str(exp), "--data_dir", str(data), "--out_dir", str(out), *extra]
    code = extract.main(args + ["--job", "1"])
    if code == 0:
        assert extract.main(args + ["--merge"]) == 0
    return code


def test_audio_and_feats_sources_give_the_same_embeddings(tmp_path, corpus_dir):
    features = {"type": "mfcc", "num_mel_bins": 40, "num_ceps": 40, "high_freq": -400, "norm": "cmn"}
    exp = make_exp(tmp_path / "exp", features)
    utts = small_data_dir(tmp_path / "data", corpus_dir, num_utts=3)
    assert run_extract(exp, tmp_path / "data", tmp_path / "from_audio") == 0  # no feats.scp: audio
    (tmp_path / "stage3.yaml").write_text(yaml.safe_dump({"features": features}))
    args = ["--data_dir", str(tmp_path / "data"), "--feat_dir", str(tmp_path / "feats"),
            "--config", str(tmp_path / "stage3.yaml")]
    assert make_features.main(args + ["--job", "1"]) == 0 and make_features.main(args + ["--merge"]) == 0
    assert run_extract(exp, tmp_path / "data", tmp_path / "from_feats") == 0
    from_audio = dict(kaldiio.load_scp(str(tmp_path / "from_audio" / "xvector.scp")).items())
    from_feats = dict(kaldiio.load_scp(str(tmp_path / "from_feats" / "xvector.scp")).items())
    assert sorted(from_audio) == sorted(from_feats) == utts
    # The direct computation: the same front-end on the decoded audio, CMN, the network.
    model, _ = extract.load_embedding_model(exp)
    audio = AudioSource.from_data_dir(tmp_path / "data", 16000)
    mfcc = build_frontend(features).features(audio.read(utts[0]))
    with torch.inference_mode():
        direct = model((mfcc - mfcc.mean(0)).unsqueeze(0)).squeeze(0).numpy()
    for utt in utts:
        np.testing.assert_allclose(from_feats[utt], from_audio[utt], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(from_audio[utts[0]], direct, rtol=1e-4, atol=1e-5)


def test_model_input_dim_mismatch_names_both_keys(tmp_path, corpus_dir, capsys):
    exp = make_exp(tmp_path / "exp", {"type": "fbank", "num_mel_bins": 80})  # model.feat_dim is 40
    small_data_dir(tmp_path / "data", corpus_dir, num_utts=1)
    assert run_extract(exp, tmp_path / "data", tmp_path / "out") == 1
    assert "config.yaml: model.feat_dim is 40 but the fbank front-end gives 80-d features " \
           "(features.num_mel_bins)" in capsys.readouterr().err
    assert not list((tmp_path / "out").glob("*.scp"))


def test_stage3_features_of_another_config_are_refused(tmp_path, corpus_dir, capsys):
    exp = make_exp(tmp_path / "exp", {"type": "fbank", "num_mel_bins": 40})
    utts = small_data_dir(tmp_path / "data", corpus_dir, num_utts=1)
    args = ["--data_dir", str(tmp_path / "data"), "--feat_dir", str(tmp_path / "feats")]  # default: 80-d
    assert make_features.main(args + ["--job", "1"]) == 0 and make_features.main(args + ["--merge"]) == 0
    assert run_extract(exp, tmp_path / "data", tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert f"utterance '{utts[0]}' has features of shape (" in err and "gives 40-d features" in err


def test_non_finite_embedding_stops_naming_the_utterance(tmp_path, corpus_dir, capsys):
    exp = make_exp(tmp_path / "exp", {"type": "fbank", "num_mel_bins": 40}, poison=True)
    utts = small_data_dir(tmp_path / "data", corpus_dir, num_utts=2)
    assert run_extract(exp, tmp_path / "data", tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert f"final_model.pt: the embedding of utterance '{utts[0]}' is not finite" in err
    assert not any(p.suffix in (".ark", ".scp") for p in (tmp_path / "out").iterdir())


def test_new_model_or_split_redoes_extraction(tmp_path, corpus_dir, caplog):
    features = {"type": "fbank", "num_mel_bins": 40}
    exp = make_exp(tmp_path / "exp", features)
    utts = small_data_dir(tmp_path / "data", corpus_dir, num_utts=3)
    out = tmp_path / "out"
    assert run_extract(exp, tmp_path / "data", out) == 0
    first = dict(kaldiio.load_scp(str(out / "xvector.scp")).items())
    make_exp(exp, features, seed=1)  # retrained: another final_model.pt
    with caplog.at_level("INFO"):
        assert run_extract(exp, tmp_path / "data", out) == 0
    assert "redoing it because model changed" in caplog.text and "already complete" not in caplog.text
    second = dict(kaldiio.load_scp(str(out / "xvector.scp")).items())
    assert sorted(second) == utts and not np.allclose(first[utts[0]], second[utts[0]])
    # Two jobs instead of one: job 1 alone leaves the merged scp of the single job readable.
    args = ["--exp_dir", str(exp), "--data_dir", str(tmp_path / "data"), "--out_dir", str(out), "--num_jobs", "2"]
    assert extract.main(args + ["--job", "1"]) == 0
    still = dict(kaldiio.load_scp(str(out / "xvector.scp")).items())
    assert all(np.array_equal(still[u], second[u]) for u in utts)
    assert extract.main(args + ["--job", "2"]) == 0 and extract.main(args + ["--merge"]) == 0
    split = dict(kaldiio.load_scp(str(out / "xvector.scp")).items())
    assert all(np.allclose(split[u], second[u], atol=1e-6) for u in utts)
    assert len(list(out.glob("xvector.*.ark"))) == 2  # the single job's ark removed by the merge


def test_branches_of_a_decoupled_encoder_come_from_one_pass(tmp_path, corpus_dir, caplog, capsys):
    features = {"type": "fbank", "num_mel_bins": 40}
    exp = make_exp(tmp_path / "exp", features, objective={"name": "club", "estimator_hidden": 8},
                   classes={"spk": 3, "dev": 2})
    utts = small_data_dir(tmp_path / "data", corpus_dir, num_utts=2)
    out, data = tmp_path / "out", tmp_path / "data"

    def table(path):
        return dict(kaldiio.load_scp(str(path / "xvector.scp")).items())

    assert run_extract(exp, data, out, "--branch", "x,x_s,x_d") == 0
    both = {b: table(out / b) for b in ("x", "x_s", "x_d")}
    assert all(sorted(t) == utts for t in both.values())
    assert run_extract(exp, data, tmp_path / "default") == 0  # the decoupled encoder's own output: x_s
    assert run_extract(exp, data, tmp_path / "one", "--branch", "x_d") == 0
    default, x_d = table(tmp_path / "default"), table(tmp_path / "one" / "x_d")
    model, _ = extract.load_embedding_model(exp)
    assert all(np.array_equal(both["x_s"][u], default[u]) and np.array_equal(both["x_d"][u], x_d[u]) for u in utts)
    assert both["x"][utts[0]].shape == (model.backbone.embed_dim,)
    # A rerun redoes only the branch whose output is gone, and the same embeddings come out.
    for path in (out / "x_d").glob("xvector.*"):
        path.unlink()
    with caplog.at_level("INFO"):
        assert run_extract(exp, data, out, "--branch", "x,x_s,x_d") == 0
    assert caplog.text.count("already complete") == 2 and "branches x_d" in caplog.text
    assert all(np.array_equal(table(out / "x_d")[u], both["x_d"][u]) for u in utts)
    # A network without a decoupling block has x only.
    plain = make_exp(tmp_path / "plain", features)
    assert run_extract(plain, data, tmp_path / "plain_out", "--branch", "x,x_s") == 1
    assert "--branch x,x_s: this experiment's embedding network has one output only, x" in capsys.readouterr().err
    assert run_extract(plain, data, tmp_path / "plain_out", "--branch", "x") == 0
