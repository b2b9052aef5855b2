"""Model zoo: parameter counts against the published figures, shapes, batch consistency, export.

Every row of the issue's table is built from its config. Shapes for 100/200/1,000 frames at batch 1
and 8 are checked on the ``meta`` device (the same forward code, shape propagation only, so the big
models cost nothing); numerics (batch vs one-by-one, TorchScript vs eager) run on real tensors of
3 x 100 frames to keep the file fast on a 2-core machine.
"""

import pytest
import torch

import wespeaker_like.models as models
from wespeaker_like.models import MODELS, build_model, build_pooling, count_parameters

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")

torch.set_num_threads(min(2, torch.get_num_threads()))

ECAPA_3DS = dict(name="ecapa_tdnn", feat_dim=80, channels=[1024, 1024, 1024, 1024, 3072],
                 mfa_bn=True, attention_bn=True, padding_mode="reflect")

# id: (config, published trainable parameters or None when the issue asks us to report ours,
#      our exact count, source of the published figure)
ROWS = {
    "tdnn_xvector": (dict(name="tdnn", feat_dim=80, embed_dim=512), None, 4_354_964,
                     "Kaldi egs/voxceleb/v2 x-vector, frame layers + 512-d segment6 affine; no published count"),
    "ecapa_c512": (dict(name="ecapa_tdnn", feat_dim=80, embed_dim=192, channels=512), 6.19e6, 6_190_720,
                   "WeSpeaker README, ECAPA_TDNN_GLOB_c512-ASTP-emb192: 6.19 M"),
    "ecapa_c1024": (dict(name="ecapa_tdnn", feat_dim=80, embed_dim=192, channels=1024), 14.65e6, 14_657_088,
                    "WeSpeaker README, ECAPA_TDNN_GLOB_c1024-ASTP-emb192: 14.65 M"),
    "ecapa_3dspeaker": (dict(ECAPA_3DS, embed_dim=192), 20.8e6, 20_767_552,
                        "3D-Speaker README (egs/voxceleb/sv-ecapa), ECAPA-TDNN: 20.8 M"),
    "ecapa_sdpn": (dict(ECAPA_3DS, embed_dim=512), 22.73e6, 22_733_952,
                   "SDPN reference encoder (3D-Speaker rdino/ECAPA_TDNN.py, sdpn.yaml), METHODS.md §4.1: 22.73 M"),
    "resnet34_wespeaker": (dict(name="resnet", feat_dim=80, embed_dim=256, m_channels=32, pooling="TSTP"),
                           6.63e6, 6_634_336, "WeSpeaker README, ResNet34-TSTP-emb256: 6.63 M"),
    # 3D-Speaker's 6.34 M is printed by its resnet/ResNet.py with the class default two_emb_layer=True
    # (a second 192x192 segment layer, +37,056); with a single segment layer the count is 6,306,592.
    "resnet34_3dspeaker": (dict(name="resnet", feat_dim=80, embed_dim=192, m_channels=32, pooling="TSTP",
                                two_emb_layer=True), 6.34e6, 6_343_648,
                           "3D-Speaker speakerlab/models/resnet/ResNet.py __main__: 6.34 M"),
    "thin_resnet34": (dict(name="thin_resnet34", feat_dim=64, embed_dim=512), None, 8_028_492,
                      "voxceleb_trainer ResNetSE34V2 with its released config (64 mels, ASP, 512-d)"),
    "fast_resnet34": (dict(name="fast_resnet34", feat_dim=40, embed_dim=512), None, 1_437_078,
                      "voxceleb_trainer ResNetSE34L with its released config (40 mels, SAP, 512-d)"),
    "res2net34": (dict(name="res2net", feat_dim=80, embed_dim=192, m_channels=32), 4.03e6, 4_033_600,
                  "3D-Speaker res2net/Res2Net.py __main__: 4.03 M (issue: about 4.0 M)"),
    "eres2net_base": (dict(name="eres2net", feat_dim=80, embed_dim=192, m_channels=32), 6.61e6, 6_610_688,
                      "3D-Speaker eres2net/ERes2Net.py __main__ and README: 6.61 M"),
    "eres2netv2": (dict(name="eres2netv2", feat_dim=80, embed_dim=192, m_channels=64, base_width=26, scale=2,
                        expansion=2), 17.86e6, 17_859_632,
                   "3D-Speaker eres2net/ERes2NetV2.py __main__: 17.86 M (issue: 17.8 M)"),
    "campplus": (dict(name="campplus", feat_dim=80, embed_dim=512), 7.18e6, 7_176_224,
                 "3D-Speaker README, CAM++: 7.18 M"),
    "mfa_conformer": (dict(name="mfa_conformer", feat_dim=80, embed_dim=192, num_blocks=6, d_model=256, heads=4,
                           ffn_dim=2048, kernel_size=15), None, 19_759_424,
                      "zyzisyz/mfa_conformer conformer_cat (conv2d2, rel_pos, ASP); no published count"),
}


def _feat_dim(cfg):
    return cfg.get("feat_dim", 80)


@pytest.fixture(scope="module")
def built():
    """Real models in eval mode, one per row, built once and shared by the numeric tests."""
    cache = {}

    def get(row):
        if row not in cache:
            torch.manual_seed(0)
            cache[row] = build_model(ROWS[row][0]).eval()
        return cache[row]

    return get


def test_every_model_is_registered():
    expected = {"tdnn", "ecapa_tdnn", "resnet", "thin_resnet34", "fast_resnet34", "res2net", "eres2net",
                "eres2netv2", "campplus", "mfa_conformer"}
    assert expected <= set(MODELS.names())
    assert {cfg["name"] for cfg, *_ in ROWS.values()} == expected


@pytest.mark.parametrize("row", list(ROWS))
def test_parameter_count_and_shapes(row):
    cfg, published, ours, source = ROWS[row]
    with torch.device("meta"):
        model = build_model(cfg).eval()
        n = count_parameters(model)
        assert n == ours, f"{row}: {n} parameters, expected {ours}"
        if published is not None:
            assert abs(n - published) <= 0.01 * published, f"{row}: {n} vs published {published} ({source})"
        for frames in (100, 200, 1000):
            for batch in (1, 8):
                emb, first = model.forward_with_frontend(torch.zeros(batch, frames, _feat_dim(cfg)))
                assert emb.shape == (batch, model.embed_dim) == (batch, cfg["embed_dim"])
                assert first.shape == (batch, model.frontend_dim)
                assert model(torch.zeros(batch, frames, _feat_dim(cfg))).shape == (batch, model.embed_dim)


@pytest.mark.parametrize("row", list(ROWS))
def test_fits_the_recipe_features(row):
    """The speechocean762 recipe feeds 80-d fbank crops of 150 frames: every row builds for them by
    changing only its model section (``feat_dim: 80``)."""
    cfg = dict(ROWS[row][0], feat_dim=80)
    with torch.device("meta"):
        model = build_model(cfg).train()
        assert model(torch.zeros(4, 150, 80)).shape == (4, cfg["embed_dim"])


@pytest.mark.parametrize("row", list(ROWS))
def test_batch_equals_one_by_one_and_torchscript(row, built):
    model = built(row)
    torch.manual_seed(1)
    x = torch.randn(3, 100, _feat_dim(ROWS[row][0]))
    with torch.no_grad():
        emb, first = model.forward_with_frontend(x)
        assert torch.equal(model(x), emb)  # forward is the same pass
        single = torch.cat([model(x[i:i + 1]) for i in range(len(x))])
        torch.testing.assert_close(single, emb, rtol=0, atol=1e-5)
        scripted = torch.jit.script(model)
        s_emb, s_first = scripted.forward_with_frontend(x)
    torch.testing.assert_close(s_emb, emb, rtol=0, atol=1e-4)
    torch.testing.assert_close(s_first, first, rtol=0, atol=1e-4)


def test_frontend_is_first_conv_pooled():
    """The pooled front-end output is the mean of the first conv layer's output (ECAPA and a 2-D CNN)."""
    torch.manual_seed(0)
    x = torch.randn(2, 120, 80)
    ecapa = build_model(ROWS["ecapa_c512"][0]).eval()
    resnet = build_model(dict(name="resnet", embed_dim=64, m_channels=8, num_blocks=[1, 1, 1, 1])).eval()
    with torch.no_grad():
        _, first = ecapa.forward_with_frontend(x)
        torch.testing.assert_close(first, ecapa.layer1(x.transpose(1, 2)).mean(dim=2))
        _, first = resnet.forward_with_frontend(x)
        stem = torch.relu(resnet.bn1(resnet.conv1(x.transpose(1, 2).unsqueeze(1))))
        torch.testing.assert_close(first, stem.mean(dim=(2, 3)))


# small members of every family, for the gradient and compile checks
SMALL = [
    dict(name="tdnn", feat_dim=24, embed_dim=16, channels=[16, 16, 16, 16, 32]),
    dict(name="ecapa_tdnn", feat_dim=24, embed_dim=16, channels=[32, 32, 32, 32, 48], se_channels=8,
         attention_channels=8, mfa_bn=True, attention_bn=True, padding_mode="reflect"),
    dict(name="resnet", feat_dim=24, embed_dim=16, m_channels=4, num_blocks=[1, 1, 1, 1], two_emb_layer=True),
    dict(name="thin_resnet34", feat_dim=24, embed_dim=16, widths=[8, 8, 16, 16], num_blocks=[1, 1, 1, 1]),
    dict(name="fast_resnet34", feat_dim=24, embed_dim=16, widths=[8, 8, 16, 16], num_blocks=[1, 1, 1, 1]),
    dict(name="res2net", feat_dim=24, embed_dim=16, m_channels=8, num_blocks=[1, 1, 1, 1]),
    dict(name="eres2net", feat_dim=24, embed_dim=16, m_channels=8, num_blocks=[1, 1, 1, 1]),
    dict(name="eres2netv2", feat_dim=24, embed_dim=16, m_channels=8, num_blocks=[1, 1, 1, 1]),
    dict(name="campplus", feat_dim=24, embed_dim=16, m_channels=8, growth_rate=8, init_channels=16,
         num_layers=[2, 2, 2]),
    dict(name="mfa_conformer", feat_dim=24, embed_dim=16, num_blocks=2, d_model=16, heads=2, ffn_dim=32),
]


def test_training_step_updates_all_parameters():
    """Gradients reach every parameter (no dead branch), on small variants of each family."""
    for cfg in SMALL:
        torch.manual_seed(0)
        model = build_model(cfg).train()
        emb, first = model.forward_with_frontend(torch.randn(4, 40, cfg["feat_dim"]))
        (emb.pow(2).sum() + first.sum()).backward()
        dead = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
        assert not dead, f"{cfg['name']}: no gradient for {dead}"


def test_torch_compile_traces_one_graph():
    """torch.compile sees each model as one graph (no graph breaks), so compiling helps the whole step."""
    import torch._dynamo as dynamo

    for cfg in SMALL:
        dynamo.reset()
        explanation = dynamo.explain(build_model(cfg).train())(torch.randn(4, 40, cfg["feat_dim"]))
        assert explanation.graph_break_count == 0, (cfg["name"], explanation.break_reasons)
    dynamo.reset()


def test_bad_config_names_the_key():
    with pytest.raises(ValueError, match="no_such_key"):
        build_model(dict(name="ecapa_tdnn", no_such_key=1))
    with pytest.raises(KeyError, match="unknown model"):
        build_model(dict(name="no_such_model"))


def test_package_exports():
    assert callable(models.build_model) and callable(models.build_pooling)


@pytest.mark.parametrize("name,factor", [("TAP", 1), ("TSTP", 2), ("SAP", 1), ("ASTP", 2), ("ASP", 2)])
def test_pooling_shapes(name, factor):
    pool = build_pooling(name, 12)
    assert pool.out_dim == 12 * factor
    assert pool(torch.randn(5, 12, 30)).shape == (5, 12 * factor)
    assert pool(torch.randn(5, 3, 4, 30)).shape == (5, 12 * factor)  # (B, C, F, T) flattens to C*F = 12


def test_pooling_statistics():
    torch.manual_seed(0)
    x = torch.randn(4, 6, 50)
    mean, std = x.mean(-1), x.std(-1)
    torch.testing.assert_close(build_pooling("TAP", 6)(x), mean)
    torch.testing.assert_close(build_pooling("TSTP", 6)(x), torch.cat([mean, std], 1))
    torch.testing.assert_close(build_pooling("TSTP", 6, unbiased=False)(x),
                               torch.cat([mean, x.std(-1, unbiased=False)], 1))
    # uniform attention weights turn the attentive poolings into plain statistics
    for kwargs in (dict(global_context=True), dict(global_context=False, attention_bn=True, attention_tanh=False)):
        astp = build_pooling("ASTP", 6, attention_channels=4, **kwargs)
        torch.nn.init.zeros_(astp.out.weight)
        torch.nn.init.zeros_(astp.out.bias)
        torch.testing.assert_close(astp.eval()(x), torch.cat([mean, x.std(-1, unbiased=False)], 1))
    sap = build_pooling("SAP", 6)
    torch.nn.init.zeros_(sap.attention)
    torch.testing.assert_close(sap(x), mean)
    with pytest.raises(KeyError, match="unknown pooling"):
        build_pooling("XYZ", 6)


@pytest.mark.parametrize("cfg", SMALL, ids=lambda c: c["name"])
def test_low_level_feature_comes_from_the_first_conv_only(cfg):
    """Paper 004's h (``forward_with_frontend``'s second output) on every backbone: its gradient reaches
    only the first convolution executed (and at most one normalisation layer after it), its width is
    that convolution's channels (``frontend_dim``), and it is a per-utterance mean."""
    torch.manual_seed(0)
    model = build_model(cfg).train()
    convs = []
    hooks = [m.register_forward_hook(lambda m, i, o: convs.append(m))
             for m in model.modules() if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d))]
    x = torch.randn(3, 40, cfg["feat_dim"])
    _, first = model.forward_with_frontend(x)
    for hook in hooks:
        hook.remove()
    assert first.shape == (3, model.frontend_dim) and convs[0].out_channels == model.frontend_dim
    first.sum().backward()
    reached = {name.rsplit(".", 1)[0] for name, p in model.named_parameters()
               if p.grad is not None and p.grad.abs().sum() > 0}
    modules = dict(model.named_modules())
    conv_name = next(name for name, m in modules.items() if m is convs[0])
    assert conv_name in reached
    others = reached - {conv_name}
    assert len(others) <= 1 and all(isinstance(modules[n], torch.nn.modules.batchnorm._BatchNorm) for n in others), others
    # utterance 0's h does not depend on utterance 1's frames (eval: no batch statistics)
    model.eval()
    with torch.no_grad():
        changed = x.clone()
        changed[1] += 1.0
        torch.testing.assert_close(model.forward_with_frontend(changed)[1][0], model.forward_with_frontend(x)[1][0])


@pytest.mark.parametrize("frames", [100, 250])
def test_cam_mask_per_segment_equals_the_per_frame_mask(frames):
    """CAMLayer computes its mask once per 100-frame segment; the references (3D-Speaker, WeSpeaker)
    compute it frame by frame from the frame's context. Output and gradients agree (float64), for one
    segment and for 2.5 segments (the last one partial)."""
    from wespeaker_like.models.campplus import CAMLayer

    torch.manual_seed(0)
    layer = CAMLayer(16, 8, kernel_size=3, dilation=2).double()
    x = torch.randn(3, 16, frames, dtype=torch.float64, requires_grad=True)

    def per_frame(x):
        seg = torch.nn.functional.avg_pool1d(x, 100, 100, ceil_mode=True)
        seg = seg.repeat_interleave(100, dim=-1)[:, :, :frames]  # each frame's segment mean
        context = x.mean(dim=-1, keepdim=True) + seg  # (B, C, T)
        return layer.local(x) * torch.sigmoid(layer.linear2(torch.relu(layer.linear1(context))))

    weights = torch.randn(3, 8, frames, dtype=torch.float64)
    ours = layer(x)
    (grad_ours,) = torch.autograd.grad((ours * weights).sum(), x)
    reference = per_frame(x)
    (grad_reference,) = torch.autograd.grad((reference * weights).sum(), x)
    torch.testing.assert_close(ours, reference, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad_ours, grad_reference, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("attention_bn", [False, True])
def test_astp_global_context_equals_the_concatenated_input(attention_bn):
    """ASTP with global context applies its first conv to x and, once per utterance, to [mean; std]
    instead of to the (B, 3C, T) concatenation the references build; output and gradients (input and
    weights) agree in float64."""
    torch.manual_seed(0)
    astp = build_pooling("ASTP", 6, attention_channels=5, global_context=True, attention_bn=attention_bn)
    astp = astp.double().train()
    x = torch.randn(4, 6, 30, dtype=torch.float64, requires_grad=True)

    def concatenated(x):  # the references' form: hidden(cat([x, mean, std] repeated over time))
        mean = x.mean(dim=-1, keepdim=True)
        std = (x - mean).pow(2).mean(dim=-1, keepdim=True).clamp(min=astp.eps).sqrt()
        h = torch.tanh(astp.hidden(torch.cat([x, mean.expand_as(x), std.expand_as(x)], dim=1)))
        w = torch.softmax(astp.out(h), dim=-1)
        mu = (w * x).sum(dim=-1)
        sigma = (w * (x - mu.unsqueeze(-1)).pow(2)).sum(dim=-1).clamp(min=astp.eps).sqrt()
        return torch.cat([mu, sigma], dim=1)

    weights = torch.randn(4, 12, dtype=torch.float64)
    inputs = [x] + list(astp.parameters())
    ours = astp(x)
    grads_ours = torch.autograd.grad((ours * weights).sum(), inputs)
    reference = concatenated(x)
    grads_reference = torch.autograd.grad((reference * weights).sum(), inputs)
    torch.testing.assert_close(ours, reference, rtol=1e-12, atol=1e-12)
    for a, b in zip(grads_ours, grads_reference):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
