"""The fast inference path computes what the plain PointNet computes."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from pointnet1x1.models import PointNetClassifier, PointNetSegmenter, _fast_ops, fast
from pointnet1x1.models.fast import (
    FastPointNetClassifier,
    forward_train,
    has_native_bf16,
    optimize_for_inference,
)
from pointnet1x1.nn import SharedMLP

ATOL = 1e-4


@pytest.fixture(autouse=True)
def _one_thread(request: pytest.FixtureRequest):
    """Run on one thread: these tests check numbers, and OpenMP threads on a busy
    shared CI machine spin at every barrier (10x slower). One test keeps the
    default thread count so the multi-threaded kernels are covered too."""
    if request.node.name == "test_default_threads_equal_plain_model":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _trained_like(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every batch norm non-trivial statistics and every T-Net a real matrix."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) * 2 - 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
        for name in ("input_tnet", "feature_tnet"):
            tnet = getattr(model.encoder, name, None)
            if tnet is not None:
                w = tnet.out.weight
                w.copy_(torch.randn(w.shape, generator=gen) * 0.05)
    return model.eval()


def _cloud(batch: int, channels: int, points: int, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, channels, points, generator=gen)


CONFIGS = {
    "paper": {},
    "normals": {"in_channels": 6},
    "seven_channels": {"in_channels": 7},
    "vanilla": {"input_transform": False, "feature_transform": False},
    "input_tnet_only": {"feature_transform": False},
    "feature_tnet_only": {"input_transform": False},
    "no_bias": {"bias": False},
    "small_widths": {"mlp1": (16,), "mlp2": (24,), "head": (20,), "num_classes": 5},
    "deep": {"mlp1": (16, 16, 8), "mlp2": (8, 32, 64), "head": (32, 16, 8)},
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_fp32_equals_plain_model(name: str) -> None:
    torch.manual_seed(0)
    model = _trained_like(PointNetClassifier(**{"num_classes": 7, **CONFIGS[name]}))
    x = _cloud(3, model.in_channels, 77)
    fast_model = optimize_for_inference(model)
    want = model(x)
    got = fast_model(x)
    assert got.shape == want.shape == (3, model.num_classes)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want, atol=ATOL, rtol=0)


@pytest.mark.parametrize(
    ("batch", "points", "chunk"),
    [(1, 1, 4096), (5, 33, 1), (6, 130, 300), (9, 64, 4096)],
)
def test_odd_batches_points_and_chunks(batch: int, points: int, chunk: int) -> None:
    torch.manual_seed(0)
    model = _trained_like(PointNetClassifier(10))
    x = _cloud(batch, 3, points)
    got = optimize_for_inference(model, chunk_points=chunk)(x)
    torch.testing.assert_close(got, model(x), atol=ATOL, rtol=0)


def test_default_threads_equal_plain_model() -> None:
    model = _trained_like(PointNetClassifier(10, in_channels=6))
    x = _cloud(9, 6, 64)
    got = optimize_for_inference(model, chunk_points=128)(x)
    torch.testing.assert_close(got, model(x), atol=ATOL, rtol=0)


def test_empty_batch() -> None:
    model = _trained_like(PointNetClassifier(4, mlp1=(8,), mlp2=(16,), head=(8,)))
    assert optimize_for_inference(model)(torch.zeros(0, 3, 10)).shape == (0, 4)


def test_mask_equals_plain_model() -> None:
    torch.manual_seed(0)
    model = _trained_like(PointNetClassifier(6, in_channels=6))
    x = _cloud(4, 6, 50)
    mask = torch.rand(4, 50, generator=torch.Generator().manual_seed(3)) > 0.4
    mask[:, 0] = True
    got = optimize_for_inference(model, chunk_points=100)(x, mask)
    torch.testing.assert_close(got, model(x, mask), atol=ATOL, rtol=0)


def test_point_permutation_invariance() -> None:
    model = _trained_like(PointNetClassifier(5))
    x = _cloud(2, 3, 40)
    fast_model = optimize_for_inference(model)
    perm = torch.randperm(40, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(
        fast_model(x[:, :, perm]), fast_model(x), atol=1e-5, rtol=0
    )


def test_source_model_untouched_and_not_shared() -> None:
    model = PointNetClassifier(5).train()
    _trained_like(model).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fast_model = optimize_for_inference(model)
    assert model.training  # not switched to eval
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    x = _cloud(2, 3, 30)
    want = fast_model(x)
    with torch.no_grad():  # changing the source afterwards does not reach the copy
        model.classifier.bias.add_(1.0)
    torch.testing.assert_close(fast_model(x), want)
    assert list(fast_model.parameters()) == []


def test_plain_matmul_fallback_equals_onednn(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _trained_like(PointNetClassifier(8, in_channels=6))
    x = _cloud(3, 6, 45)
    monkeypatch.setattr(_fast_ops, "_onednn_ok", lambda dtype: False)
    plain = optimize_for_inference(model)
    assert all(layer.packed is None for layer in plain.mlp2)
    torch.testing.assert_close(plain(x), model(x), atol=ATOL, rtol=0)


def test_bf16_close_with_same_labels() -> None:
    torch.manual_seed(0)
    model = _trained_like(PointNetClassifier(10, in_channels=6))
    x = _cloud(16, 6, 128)
    # Built directly: bf16 runs (emulated where it is not native) on every CPU.
    fast_bf16 = FastPointNetClassifier(model, "bf16").eval()
    assert fast_bf16.mlp2[-1].weight.dtype == torch.bfloat16
    want = model(x)
    got = fast_bf16(x)
    assert got.dtype == torch.float32
    scale = want.abs().max().item()
    assert (got - want).abs().max().item() < 0.05 * scale
    top2 = want.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > 0.05 * scale  # labels that bf16 cannot flip
    assert torch.equal(got.argmax(1)[clear], want.argmax(1)[clear])


def test_bf16_falls_back_to_fp32_with_one_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = _trained_like(PointNetClassifier(4, mlp1=(8,), mlp2=(16,), head=(8,)))
    monkeypatch.setattr(fast, "has_native_bf16", lambda: False)
    monkeypatch.setattr(fast, "_warned_bf16", False)
    with pytest.warns(RuntimeWarning, match="no native bf16"):
        first = optimize_for_inference(model, "bf16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = optimize_for_inference(model, "bf16")
    assert first.precision == second.precision == "fp32"


def test_has_native_bf16_is_bool() -> None:
    assert isinstance(has_native_bf16(), bool)


def test_errors() -> None:
    with pytest.raises(ValueError, match="PointNetSegmenter"):
        optimize_for_inference(PointNetSegmenter(4, 2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="got 4"):
        optimize_for_inference(PointNetClassifier(3, in_channels=4))
    model = PointNetClassifier(3, mlp1=(8,), mlp2=(16,), head=(8,))
    with pytest.raises(ValueError, match="'fp16'"):
        optimize_for_inference(model, "fp16")
    fast_model = optimize_for_inference(model)
    with pytest.raises(ValueError, match=r"\(B, 3, N\), got \(2, 6, 10\)"):
        fast_model(torch.zeros(2, 6, 10))
    with pytest.raises(RuntimeError, match="eval-only"):
        fast_model.train()
    assert not fast_model.eval().training


def test_rejects_layers_it_cannot_fold() -> None:
    model = PointNetClassifier(3, mlp1=(8,), mlp2=(16,), head=(8,))
    model.encoder.mlp2 = SharedMLP([8, 16], act_layer=nn.GELU)
    with pytest.raises(ValueError, match="encoder.mlp2"):
        optimize_for_inference(model)


# --- the identities the fast path relies on, one by one ---------------------------


def test_identity_bias_relu_after_max_pool() -> None:
    gen = torch.Generator().manual_seed(0)
    z, b = torch.randn(3, 50, 8, generator=gen), torch.randn(8, generator=gen)
    torch.testing.assert_close((z + b).relu().amax(1), (z.amax(1) + b).relu())


def test_identity_transform_folded_into_next_layer() -> None:
    gen = torch.Generator().manual_seed(0)
    x, t = torch.randn(2, 20, 6, generator=gen), torch.randn(2, 3, 3, generator=gen)
    w, b = torch.randn(5, 6, generator=gen), torch.randn(5, generator=gen)
    layer = _fast_ops.DenseLayer(w, b, torch.float32, pack=True)
    moved = torch.cat([x[..., :3] @ t, x[..., 3:] @ t], dim=2)  # xyz and normals
    want = (moved @ w.t() + b).relu()
    got = layer.batched(x, layer.folded(t, [(0, 3), (3, 6)]))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_identity_channels_last_matmul_equals_conv1d_with_bn() -> None:
    mlp = _trained_like_mlp(SharedMLP([4, 9, 7]))
    x = _cloud(2, 4, 15)
    layers = _fast_ops.dense_layers(mlp, torch.float32, True, "mlp")
    h = x.transpose(1, 2).reshape(-1, 4)  # (B * N, C) channels-last rows
    for layer in layers:
        h = layer(h)
    torch.testing.assert_close(
        h.view(2, 15, 7).transpose(1, 2), mlp(x), atol=1e-5, rtol=0
    )


def _trained_like_mlp(mlp: SharedMLP) -> SharedMLP:
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for m in mlp.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.randn(m.num_features, generator=gen))
    return mlp.eval()


# --- forward_train: fused batch norm + ReLU + max pool for training ---------------


def _cancelled_biases(model: nn.Module) -> set[str]:
    """Conv biases directly followed by a batch norm: their exact gradient is zero."""
    names = set()
    for prefix, module in model.named_modules():
        layers = list(getattr(module, "layers", []))
        for i, layer in enumerate(layers[:-1]):
            if isinstance(layer, nn.Conv1d) and isinstance(
                layers[i + 1], nn.BatchNorm1d
            ):
                names.add(f"{prefix}.layers.{i}.bias")
    return names


TRAIN_CONFIGS = {
    "paper": {},
    "normals": {"in_channels": 6},
    "vanilla": {"input_transform": False, "feature_transform": False},
    "no_bias": {"bias": False, "mlp2": (32, 64)},
}


@pytest.mark.parametrize(
    "name", ["paper", "normals", "vanilla", "no_bias", "negative_gamma"]
)
def test_forward_train_equals_model(name: str) -> None:
    """Same logits, gradients and running statistics as the model, in float64.

    float64, so that no two points tie for a max within rounding (in float32 a
    few of the 4 x 1024 pooled channels are within an ulp, and the two paths
    may then send the gradient to different, equally valid points).
    """
    torch.manual_seed(0)
    kwargs = TRAIN_CONFIGS.get(name, {})
    plain = PointNetClassifier(5, dropout=0.0, **kwargs).double().train()
    if name == "negative_gamma":  # a decreasing batch norm: the max is at the min
        with torch.no_grad():
            plain.encoder.mlp2.layers[-2].weight[::2].mul_(-1.0)
            plain.encoder.input_tnet.mlp.layers[-2].momentum = None
    fused = copy.deepcopy(plain)
    x = _cloud(4, plain.in_channels, 48).double()
    y = torch.tensor([0, 1, 2, 3])
    logits, aux = plain(x, return_aux=True)
    got, got_aux = forward_train(fused, x)
    torch.testing.assert_close(got, logits, atol=1e-10, rtol=0)
    torch.testing.assert_close(got_aux, aux, atol=1e-12, rtol=1e-10)
    (F.cross_entropy(logits, y) + aux).backward()
    (F.cross_entropy(got, y) + got_aux).backward()
    skip = _cancelled_biases(plain)
    for (pname, p), q in zip(plain.named_parameters(), fused.parameters(), strict=True):
        if pname in skip:  # both are rounding noise around 0
            assert q.grad is not None and q.grad.abs().max() < 1e-10
            continue
        scale = max(p.grad.abs().max().item(), 1e-12)
        assert (q.grad - p.grad).abs().max().item() <= 1e-8 * scale + 1e-14, pname
    for (bname, a), b in zip(plain.named_buffers(), fused.buffers(), strict=True):
        torch.testing.assert_close(b, a, atol=1e-10, rtol=1e-10, msg=bname)


@pytest.mark.parametrize("points", [1024, 1000])
def test_forward_train_full_size(points: int) -> None:
    """The paper's 1,024 points (two-stage argmax) and a count it cannot block:
    float32 logits, float64 gradients."""
    torch.manual_seed(0)
    plain = PointNetClassifier(5, dropout=0.0, mlp2=(64, 128, 96)).train()
    fused = copy.deepcopy(plain)
    x = _cloud(3, 3, points)
    torch.testing.assert_close(
        forward_train(fused, x)[0], plain(x, return_aux=True)[0], atol=ATOL, rtol=0
    )
    plain, fused, x = plain.double(), fused.double(), x.double()
    plain(x, return_aux=True)[0].square().sum().backward()
    forward_train(fused, x)[0].square().sum().backward()
    skip = _cancelled_biases(plain)
    for (pname, p), q in zip(plain.named_parameters(), fused.parameters(), strict=True):
        if pname not in skip:
            # + 1e-12: a pooled BN bias has an exactly-zero gradient here (the
            # head's batch norm cancels a shift common to the batch)
            scale = p.grad.abs().max().item()
            assert (q.grad - p.grad).abs().max().item() <= 1e-8 * scale + 1e-12, pname


def test_forward_train_eval_mode_and_mask_run_the_model() -> None:
    model = _trained_like(PointNetClassifier(3, mlp1=(8,), mlp2=(16,), head=(8,)))
    x = _cloud(2, 3, 20)
    got, want = forward_train(model, x), model(x, return_aux=True)  # eval mode
    torch.testing.assert_close(got[0], want[0])
    model.train()
    mask = torch.ones(2, 20, dtype=torch.bool)
    torch.manual_seed(0)  # the same dropout draws
    got = forward_train(model, x, mask)
    torch.manual_seed(0)
    torch.testing.assert_close(got[0], model(x, mask, return_aux=True)[0])
    with pytest.raises(ValueError, match="PointNetSegmenter"):
        forward_train(PointNetSegmenter(4, 2), x)  # type: ignore[arg-type]


def test_forward_train_bf16_matches_model_under_autocast() -> None:
    """precision="bf16": fp32 outputs within bf16 rounding of the exact fp32 model
    (8-bit mantissas through a dozen layers: a few percent, bounded at 10%);
    every gradient finite, and all of them together pointing the way of the
    fp32 ones (per parameter they may differ more: in bf16 more points tie for
    a max, and the gradient then goes to another of them)."""
    torch.manual_seed(0)
    model = PointNetClassifier(3, dropout=0.0).train()
    ref = copy.deepcopy(model)
    x = _cloud(4, 3, 64)
    logits, aux = forward_train(model, x, precision="bf16")
    ref_logits, _ = copy.deepcopy(ref)(x, return_aux=True)
    assert logits.dtype == torch.float32 and aux.dtype == torch.float32
    assert (logits - ref_logits).abs().max() < 0.1 * ref_logits.abs().max()
    logits.square().sum().backward()
    ref_logits, _ = forward_train(ref, x)
    ref_logits.square().sum().backward()
    for name, p in model.named_parameters():
        assert torch.isfinite(p.grad).all(), name
    got = torch.cat([p.grad.flatten() for p in model.parameters()])
    want = torch.cat([q.grad.flatten() for q in ref.parameters()])
    assert F.cosine_similarity(got, want, dim=0) > 0.9  # measured 0.93


@pytest.mark.parametrize(
    ("asked", "native", "device", "expected"),
    [
        ("auto", True, "cpu", "bf16"),
        ("auto", False, "cpu", "fp32"),
        ("fp32", True, "cpu", "fp32"),
        ("bf16", False, "cpu", "bf16"),
    ],
)
def test_training_precision_auto_follows_the_cpu_flags(
    monkeypatch: pytest.MonkeyPatch,
    asked: str,
    native: bool,
    device: str,
    expected: str,
) -> None:
    import pointnet1x1.models.fast as fast

    monkeypatch.setattr(fast, "has_native_bf16", lambda: native)
    precision, reason = fast.training_precision(asked, device)
    assert precision == expected
    assert ("no native bf16" in reason) == (asked == "auto" and not native)
    with pytest.raises(ValueError, match="precision must be"):
        fast.training_precision("fp16", device)
