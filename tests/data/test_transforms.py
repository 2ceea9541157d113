import numpy as np
import pytest

from pointnet1x1.data import transforms as T


def _cloud(n=64, normals=True, seed=0):
    rng = np.random.default_rng(seed)
    xyz = rng.normal(size=(n, 3)).astype(np.float32) * [1.0, 2.0, 0.5] + 3.0
    nrm = rng.normal(size=(n, 3))
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    return np.concatenate([xyz, nrm.astype(np.float32)], axis=1) if normals else xyz


def test_normalize_points_centres_and_scales_to_unit_sphere():
    pts = _cloud()
    out = T.normalize_points(pts)
    assert out.dtype == np.float32 and out.shape == pts.shape
    np.testing.assert_allclose(out[:, :3].mean(0), 0.0, atol=1e-5)
    assert np.linalg.norm(out[:, :3], axis=1).max() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_array_equal(out[:, 3:], pts[:, 3:])  # normals untouched


def test_normalize_points_rejects_bad_shape():
    with pytest.raises(ValueError, match=r"\(N, 3\+F\), got \(5,\)"):
        T.normalize_points(np.zeros(5))


def test_sample_points_random_is_a_seeded_subset_and_pads_small_clouds():
    pts = _cloud(100)
    a = T.sample_points(pts, 30, 1)
    np.testing.assert_array_equal(a, T.sample_points(pts, 30, 1))
    assert a.shape == (30, 6) and len({tuple(r) for r in a}) == 30
    small = T.sample_points(pts[:10], 25, 0)
    assert small.shape == (25, 6) and len({tuple(r) for r in small}) == 10


def test_farthest_point_sample_matches_a_naive_loop():
    pts = _cloud(80, normals=False)
    idx = T.farthest_point_sample(pts, 16)
    chosen = [0]
    for _ in range(15):
        d = np.min([((pts - pts[c]) ** 2).sum(1) for c in chosen], axis=0)
        chosen.append(int(d.argmax()))
    np.testing.assert_array_equal(idx, chosen)
    out = T.sample_points(pts, 16, 0, method="fps")
    assert out.shape == (16, 3)
    with pytest.raises(ValueError, match="num_points must be in"):
        T.farthest_point_sample(pts, 81)
    with pytest.raises(ValueError, match="'random' or 'fps', got 'grid'"):
        T.sample_points(pts, 4, 0, method="grid")


@pytest.mark.parametrize("axis", [None, "x", "y", "z"])
def test_random_rotation_matrix_is_a_rotation(axis):
    rot = T.random_rotation_matrix(3, axis)
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    if axis is not None:  # the axis itself is fixed, the two others turn
        k = "xyz".index(axis)
        np.testing.assert_allclose(rot[:, k], np.eye(3)[k], atol=1e-12)
        angle = np.random.default_rng(3).uniform(0.0, 2.0 * np.pi)
        i, j = [c for c in range(3) if c != k]
        if axis == "y":  # right-handed: about y, z turns towards x
            i, j = j, i
        np.testing.assert_allclose(rot[[i, j], i], [np.cos(angle), np.sin(angle)])


def test_rotations_turn_normals_with_points_and_keep_up_axis():
    pts = _cloud()
    out = T.RandomRotateUp(seed=0)(pts)
    assert T.RandomRotateUp().axis == "z"
    np.testing.assert_allclose(out[:, 2], pts[:, 2], atol=1e-6)  # z is up
    np.testing.assert_allclose(out[:, 5], pts[:, 5], atol=1e-6)  # and the normals' z
    assert np.abs(out[:, 0] - pts[:, 0]).max() > 0.1
    np.testing.assert_allclose(np.linalg.norm(out[:, 3:], axis=1), 1.0, atol=1e-5)
    so3 = T.RandomRotateSO3(seed=0)(pts)
    # dot products between points and normals are invariant under a rotation
    np.testing.assert_allclose(
        (so3[:, :3] * so3[:, 3:]).sum(1), (pts[:, :3] * pts[:, 3:]).sum(1), atol=1e-4
    )


def test_scale_shift_jitter_touch_only_xyz_and_respect_bounds():
    pts = _cloud()
    rng = np.random.default_rng(0)
    s = T.RandomScale(0.5, 0.5)(pts, rng)
    np.testing.assert_allclose(s[:, :3], pts[:, :3] * 0.5, rtol=1e-6)
    sh = T.RandomShift(0.2)(pts, rng)
    delta = sh[:, :3] - pts[:, :3]
    np.testing.assert_allclose(delta, delta[:1].repeat(len(pts), 0), atol=1e-5)
    assert np.abs(delta).max() <= 0.2 + 1e-6
    j = T.Jitter(sigma=1.0, clip=0.05)(pts, rng)
    assert 0.04 < np.abs(j[:, :3] - pts[:, :3]).max() <= 0.05 + 1e-6
    for out in (s, sh, j):
        np.testing.assert_array_equal(out[:, 3:], pts[:, 3:])


def test_point_dropout_replaces_dropped_points_by_the_first_point():
    pts = _cloud(500)
    out = T.PointDropout(0.875, seed=3)(pts)
    dropped = (out != pts).any(1)
    assert out.shape == pts.shape and dropped.any()
    np.testing.assert_array_equal(
        out[dropped], np.broadcast_to(pts[0], out[dropped].shape)
    )


def test_compose_chains_with_one_rng_and_reprs():
    t = T.Compose([T.Normalize(), T.RandomSample(32), T.Jitter(), T.RandomRotateUp()])
    a = t(_cloud(), np.random.default_rng(5))
    b = t(_cloud(), np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (32, 6)
    text = repr(t)
    assert (
        "RandomSample(num_points=32)" in text
        and "Jitter(sigma=0.01, clip=0.05)" in text
    )
    assert repr(T.FarthestPointSample(8)) == "FarthestPointSample(num_points=8)"
    assert repr(T.PointDropout()) == "PointDropout(max_ratio=0.875)"


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: T.RandomSample(0), "num_points must be positive, got 0"),
        (lambda: T.RandomScale(1.5, 1.0), "low=1.5, high=1.0"),
        (lambda: T.RandomShift(-1), "shift must be >= 0, got -1"),
        (lambda: T.PointDropout(1.0), r"\[0, 1\), got 1.0"),
        (lambda: T.RandomRotateUp("w"), "'w'"),
    ],
)
def test_bad_arguments_name_the_value(make, match):
    with pytest.raises(ValueError, match=match):
        make()
