import pytest
import torch

from pointnet1x1.nn import TNet, global_max_pool, orthogonality_loss


def test_untrained_tnet_is_the_identity():
    tnet = TNet(3)
    out = tnet(torch.randn(2, 3, 64))
    assert out.shape == (2, 3, 3)
    assert torch.equal(out, torch.eye(3).expand(2, 3, 3))
    text = repr(tnet)
    assert "k=3, in_channels=3" in text and "SharedMLP(3, 64, 128, 1024)" in text


def test_tnet_from_more_channels_and_gradients():
    tnet = TNet(3, in_channels=6)
    out = tnet(torch.randn(2, 6, 32))
    assert out.shape == (2, 3, 3)
    (out * torch.randn_like(out)).sum().backward()
    for name, p in tnet.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert tnet.out.weight.grad.abs().sum() > 0


def test_orthogonality_loss():
    q, _ = torch.linalg.qr(torch.randn(4, 5, 5, dtype=torch.float64))
    assert orthogonality_loss(q).item() < 1e-20
    a = torch.randn(4, 5, 5, dtype=torch.float64)
    naive = (
        sum(((torch.eye(5, dtype=torch.float64) - m @ m.T) ** 2).sum() for m in a) / 4
    )
    assert torch.allclose(orthogonality_loss(a), naive)
    with pytest.raises(ValueError, match=r"\(B, k, k\), got \(5, 5\)"):
        orthogonality_loss(a[0])


def test_masked_max_pool_ignores_padding():
    x = torch.randn(2, 4, 10)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[1, 6:] = False
    x[1, :, 6:] = 1e6  # padding that must not win
    out = global_max_pool(x, mask)
    assert torch.equal(out[0], x[0].amax(dim=1))
    assert torch.equal(out[1], x[1, :, :6].amax(dim=1))


def test_batch_vector_pool_equals_per_cloud_pool():
    torch.manual_seed(0)
    sizes = [5, 9, 3]
    clouds = [torch.randn(n, 4) for n in sizes]
    flat = torch.cat(clouds)
    batch = torch.repeat_interleave(torch.arange(3), torch.tensor(sizes))
    perm = torch.randperm(len(flat))  # order of rows does not matter
    out = global_max_pool(flat[perm], batch=batch[perm])
    ref = torch.stack([c.amax(dim=0) for c in clouds])
    assert torch.equal(out, ref)


def test_tnet_with_batch_vector_equals_dense_for_equal_clouds():
    torch.manual_seed(1)
    tnet = TNet(3).eval()
    torch.nn.init.normal_(tnet.out.weight, std=0.01)
    x = torch.randn(2, 3, 16)
    dense = tnet(x)
    flat = x.transpose(1, 2).reshape(-1, 3)
    batch = torch.arange(2).repeat_interleave(16)
    assert torch.allclose(tnet(flat, batch=batch, num_clouds=2), dense, atol=1e-6)


def test_pool_shape_errors():
    with pytest.raises(ValueError, match=r"\(B, C, N\), got \(4, 10\)"):
        global_max_pool(torch.randn(4, 10))
    with pytest.raises(
        ValueError, match=r"mask must have shape \(B, N\) = \(2, 10\), got \(2, 9\)"
    ):
        global_max_pool(torch.randn(2, 4, 10), torch.ones(2, 9, dtype=torch.bool))
