import pytest
import torch
from torch import nn

from pointnet1x1.nn import SharedMLP, SharedMLP2d, fold_batchnorm


def _warm(module: nn.Module, x: torch.Tensor) -> None:
    """One training pass so batch norms get non-trivial running statistics."""
    module.train()
    module(x)
    module.eval()


def test_shapes_and_repr():
    mlp = SharedMLP([3, 64, 128])
    assert repr(mlp) == "SharedMLP(3, 64, 128)"
    assert (mlp.in_channels, mlp.out_channels) == (3, 128)
    assert mlp(torch.randn(2, 3, 64)).shape == (2, 128, 64)
    assert mlp(torch.randn(100, 3)).shape == (100, 128)
    mlp2 = SharedMLP2d([4, 16, 32])
    assert repr(mlp2) == "SharedMLP2d(4, 16, 32)"
    assert mlp2(torch.randn(2, 4, 8, 5)).shape == (2, 32, 8, 5)


def test_layers_are_conv1d_norm_act_and_bias_only_without_norm():
    mlp = SharedMLP([3, 8, 16])
    kinds = [type(m) for m in mlp.layers]
    assert kinds == [nn.Conv1d, nn.BatchNorm1d, nn.ReLU] * 2
    assert all(m.kernel_size == (1,) and m.bias is None for m in mlp.layers[::3])
    plain = SharedMLP([3, 8], norm_layer=None)
    assert plain.layers[0].bias is not None
    last = SharedMLP([3, 8, 4], plain_last=True)
    assert isinstance(last.layers[-1], nn.Conv1d) and last.layers[-1].bias is not None
    drop = SharedMLP([3, 8], dropout=0.5)
    assert isinstance(drop.layers[-1], nn.Dropout)


@pytest.mark.parametrize("train", [True, False])
def test_flat_points_give_the_same_numbers_as_channels_first(train):
    torch.manual_seed(0)
    mlp = SharedMLP([3, 16, 32]).double()
    _warm(mlp, torch.randn(4, 3, 40, dtype=torch.float64))
    mlp.train(train)
    x = torch.randn(1, 3, 64, dtype=torch.float64)
    dense = mlp(x)[0].t()  # (N, 32)
    flat = mlp(x[0].t())  # (N, 32)
    assert (dense - flat).abs().max() < 1e-12


def test_to_linear_reproduces_eval_mode_point_by_point():
    torch.manual_seed(1)
    mlp = SharedMLP([6, 32, 64, 16], bias=True).double()
    _warm(mlp, torch.randn(8, 6, 32, dtype=torch.float64) * 3 + 1)
    linear = mlp.to_linear()
    assert all(not isinstance(m, nn.BatchNorm1d) for m in linear)
    assert sum(isinstance(m, nn.Linear) for m in linear) == 3
    x = torch.randn(2, 6, 64, dtype=torch.float64)
    y = mlp(x)
    for n in range(x.shape[2]):
        assert (linear(x[:, :, n]) - y[:, :, n]).abs().max() < 1e-10


def test_to_linear_of_2d_variant():
    torch.manual_seed(2)
    mlp = SharedMLP2d([3, 8, 8]).double()
    _warm(mlp, torch.randn(2, 3, 6, 5, dtype=torch.float64))
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64)
    ref = mlp(x).permute(0, 2, 3, 1)
    out = mlp.to_linear()(x.permute(0, 2, 3, 1))
    assert (ref - out).abs().max() < 1e-10


def test_to_linear_refuses_norms_it_cannot_fold():
    mlp = SharedMLP([3, 8], norm_layer=lambda c: nn.GroupNorm(2, c))
    with pytest.raises(ValueError, match="GroupNorm"):
        mlp.to_linear()


def test_fold_batchnorm_matches_eval_batchnorm():
    torch.manual_seed(3)
    bn = nn.BatchNorm1d(5).double()
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 2)
    bn.bias.data.uniform_(-1, 1)
    bn.eval()
    w, b = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    x = torch.randn(10, 3, dtype=torch.float64)
    w2, b2 = fold_batchnorm(w, b, bn)
    assert (bn(x @ w.t() + b) - (x @ w2.t() + b2)).abs().max() < 1e-12


def test_every_parameter_gets_a_gradient_and_nothing_is_nan():
    mlp = SharedMLP([3, 16, 32])
    mlp(torch.randn(2, 3, 64)).square().mean().backward()
    for name, p in mlp.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
        assert torch.isfinite(p.grad).all(), name


def test_batch_size_one_in_eval_mode():
    mlp = SharedMLP([3, 16]).eval()
    assert mlp(torch.randn(1, 3, 10)).shape == (1, 16, 10)


@pytest.mark.parametrize(
    ("module", "shape", "expected"),
    [
        (
            SharedMLP([3, 8]),
            (2, 4, 10),
            r"expected input of shape \(B, 3, N\) or \(M, 3\), got \(2, 4, 10\)",
        ),
        (SharedMLP([3, 8]), (2, 3, 10, 1), r"got \(2, 3, 10, 1\)"),
        (SharedMLP([3, 8]), (10, 4), r"got \(10, 4\)"),
        (
            SharedMLP2d([3, 8]),
            (2, 3, 10),
            r"expected input of shape \(B, 3, N, K\), got \(2, 3, 10\)",
        ),
    ],
)
def test_wrong_input_shape_names_expected_and_received(module, shape, expected):
    with pytest.raises(ValueError, match=expected):
        module(torch.randn(*shape))


@pytest.mark.parametrize("channels", [[3], [3, 0], [3, -4]])
def test_bad_channels_are_refused(channels):
    with pytest.raises(ValueError, match="channels"):
        SharedMLP(channels)
