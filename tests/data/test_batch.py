import numpy as np
import pytest
import torch

from pointnet1x1.data import augment_batch, collate
from pointnet1x1.data import transforms as T
from pointnet1x1.data.batch import random_rotation_matrices


def test_collate_is_the_one_transpose():
    rng = np.random.default_rng(0)
    samples = [(rng.normal(size=(64, 6)).astype(np.float32), i) for i in range(3)]
    x, y = collate(samples)
    assert x.shape == (3, 6, 64) and x.dtype == torch.float32 and x.is_contiguous()
    assert y.dtype == torch.int64 and y.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(x[1].numpy(), samples[1][0].T)
    x2, _ = collate([(torch.from_numpy(s[0]), s[1]) for s in samples])
    assert torch.equal(x, x2)


def test_collate_errors():
    with pytest.raises(ValueError, match="empty"):
        collate([])
    with pytest.raises(
        ValueError, match=r"sample 1: shape \(32, 3\) differs from \(64, 3\)"
    ):
        collate([(np.zeros((64, 3)), 0), (np.zeros((32, 3)), 1)])
    with pytest.raises(ValueError, match=r"\(N, 3\+F\), got \(64,\)"):
        collate([(np.zeros(64), 0)])


def _batch(b=2000, n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    xyz = torch.randn(b, n, 3, generator=g)
    nrm = torch.nn.functional.normalize(torch.randn(b, n, 3, generator=g), dim=2)
    return torch.cat([xyz, nrm], dim=2)


def _per_sample(x, transform, seed=0):
    rng = np.random.default_rng(seed)
    return torch.from_numpy(np.stack([transform(c, rng) for c in x.numpy()]))


def test_augment_batch_scale_and_shift_statistics_match_per_sample():
    x = _batch()
    g = torch.Generator().manual_seed(1)
    ours = augment_batch(
        x, scale=(0.8, 1.25), shift=None, jitter=None, dropout=None, generator=g
    )
    ref = _per_sample(x, T.RandomScale(0.8, 1.25))
    for out in (ours, ref):
        factor = out[:, 0, :3].norm(dim=-1) / x[:, 0, :3].norm(dim=-1)
        assert factor.min() >= 0.8 - 1e-4 and factor.max() <= 1.25 + 1e-4
        assert factor.mean().item() == pytest.approx(1.025, abs=0.01)  # uniform mean
        assert factor.std().item() == pytest.approx(0.45 / 12**0.5, abs=0.01)
        torch.testing.assert_close(out[..., 3:], x[..., 3:])
    ours = augment_batch(
        x, scale=None, shift=0.1, jitter=None, dropout=None, generator=g
    )
    ref = _per_sample(x, T.RandomShift(0.1))
    for out in (ours, ref):
        delta = (out - x)[:, :, :3]
        assert torch.allclose(delta, delta[:, :1], atol=1e-5)  # one shift per cloud
        assert delta.abs().max() <= 0.1 + 1e-6
        assert delta[:, 0].std().item() == pytest.approx(0.2 / 12**0.5, abs=0.005)


def test_augment_batch_jitter_and_dropout_statistics_match_per_sample():
    x = _batch()
    g = torch.Generator().manual_seed(2)
    ours = augment_batch(
        x, scale=None, shift=None, jitter=0.01, dropout=None, generator=g
    )
    ref = _per_sample(x, T.Jitter(0.01, 0.05))
    assert (ours - x)[..., :3].std().item() == pytest.approx(
        (ref - x)[..., :3].std().item(), rel=0.02
    )
    ours = augment_batch(
        x, scale=None, shift=None, jitter=None, dropout=0.875, generator=g
    )
    ref = _per_sample(x, T.PointDropout(0.875))
    for out in (ours, ref):
        dropped = (out != x).any(-1)
        # points replaced by the first point; fraction ~ uniform(0, 0.875) -> mean 0.4375
        assert torch.equal(out[dropped], x[:, :1].expand_as(x)[dropped])
        assert dropped.float().mean().item() == pytest.approx(0.4375, abs=0.02)


@pytest.mark.parametrize("mode", ["up", "so3"])
def test_augment_batch_rotation_statistics_and_normals(mode):
    x = _batch(b=4000, n=8)
    g = torch.Generator().manual_seed(3)
    out = augment_batch(
        x, scale=None, shift=None, jitter=None, dropout=None, rotate=mode, generator=g
    )
    torch.testing.assert_close(out[..., :3].norm(dim=-1), x[..., :3].norm(dim=-1))
    dots = lambda t: (t[..., :3] * t[..., 3:6]).sum(-1)  # noqa: E731
    torch.testing.assert_close(dots(out), dots(x), atol=1e-4, rtol=1e-4)
    rots = random_rotation_matrices(4000, mode, generator=g)
    torch.testing.assert_close(
        rots @ rots.transpose(1, 2), torch.eye(3).expand(4000, 3, 3), atol=1e-5, rtol=0
    )
    ref_t = T.RandomRotateUp() if mode == "up" else T.RandomRotateSO3()
    rng = np.random.default_rng(0)
    ref = torch.from_numpy(
        np.stack([ref_t(np.eye(3, dtype=np.float32), rng) for _ in range(4000)])
    )
    # the image of e_x: uniform on the circle (up) or on the sphere (so3); compare moments
    ex_ours, ex_ref = rots[:, :, 0], ref[:, 0, :]
    torch.testing.assert_close(ex_ours.mean(0), ex_ref.mean(0), atol=0.05, rtol=0)
    torch.testing.assert_close(
        (ex_ours**2).mean(0), (ex_ref**2).mean(0), atol=0.05, rtol=0
    )
    if mode == "up":  # about the models' up axis, z: z and the normals' z stay
        torch.testing.assert_close(out[..., 2], x[..., 2])
        torch.testing.assert_close(out[..., 5], x[..., 5])
        assert (out[..., 1] - x[..., 1]).abs().max() > 0.5


def test_augment_batch_is_reproducible_keeps_layout_and_checks_arguments():
    x = _batch(b=4, n=16)
    a = augment_batch(x, rotate="so3", generator=torch.Generator().manual_seed(0))
    b = augment_batch(x, rotate="so3", generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == x.shape and a.dtype == x.dtype
    xc = x.transpose(1, 2).contiguous()
    c = augment_batch(
        xc,
        rotate="so3",
        channels_first=True,
        generator=torch.Generator().manual_seed(0),
    )
    assert c.shape == xc.shape and torch.equal(c.transpose(1, 2), a)
    with pytest.raises(ValueError, match="'up', 'so3' or None, got 'xyz'"):
        augment_batch(x, rotate="xyz")
    with pytest.raises(ValueError, match=r"\(B, N, 3\+F\), got \(16, 6\)"):
        augment_batch(x[0])
    with pytest.raises(ValueError, match=r"0 < low <= high, got \(2.0, 1.0\)"):
        augment_batch(x, scale=(2.0, 1.0))
