"""Using a trained model outside the recipes: load_model, the infer CLI, TorchScript/ONNX export."""

from __future__ import annotations

import json

import kaldiio
import numpy as np
import pytest
import soundfile
import torch

import wespeaker_like
from test_extract import make_exp, run_extract
from test_features import small_data_dir
from test_models import SMALL
from wespeaker_like.audio.io import load_audio, resample
from wespeaker_like.bin import export, infer
from wespeaker_like.errors import InputError
from wespeaker_like.inference import load_model

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning",
                                        "ignore::UserWarning")

FEATURES = {"type": "mfcc", "num_mel_bins": 40, "num_ceps": 40, "high_freq": -400, "norm": "cmn"}


@pytest.fixture
def extracted(tmp_path, corpus_dir):
    """A (random-weight) experiment whose stage 5 ran on 3 utterances from their audio."""
    exp = make_exp(tmp_path / "exp", FEATURES)
    utts = small_data_dir(tmp_path / "data", corpus_dir, num_utts=3)
    assert run_extract(exp, tmp_path / "data", tmp_path / "emb") == 0
    wavs = dict(line.split(" ", 1) for line in (tmp_path / "data" / "wav.scp").read_text().splitlines())
    stage5 = dict(kaldiio.load_scp(str(tmp_path / "emb" / "xvector.scp")).items())
    return exp, [wavs[u] for u in utts], [stage5[u] for u in utts], tmp_path / "emb" / "xvector.scp"


def cosine(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_embed_equals_stage5_extraction(extracted):
    exp, wavs, stage5, _ = extracted
    model = wespeaker_like.load_model(exp)
    for wav, expected in zip(wavs, stage5):
        np.testing.assert_array_equal(model.embed(wav), expected)
    np.testing.assert_array_equal(model.embed_batch(wavs[:2]), np.stack(stage5[:2]))
    assert model.score(wavs[0], wavs[1]) == pytest.approx(cosine(stage5[0], stage5[1]), abs=1e-6)


def test_arrays_are_downmixed_and_resampled(extracted):
    exp, wavs, stage5, _ = extracted
    model = load_model(exp)
    mono = load_audio(wavs[0])
    np.testing.assert_array_equal(model.embed(mono), stage5[0])
    np.testing.assert_allclose(model.embed(np.stack([mono, mono], axis=1)), stage5[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.embed(np.stack([mono, 0 * mono])), model.embed(mono / 2), rtol=1e-5, atol=1e-6)
    at_8k = resample(mono, 16000, 8000)
    np.testing.assert_array_equal(model.embed(at_8k, sample_rate=8000), model.embed(resample(at_8k, 8000, 16000)))
    with pytest.raises(InputError, match="expected at least 400"):
        model.embed(mono[:300])


def test_score_subtracts_the_mean_stage6_used(extracted, tmp_path):
    exp, wavs, stage5, scp = extracted
    (exp / "scores").mkdir()
    (exp / "scores" / "test.result").write_text(json.dumps({"scoring": {"mean_embeddings": str(scp)}}))
    model = load_model(exp)
    mean = np.mean(stage5, axis=0)
    assert model.score(wavs[0], wavs[2]) == pytest.approx(cosine(stage5[0] - mean, stage5[2] - mean), abs=1e-6)
    assert model.score(wavs[0], wavs[2]) != pytest.approx(cosine(stage5[0], stage5[2]), abs=1e-3)
    (exp / "scores" / "dev.result").write_text(json.dumps({"scoring": {"mean_embeddings": "other.scp"}}))
    with pytest.raises(InputError, match="different mean embeddings"):
        load_model(exp)


def test_cli_embed_and_compare_with_calibration(extracted, tmp_path, capsys):
    exp, wavs, stage5, _ = extracted
    assert infer.main(["--model", str(exp), "embed", *wavs, "-o", str(tmp_path / "e.ark")]) == 0
    written = dict(kaldiio.load_scp(str(tmp_path / "e.scp")).items())
    assert list(written) == wavs
    np.testing.assert_array_equal(written[wavs[1]], stage5[1])
    assert infer.main(["--model", str(exp), "embed", "--wav-scp", str(tmp_path / "data" / "wav.scp"),
                       "-o", str(tmp_path / "e.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "e.npy"), np.stack(stage5))  # utterances sorted

    assert infer.main(["--model", str(exp), "compare", wavs[0], wavs[1]]) == 0
    score = cosine(stage5[0], stage5[1])
    out = capsys.readouterr().out.split()
    assert out[0] == "score" and float(out[1]) == pytest.approx(score, abs=1e-5) and len(out) == 2
    (exp / "calibration.json").write_text(json.dumps({"a": 4.0, "b": -1.0, "threshold": 4 * score - 1.5,
                                                      "trials": "dev.trials"}))
    assert infer.main(["--model", str(exp), "compare", wavs[0], wavs[1]]) == 0
    out = capsys.readouterr().out
    assert f"llr {4 * score - 1:.4f}" in out and out.rstrip().endswith("same speaker")


def test_cli_errors(extracted, tmp_path, capsys):
    exp, wavs, _, _ = extracted
    with pytest.raises(SystemExit):
        infer.main(["--model", str(exp), "embed", wavs[0], "-o", str(tmp_path / "e.txt")])
    assert "-o must end in .ark or .npy" in capsys.readouterr().err
    assert infer.main(["--model", str(tmp_path / "nowhere"), "compare", wavs[0], wavs[1]]) == 1
    assert "nowhere: not found: expected an experiment directory" in capsys.readouterr().err
    (exp / "calibration.json").write_text('{"a": 1}')
    assert infer.main(["--model", str(exp), "compare", wavs[0], wavs[1]]) == 1
    assert 'calibration.json: expected a JSON object with keys a, b, threshold, trials' in capsys.readouterr().err


def test_progress_lines_when_stderr_is_a_file(extracted, tmp_path, caplog):
    exp, wavs, _, _ = extracted
    caplog.set_level("INFO", logger="infer")
    assert infer.main(["--model", str(exp), "embed", *wavs, "-o", str(tmp_path / "e.npy"),
                       "--progress_every", "2"]) == 0
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("embed ")]
    assert [line.split()[1] for line in progress] == ["2/3", "3/3"]


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_exported_file_embeds_and_scores_like_the_experiment(extracted, tmp_path, fmt):
    exp, wavs, stage5, scp = extracted
    (exp / "scores").mkdir()
    (exp / "scores" / "test.result").write_text(json.dumps({"scoring": {"mean_embeddings": str(scp)}}))
    (exp / "calibration.json").write_text(json.dumps({"a": 2.0, "b": 0.5, "threshold": 1.0, "trials": "t"}))
    assert export.main(["--model", str(exp), "--format", fmt]) == 0
    exported = load_model(exp / "export" / ("final_model.onnx" if fmt == "onnx" else "final_model.pt"))
    eager = load_model(exp)
    np.testing.assert_allclose(exported.embed(wavs[0]), stage5[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(exported.mean, eager.mean)
    assert exported.score(wavs[0], wavs[1]) == pytest.approx(eager.score(wavs[0], wavs[1]), abs=1e-4)
    assert exported.calibrate(0.25) == eager.calibrate(0.25) == (1.0, True)


@pytest.mark.parametrize("model_cfg", SMALL, ids=[cfg["name"] for cfg in SMALL])
def test_onnx_runtime_equals_eager_at_three_lengths(tmp_path, model_cfg):
    """Every backbone: the ONNX graph (dynamic time axis) run by ONNX Runtime, against eager PyTorch."""
    features = {"type": "fbank", "num_mel_bins": model_cfg["feat_dim"]}
    exp = make_exp(tmp_path / "exp", features, model=model_cfg)
    eager = load_model(exp)
    onnx_file = export.export(exp, "onnx")
    script_file = export.export(exp, "torchscript")
    exported = [load_model(onnx_file), load_model(script_file)]
    torch.manual_seed(0)
    for frames in (57, 200, 411):
        feats = torch.randn(frames, model_cfg["feat_dim"])
        reference = eager.network(feats)
        for model in exported:
            np.testing.assert_allclose(model.network(feats), reference, rtol=0, atol=1e-4)


def test_load_model_names_a_file_that_is_no_export(tmp_path):
    bogus = tmp_path / "model.onnx"
    bogus.write_bytes(b"not a model")
    with pytest.raises(InputError, match="model.onnx: is not a readable ONNX model"):
        load_model(bogus)
    soundfile.write(tmp_path / "model.pt", np.zeros(10), 16000, format="WAV")
    with pytest.raises(InputError, match="model.pt: is not a readable TorchScript model"):
        load_model(tmp_path / "model.pt")


def test_torchscript_with_the_frontend_inside_takes_waveforms(extracted, capsys):
    exp, wavs, stage5, _ = extracted
    assert export.main(["--model", str(exp), "--format", "torchscript", "--with-frontend"]) == 0
    exported = load_model(exp / "export" / "final_model_frontend.pt")
    eager = load_model(exp)
    np.testing.assert_allclose(exported.embed(wavs[0]), stage5[0], rtol=1e-4, atol=1e-4)
    audio = load_audio(wavs[1])
    for samples in (4000, 12345, len(audio)):  # the traced graph keeps the length dynamic
        np.testing.assert_allclose(exported.embed(audio[:samples]), eager.embed(audio[:samples]), rtol=1e-4,
                                   atol=1e-4)
    with pytest.raises(SystemExit):
        export.main(["--model", str(exp), "--format", "onnx", "--with_frontend"])
    assert "--with_frontend needs --format torchscript" in capsys.readouterr().err
