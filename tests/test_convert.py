"""Converting fxia22/pointnet.pytorch and yanx27/Pointnet_Pointnet2_pytorch weights.

The state dicts are built with those repositories' parameter names and shapes
(``pointnet/model.py`` of fxia22; ``models/pointnet_utils.py`` and
``models/pointnet_cls.py`` of yanx27), random values and plausible batch-norm
statistics; :func:`_reference_logits` transcribes their classifier's forward in
plain functional ops.
"""

import pickle

import pytest
import torch
import torch.nn.functional as F

from pointnet1x1.cli import main
from pointnet1x1.convert import (
    ConversionError,
    _fold_missing_relu,
    convert_state_dict,
    load_source_state_dict,
    read_class_names,
)
from pointnet1x1.engine.checkpoint import load_model_checkpoint


def _linear(state, gen, name, c_in, c_out, conv=False):
    w = torch.randn(c_out, c_in, generator=gen) * (2.0 / c_in) ** 0.5
    state[f"{name}.weight"] = w.unsqueeze(-1) if conv else w
    state[f"{name}.bias"] = torch.randn(c_out, generator=gen) * 0.1


def _bn(state, gen, name, c):
    state[f"{name}.weight"] = 1.0 + 0.2 * torch.randn(c, generator=gen)
    state[f"{name}.bias"] = 0.2 * torch.randn(c, generator=gen)
    state[f"{name}.running_mean"] = 0.3 * torch.randn(c, generator=gen)
    state[f"{name}.running_var"] = 0.5 + torch.rand(c, generator=gen)
    state[f"{name}.num_batches_tracked"] = torch.tensor(1234)


def _stn(state, gen, prefix, c_in, k):
    """STN3d(channel) / STNkd(k): conv1..3, bn1..5, fc1..3 (fc3 -> k*k)."""
    for i, (a, b) in enumerate([(c_in, 64), (64, 128), (128, 1024)], start=1):
        _linear(state, gen, f"{prefix}.conv{i}", a, b, conv=True)
        _bn(state, gen, f"{prefix}.bn{i}", b)
    for i, (a, b) in enumerate([(1024, 512), (512, 256)], start=1):
        _linear(state, gen, f"{prefix}.fc{i}", a, b)
        _bn(state, gen, f"{prefix}.bn{i + 3}", b)
    _linear(state, gen, f"{prefix}.fc3", 256, k * k)
    state[f"{prefix}.fc3.weight"] *= 0.05  # a trained T-Net stays near identity


def _source_state(k=5, feature_transform=True, channels=3, seed=0):
    """fxia22 PointNetCls(k, feature_transform) / yanx27 get_model(k, ...)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    _stn(state, gen, "feat.stn", channels, 3)
    for i, (a, b) in enumerate([(channels, 64), (64, 128), (128, 1024)], start=1):
        _linear(state, gen, f"feat.conv{i}", a, b, conv=True)
        _bn(state, gen, f"feat.bn{i}", b)
    if feature_transform:
        _stn(state, gen, "feat.fstn", 64, 64)
    for i, (a, b) in enumerate([(1024, 512), (512, 256)], start=1):
        _linear(state, gen, f"fc{i}", a, b)
        _bn(state, gen, f"bn{i}", b)
    _linear(state, gen, "fc3", 256, k)
    return state


def _bn_eval(x, s, name):
    return F.batch_norm(
        x,
        s[f"{name}.running_mean"],
        s[f"{name}.running_var"],
        s[f"{name}.weight"],
        s[f"{name}.bias"],
        training=False,
        eps=1e-5,
    )


def _conv_bn(x, s, conv, bn, relu=True):
    y = _bn_eval(F.conv1d(x, s[f"{conv}.weight"], s[f"{conv}.bias"]), s, bn)
    return F.relu(y) if relu else y


def _fc_bn(x, s, fc, bn):
    return F.relu(_bn_eval(F.linear(x, s[f"{fc}.weight"], s[f"{fc}.bias"]), s, bn))


def _ref_stn(x, s, p, k):
    for i in (1, 2, 3):
        x = _conv_bn(x, s, f"{p}.conv{i}", f"{p}.bn{i}")
    x = torch.max(x, 2, keepdim=True)[0].view(-1, 1024)
    x = _fc_bn(x, s, f"{p}.fc1", f"{p}.bn4")
    x = _fc_bn(x, s, f"{p}.fc2", f"{p}.bn5")
    x = F.linear(x, s[f"{p}.fc3.weight"], s[f"{p}.fc3.bias"])
    x = x + torch.eye(k).flatten().view(1, k * k)  # iden added in forward
    return x.view(-1, k, k)


def _reference_logits(s, x):
    """Their PointNetfeat + PointNetCls forward in eval mode, before log_softmax."""
    trans = _ref_stn(x, s, "feat.stn", 3)
    pts = x.transpose(2, 1)
    feature = pts[:, :, 3:]
    pts = torch.cat([torch.bmm(pts[:, :, :3], trans), feature], dim=2)
    x = _conv_bn(pts.transpose(2, 1), s, "feat.conv1", "feat.bn1")
    if "feat.fstn.fc3.weight" in s:
        trans_feat = _ref_stn(x, s, "feat.fstn", 64)
        x = torch.bmm(x.transpose(2, 1), trans_feat).transpose(2, 1)
    x = _conv_bn(x, s, "feat.conv2", "feat.bn2")
    x = _conv_bn(x, s, "feat.conv3", "feat.bn3", relu=False)  # no ReLU here
    x = torch.max(x, 2, keepdim=True)[0].view(-1, 1024)
    x = _fc_bn(x, s, "fc1", "bn1")
    x = _fc_bn(x, s, "fc2", "bn2")  # dropout before bn2 is a no-op in eval
    return F.linear(x, s["fc3.weight"], s["fc3.bias"])


def _clouds(batch=3, n=200, seed=1):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, n, generator=gen)
    return x / x.norm(dim=1, keepdim=True).amax(dim=2, keepdim=True)


@pytest.mark.parametrize(
    ("source", "feature_transform"),
    [("fxia22", False), ("fxia22", True), ("yanx27", True)],
)
def test_converted_model_matches_reference_forward(source, feature_transform):
    state = _source_state(k=5, feature_transform=feature_transform)
    converted = convert_state_dict(state, source)
    model, kwargs = converted.model, converted.model_kwargs
    assert kwargs["mlp1"] == [64] and kwargs["mlp2"] == [128, 1024]
    assert kwargs["feature_transform"] is feature_transform
    assert kwargs["dropout"] == {"fxia22": 0.3, "yanx27": 0.4}[source]
    assert not model.training
    x = _clouds()
    with torch.no_grad():
        want = _reference_logits(state, x)
        got = model(x)
    assert want.abs().max() > 1  # not a degenerate comparison
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert (got.argmax(1) == want.argmax(1)).all()
    # the ReLU fold also holds when the max feature is negative in some channels
    bn3_out = _conv_bn(
        _conv_bn(
            _conv_bn(x, state, "feat.conv1", "feat.bn1"),
            state,
            "feat.conv2",
            "feat.bn2",
        ),
        state,
        "feat.conv3",
        "feat.bn3",
        relu=False,
    )
    if not feature_transform:
        assert (bn3_out.amax(dim=2) < 0).any()


def test_relu_fold_is_exact_where_the_max_is_negative():
    # relu(bn'(z)) -> max -> conv' == bn(z) -> max -> conv, in float64
    gen = torch.Generator().manual_seed(0)
    bn = torch.nn.BatchNorm1d(6).double().eval()
    conv = torch.nn.Conv1d(6, 4, 1).double()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, -2.0, 0.5, 1.0, 3.0, 0.1]))
        bn.bias.copy_(torch.tensor([0.0, -1.0, 2.0, -5.0, 1.0, -0.3]))
    z = torch.randn(3, 6, 50, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        pooled = bn(z).amax(dim=2)
        assert (pooled < 0).any()  # some channels never get above zero
        want = conv(pooled.unsqueeze(2))
        _fold_missing_relu(bn, conv)
        got = conv(torch.relu(bn(z)).amax(dim=2).unsqueeze(2))
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)


def test_load_accepts_wrappers_and_data_parallel_prefix(tmp_path):
    state = _source_state(k=4, feature_transform=False)
    files = {
        "bare.pth": state,
        "yanx27.pth": {
            "epoch": 200,
            "instance_acc": 0.9,
            "class_acc": 0.86,
            "model_state_dict": state,
            "optimizer_state_dict": {"state": {}, "param_groups": [{"lr": 0.001}]},
        },
        "dp.pth": {"state_dict": {f"module.{k}": v for k, v in state.items()}},
    }
    for name, obj in files.items():
        torch.save(obj, tmp_path / name)
        loaded = load_source_state_dict(tmp_path / name)
        assert loaded.keys() == state.keys(), name


def test_load_refuses_pickles_that_run_code(tmp_path):
    path = tmp_path / "evil.pth"

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"state_dict": Evil()}, path)
    with pytest.raises(ConversionError, match=r"weights_only=True\), nothing"):
        load_source_state_dict(path)
    (tmp_path / "plain.pkl").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ConversionError, match="weights_only"):
        load_source_state_dict(tmp_path / "plain.pkl")


def test_unmappable_sources_are_refused_with_the_reason():
    with pytest.raises(ConversionError, match="rotates xyz only"):
        convert_state_dict(_source_state(channels=6), "yanx27")
    seg = _source_state()
    seg["conv4.weight"] = torch.zeros(50, 128, 1)
    with pytest.raises(ConversionError, match="segmentation network"):
        convert_state_dict(seg, "fxia22")
    with pytest.raises(ConversionError, match="unknown source 'qi'"):
        convert_state_dict(_source_state(), "qi")
    bad = _source_state(feature_transform=False)
    bad["feat.conv2.weight"] = torch.zeros(128, 32, 1)
    with pytest.raises(ConversionError, match=r"'feat.conv2.weight' has shape"):
        convert_state_dict(bad, "fxia22")
    extra = _source_state(feature_transform=False)
    extra["feat.extra.weight"] = torch.zeros(3)
    with pytest.raises(ConversionError, match="cannot map: feat.extra.weight"):
        convert_state_dict(extra, "fxia22")
    with pytest.raises(ConversionError, match="not a fxia22 PointNet classifier"):
        convert_state_dict({"w": torch.zeros(1)}, "fxia22")


def test_cli_convert_writes_a_checkpoint_with_the_same_logits(tmp_path, capsys):
    state = _source_state(k=3, feature_transform=True)
    src = tmp_path / "cls_model_249.pth"
    torch.save({"model_state_dict": state}, src)
    names = tmp_path / "names.txt"
    names.write_text("airplane\nbathtub\n\nperson\n")
    out = tmp_path / "converted.safetensors"
    argv = ["convert", str(src), "--from", "yanx27", "--classes", str(names)]
    assert main([*argv, "--out", str(out)]) == 0
    assert "yanx27" in capsys.readouterr().out
    model, meta = load_model_checkpoint(out)
    assert meta["class_names"] == ["airplane", "bathtub", "person"]
    assert meta["preprocessing"]["num_points"] == 1024
    assert meta["extra"]["converted_from"]["source"] == "yanx27"
    assert meta["preprocessing"]["up_axis"] == "y"  # trained on y-up resampled files
    x = _clouds(batch=2, n=128)
    with torch.no_grad():
        torch.testing.assert_close(
            model(x), _reference_logits(state, x), atol=1e-4, rtol=1e-4
        )
    # one name too few: one line, exit code 2
    names.write_text("airplane\nbathtub\n")
    assert main([*argv, "--out", str(tmp_path / "x.safetensors")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "2 class names given but" in err


def test_read_class_names_errors(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(ConversionError, match="no class names"):
        read_class_names(empty)
    with pytest.raises(FileNotFoundError, match="class names file not found"):
        read_class_names(tmp_path / "missing.txt")
