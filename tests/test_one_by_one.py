"""Numerical proofs of the identities the library is named after (float64).

Each test builds the two sides of an identity with shared weights and asserts that
the outputs and the gradients (w.r.t. the input and the weights) agree.
"""

import torch
from torch import nn

from pointnet1x1 import PointNetClassifier, SharedMLP, SharedMLP2d

TOL = 1e-10


def _grads(out: torch.Tensor, cotangent: torch.Tensor, wrt: list[torch.Tensor]):
    return torch.autograd.grad(out, wrt, grad_outputs=cotangent)


def _assert_close(a: torch.Tensor, b: torch.Tensor, tol: float = TOL) -> None:
    assert a.shape == b.shape, (a.shape, b.shape)
    assert (a - b).abs().max().item() < tol


def test_conv1d_1x1_is_a_linear_layer_shared_by_every_point():
    torch.manual_seed(0)
    B, C, D, N = 2, 5, 7, 64
    x = torch.randn(B, C, N, dtype=torch.float64, requires_grad=True)
    conv = nn.Conv1d(C, D, kernel_size=1).double()
    linear = nn.Linear(C, D).double()
    with torch.no_grad():
        linear.weight.copy_(conv.weight[:, :, 0])
        linear.bias.copy_(conv.bias)

    y_conv = conv(x)  # (B, D, N)
    y_lin = torch.stack([linear(x[:, :, n]) for n in range(N)], dim=2)  # (B, D, N)
    _assert_close(y_conv, y_lin)

    g = torch.randn_like(y_conv)
    gx_c, gw_c, gb_c = _grads(y_conv, g, [x, conv.weight, conv.bias])
    gx_l, gw_l, gb_l = _grads(y_lin, g, [x, linear.weight, linear.bias])
    _assert_close(gx_c, gx_l)
    _assert_close(gw_c[:, :, 0], gw_l)
    _assert_close(gb_c, gb_l)


def test_the_librarys_shared_mlp_is_a_linear_layer_shared_by_every_point():
    # identity 1 on SharedMLP itself, in training mode: Conv1d 1x1 + BatchNorm1d +
    # ReLU over (B, C, N) equals one nn.Linear applied to each point, then batch
    # norm over all B * N points as one batch, then ReLU
    torch.manual_seed(7)
    B, C, D, N = 3, 4, 6, 20
    mlp = SharedMLP([C, D], bias=True).double().train()
    conv, bn = mlp.layers[0], mlp.layers[1]
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.normal_()
    linear = nn.Linear(C, D).double()
    with torch.no_grad():
        linear.weight.copy_(conv.weight[:, :, 0])
        linear.bias.copy_(conv.bias)
    x = torch.randn(B, C, N, dtype=torch.float64, requires_grad=True)
    y = mlp(x)  # (B, D, N)

    per_point = torch.stack([linear(x[:, :, n]) for n in range(N)], dim=2)  # (B, D, N)
    rows = per_point.permute(0, 2, 1).reshape(B * N, D)  # every point, one batch
    mean, var = rows.mean(0), rows.var(0, unbiased=False)
    normed = (rows - mean) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias
    by_hand = normed.relu().reshape(B, N, D).permute(0, 2, 1)
    _assert_close(y, by_hand)
    g = torch.randn_like(y)
    gx, gw = _grads(y, g, [x, conv.weight])
    gx_h, gw_h = _grads(by_hand, g, [x, linear.weight])
    _assert_close(gx, gx_h)
    _assert_close(gw[:, :, 0], gw_h)
    # and flat (M, C) points (the ragged layout) give the same numbers
    flat = x.detach().permute(0, 2, 1).reshape(B * N, C)
    _assert_close(mlp(flat), by_hand.detach().permute(0, 2, 1).reshape(B * N, D))


def test_shared_mlp_equals_its_linear_version_applied_point_by_point():
    torch.manual_seed(1)
    mlp = SharedMLP([3, 16, 32]).double()
    mlp.train()
    mlp(torch.randn(4, 3, 50, dtype=torch.float64))  # non-trivial running stats
    mlp.eval()
    per_point = mlp.to_linear()
    x = torch.randn(2, 3, 64, dtype=torch.float64, requires_grad=True)
    y = mlp(x)
    y_points = torch.stack([per_point(x[:, :, n]) for n in range(x.shape[2])], dim=2)
    _assert_close(y, y_points)
    g = torch.randn_like(y)
    _assert_close(_grads(y, g, [x])[0], _grads(y_points, g, [x])[0])


def test_dense_layer_on_flat_image_is_a_conv_with_one_full_size_kernel_per_unit():
    torch.manual_seed(2)
    B, H, W = 2, 28, 28
    K = H * W  # 784 output units, i.e. 784 filters of one 28x28 kernel each
    image = torch.randn(B, 1, H, W, dtype=torch.float64, requires_grad=True)
    dense = nn.Linear(H * W, K).double()
    conv = nn.Conv2d(1, K, kernel_size=(H, W)).double()
    with torch.no_grad():
        conv.weight.copy_(dense.weight.view(K, 1, H, W))
        conv.bias.copy_(dense.bias)

    y_dense = dense(image.flatten(1))  # (B, 784)
    y_conv = conv(image)  # (B, 784, 1, 1)
    _assert_close(y_dense, y_conv.flatten(1))

    g = torch.randn_like(y_dense)
    gx_d, gw_d = _grads(y_dense, g, [image, dense.weight])
    gx_c, gw_c = _grads(y_conv.flatten(1), g, [image, conv.weight])
    _assert_close(gx_d, gx_c)
    _assert_close(gw_d, gw_c.view(K, H * W))


def test_dense_layer_is_a_1x1_conv_over_784_channels_of_one_pixel():
    torch.manual_seed(3)
    B, H, W = 2, 28, 28
    K = H * W
    image = torch.randn(B, 1, H, W, dtype=torch.float64, requires_grad=True)
    dense = nn.Linear(H * W, K).double()
    conv = nn.Conv2d(H * W, K, kernel_size=1).double()  # 784 filters of 1x1 kernels
    with torch.no_grad():
        conv.weight.copy_(dense.weight.view(K, H * W, 1, 1))
        conv.bias.copy_(dense.bias)

    y_dense = dense(image.flatten(1))
    y_conv = conv(image.reshape(B, H * W, 1, 1))  # (B, 784, 1, 1)
    _assert_close(y_dense, y_conv.flatten(1))

    g = torch.randn_like(y_dense)
    gx_d, gw_d = _grads(y_dense, g, [image, dense.weight])
    gx_c, gw_c = _grads(y_conv.flatten(1), g, [image, conv.weight])
    _assert_close(gx_d, gx_c)
    _assert_close(gw_d, gw_c.view(K, H * W))


def test_1x1_conv_over_rgb_image_is_a_per_pixel_dense_layer():
    torch.manual_seed(4)
    B, H, W, D = 2, 9, 11, 8
    image = torch.randn(B, 3, H, W, dtype=torch.float64, requires_grad=True)
    conv = nn.Conv2d(3, D, kernel_size=1).double()
    dense = nn.Linear(3, D).double()
    with torch.no_grad():
        dense.weight.copy_(conv.weight.view(D, 3))
        dense.bias.copy_(conv.bias)

    y_conv = conv(image)  # (B, D, H, W)
    y_dense = dense(image.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # per pixel
    _assert_close(y_conv, y_dense)
    # and pixel by pixel, literally
    i, j = 4, 7
    _assert_close(y_conv[:, :, i, j], dense(image[:, :, i, j]))

    g = torch.randn_like(y_conv)
    gx_c, gw_c = _grads(y_conv, g, [image, conv.weight])
    gx_d, gw_d = _grads(y_dense, g, [image, dense.weight])
    _assert_close(gx_c, gx_d)
    _assert_close(gw_c.view(D, 3), gw_d)


def test_the_librarys_2d_shared_mlp_over_an_image_is_a_per_pixel_dense_layer():
    # identity 4 on SharedMLP2d (the PointNet++ block), norm and activation off
    torch.manual_seed(8)
    B, H, W, D = 2, 5, 7, 4
    mlp = SharedMLP2d([3, D], norm_layer=None, act_layer=None).double()
    conv = mlp.layers[0]
    dense = nn.Linear(3, D).double()
    with torch.no_grad():
        dense.weight.copy_(conv.weight.view(D, 3))
        dense.bias.copy_(conv.bias)
    image = torch.randn(B, 3, H, W, dtype=torch.float64, requires_grad=True)
    y = mlp(image)
    for i in range(H):
        for j in range(W):
            _assert_close(y[:, :, i, j], dense(image[:, :, i, j]))
    # identity 5 through it: summed class maps = dense on summed features + (HW-1) b
    summed = y.sum(dim=(2, 3))
    _assert_close(summed, dense(image.sum(dim=(2, 3))) + (H * W - 1) * dense.bias)
    g = torch.randn_like(summed)
    gx, gw = _grads(summed, g, [image, conv.weight])
    gx_d, gw_d = _grads(dense(image.sum(dim=(2, 3))), g, [image, dense.weight])
    _assert_close(gx, gx_d)
    _assert_close(gw.view(D, 3), gw_d)


def test_summed_1x1_class_maps_equal_a_dense_layer_on_summed_features():
    torch.manual_seed(5)
    B, C, H, W, K = 2, 16, 7, 5, 10
    features = torch.randn(B, C, H, W, dtype=torch.float64, requires_grad=True)
    conv = nn.Conv2d(C, K, kernel_size=1).double()  # one class map per class
    dense = nn.Linear(C, K).double()
    with torch.no_grad():
        dense.weight.copy_(conv.weight.view(K, C))
        dense.bias.copy_(conv.bias)

    summed_maps = conv(features).sum(dim=(2, 3))  # (B, K)
    positions = H * W
    # W (sum_p f_p) + b counts the bias once; the maps count it once per position.
    dense_on_sum = dense(features.sum(dim=(2, 3))) + (positions - 1) * dense.bias
    _assert_close(summed_maps, dense_on_sum)
    # Without the bias correction the two differ by (H*W - 1) * b.
    assert (summed_maps - dense(features.sum(dim=(2, 3)))).abs().max() > 1e-3

    g = torch.randn_like(summed_maps)
    gx_c, gw_c, gb_c = _grads(summed_maps, g, [features, conv.weight, conv.bias])
    gx_d, gw_d, gb_d = _grads(dense_on_sum, g, [features, dense.weight, dense.bias])
    _assert_close(gx_c, gx_d)
    _assert_close(gw_c.view(K, C), gw_d)
    _assert_close(gb_c, gb_d)


def test_pointnet_is_invariant_to_the_order_of_the_points():
    torch.manual_seed(6)
    model = PointNetClassifier(num_classes=5).double()
    model.train()
    model(torch.randn(4, 3, 64, dtype=torch.float64))  # non-trivial BN statistics
    model.eval()
    x = torch.randn(2, 3, 64, dtype=torch.float64, requires_grad=True)
    perm = torch.randperm(64)
    y = model(x)
    y_perm = model(x[:, :, perm])
    _assert_close(y, y_perm, tol=1e-9)
    # the gradient follows the points: d y / d x[perm] == (d y / d x)[perm]
    g = torch.randn_like(y)
    (gx,) = _grads(y, g, [x])
    x2 = x.detach()[:, :, perm].requires_grad_(True)
    (gx2,) = _grads(model(x2), g, [x2])
    _assert_close(gx[:, :, perm], gx2, tol=1e-9)
    # a change of one point does change the output (the test can fail)
    x3 = x.detach().clone()
    x3[:, :, 0] += 5.0
    assert (model(x3) - y).abs().max() > 1e-6
