"""rotation_between: the gravity alignment of scenes, in pointnet1x1.io.axes."""

from __future__ import annotations

import numpy as np
import pytest

from pointnet1x1.io.axes import rotate_points, rotation_about_axis, rotation_between


def _is_rotation(r: np.ndarray) -> bool:
    return np.allclose(r @ r.T, np.eye(3), atol=1e-12) and np.isclose(
        np.linalg.det(r), 1.0
    )


def test_axis_cases_equal_the_rotations_about_an_axis():
    # x -> y is a quarter turn about z; z -> y is minus a quarter turn about x
    np.testing.assert_allclose(
        rotation_between([1, 0, 0], "y"),
        rotation_about_axis(np.pi / 2, "z"),
        atol=1e-12,
    )
    np.testing.assert_allclose(
        rotation_between([0, 0, 5], [0, 2, 0]),
        rotation_about_axis(-np.pi / 2, "x"),
        atol=1e-12,
    )
    np.testing.assert_array_equal(rotation_between([0, 0, 2], "z"), np.eye(3))


def test_random_directions_are_turned_by_the_smallest_rotation():
    rng = np.random.default_rng(0)
    for _ in range(50):
        a, b = rng.normal(size=3), rng.normal(size=3)
        r = rotation_between(a, b)
        assert _is_rotation(r)
        np.testing.assert_allclose(
            r @ a / np.linalg.norm(a), b / np.linalg.norm(b), atol=1e-12
        )
        # the axis a x b stays, and the rotation angle is the angle between a and b
        axis = np.cross(a, b)
        np.testing.assert_allclose(r @ axis, axis, atol=1e-12)
        angle = np.arccos(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
        assert np.arccos((np.trace(r) - 1) / 2) == pytest.approx(angle, abs=1e-7)
        # points rotate with it, points-major
        pts = rng.normal(size=(4, 3))
        np.testing.assert_allclose(rotate_points(pts, r), pts @ r.T)


@pytest.mark.parametrize("a", [[0, 0, 1], [0, -1, 0], [1, 2, 3], [1e-9, 0, -1]])
def test_opposite_directions_give_a_half_turn(a):
    a = np.asarray(a, float)
    r = rotation_between(a, -a)
    assert _is_rotation(r)
    np.testing.assert_allclose(r @ a, -a, atol=1e-9)
    assert np.trace(r) == pytest.approx(-1.0)  # a rotation by pi


def test_bad_vectors_say_what_is_wrong():
    with pytest.raises(ValueError, match="src must be a non-zero finite 3-vector"):
        rotation_between([0, 0, 0], "z")
    with pytest.raises(ValueError, match="dst must be a non-zero finite 3-vector"):
        rotation_between([0, 0, 1], [1, np.nan, 0])
    with pytest.raises(ValueError, match="3-vector"):
        rotation_between([1, 2], "z")
    with pytest.raises(ValueError, match="up axis must be one of"):
        rotation_between([1, 0, 0], "w")
