"""The one up-axis conversion: a swap measured against the real data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pointnet1x1.io.axes import (
    convert_up_axis,
    rotate_points,
    rotation_about_axis,
    up_axis_index,
    up_axis_permutation,
)


def test_y_z_is_the_column_swap():
    pts = np.arange(12, dtype=np.float32).reshape(2, 6)  # xyz + normals
    out = convert_up_axis(pts, "z", "y", triples=2)
    expected = pts[:, [0, 2, 1, 3, 5, 4]]
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(convert_up_axis(out, "y", "z", triples=2), pts)


def test_features_beyond_the_triples_stay():
    pts = np.arange(10, dtype=np.float32).reshape(2, 5)
    out = convert_up_axis(pts, "x", "z")
    np.testing.assert_array_equal(out[:, :3], pts[:, [2, 1, 0]])
    np.testing.assert_array_equal(out[:, 3:], pts[:, 3:])


def test_same_axis_is_a_copy():
    pts = np.ones((3, 3), np.float32)
    out = convert_up_axis(pts, "z", "z")
    out[0, 0] = 5.0
    assert pts[0, 0] == 1.0


def test_torch_channels_first_matches_numpy():
    x = torch.randn(2, 6, 7)
    out = convert_up_axis(x, "y", "z", triples=2, dim=1)
    assert torch.equal(out, x[:, [0, 2, 1, 3, 5, 4]])


def test_the_up_column_lands_on_the_up_column():
    for src in "xyz":
        for dst in "xyz":
            perm = up_axis_permutation(src, dst)
            assert perm[up_axis_index(dst)] == up_axis_index(src)
            assert sorted(perm) == [0, 1, 2]


def test_bad_axis_and_bad_shape():
    with pytest.raises(ValueError, match="one of x, y, z"):
        convert_up_axis(np.zeros((2, 3)), "w", "z")
    with pytest.raises(ValueError, match="at least 6 channels"):
        convert_up_axis(np.zeros((2, 4)), "y", "z", triples=2)


def _unit(points: np.ndarray) -> np.ndarray:
    points = points - points.mean(axis=0)
    return points / np.linalg.norm(points, axis=1).max()


def _chamfer(p: np.ndarray, q: np.ndarray) -> float:
    d = torch.cdist(torch.from_numpy(p), torch.from_numpy(q))
    return float(d.min(1).values.mean() + d.min(0).values.mean())


def test_swap_is_what_the_real_layouts_differ_by(shared_data):
    """airplane_0627 z up (npy tree) vs y up (resampled): the swap, not a rotation."""
    z_up = np.load(
        shared_data / "modelnet40_npy_1024/airplane/test/airplane_0627.npy"
    ).astype(np.float64)
    y_up = np.loadtxt(
        shared_data / "modelnet40_normal_resampled/airplane/airplane_0627.txt",
        delimiter=",",
    )[:, :3]
    z_up, y_up = _unit(z_up), _unit(y_up)
    converted = _chamfer(convert_up_axis(z_up, "z", "y"), y_up)
    rotated = _chamfer(np.stack([z_up[:, 0], z_up[:, 2], -z_up[:, 1]], 1), y_up)
    # the two samplings differ, so not 0; the rotation is the mirror image
    assert converted < 0.06
    assert rotated > 2 * converted


def test_rotation_about_each_axis_moves_the_next_axis_onto_the_one_after():
    # right-handed: a quarter turn about z takes x to y, about x takes y to z, ...
    for axis, src, dst in (("z", 0, 1), ("x", 1, 2), ("y", 2, 0)):
        rot = rotation_about_axis(np.pi / 2, axis)
        e = np.zeros(3)
        e[src] = 1.0
        expected = np.zeros(3)
        expected[dst] = 1.0
        np.testing.assert_allclose(rot @ e, expected, atol=1e-12)
        np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)


def test_rotation_torch_batched_equals_numpy():
    angles = torch.tensor([0.1, 1.0, -2.5], dtype=torch.float64)
    rot_t = rotation_about_axis(angles, "y")
    for k, a in enumerate(angles.tolist()):
        np.testing.assert_allclose(rot_t[k].numpy(), rotation_about_axis(a, "y"))


def test_rotate_points_turns_normals_and_keeps_features():
    rng = np.random.default_rng(0)
    pts = rng.standard_normal((5, 7))
    rot = rotation_about_axis(0.7, "z")
    out = rotate_points(pts, rot)
    np.testing.assert_allclose(out[:, :3], pts[:, :3] @ rot.T)
    np.testing.assert_allclose(out[:, 3:6], pts[:, 3:6] @ rot.T)
    np.testing.assert_array_equal(out[:, 6:], pts[:, 6:])
    xt = torch.from_numpy(pts).unsqueeze(0).repeat(2, 1, 1)
    rt = torch.from_numpy(rot).unsqueeze(0).repeat(2, 1, 1)
    np.testing.assert_allclose(rotate_points(xt, rt)[1].numpy(), out)
