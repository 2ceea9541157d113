"""Scene parameters: defaults derived from the scan's spacing, validation, up."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pointnet1x1.scene import SceneParams, median_spacing, resolve_params
from pointnet1x1.scene.params import parse_up


def _grid(step: float, n: int = 60) -> np.ndarray:
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    return np.stack([i.ravel() * step, j.ravel() * step, np.zeros(n * n)], axis=1)


def test_median_spacing_of_a_grid_in_any_unit():
    # every point of a square grid has its nearest neighbour one step away
    assert median_spacing(_grid(0.01)) == pytest.approx(0.01)
    assert median_spacing(_grid(10.0)) == pytest.approx(10.0)  # millimetres
    # duplicated points (a scan saved twice over) do not make the spacing zero
    doubled = np.concatenate([_grid(0.01), _grid(0.01)])
    assert median_spacing(doubled) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="at least 2 points"):
        median_spacing(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="duplicate"):
        median_spacing(np.zeros((8, 3)))


def test_resolve_fills_the_distances_from_the_spacing():
    resolved = resolve_params(SceneParams(), _grid(0.01))
    assert resolved.voxel_size == pytest.approx(0.03)  # 3 spacings
    assert resolved.plane_distance == pytest.approx(0.06)  # 2 voxels
    assert resolved.cluster_eps == pytest.approx(0.09)  # 3 voxels
    assert resolved.support_height is None  # per plane, from its footprint
    given = resolve_params(
        SceneParams(voxel_size=0.05, plane_distance=0.02), _grid(0.01)
    )
    assert (given.voxel_size, given.plane_distance) == (0.05, 0.02)
    assert given.cluster_eps == pytest.approx(0.15)
    # the other fields are kept as they were
    for f in dataclasses.fields(SceneParams):
        if f.name not in ("voxel_size", "plane_distance", "cluster_eps"):
            assert getattr(resolved, f.name) == getattr(SceneParams(), f.name)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"voxel_size": -1.0}, "voxel_size must be a positive number, got -1.0"),
        ({"cluster_eps": float("nan")}, "cluster_eps must be a positive number"),
        ({"plane_iterations": 0}, "plane_iterations must be at least 1, got 0"),
        ({"num_planes": -1}, "num_planes must be 0 or more, got -1"),
        ({"min_plane_fraction": 0.0}, r"min_plane_fraction must be in \(0, 1\]"),
        (
            {"min_cluster_points": 100, "max_cluster_points": 10},
            r"max_cluster_points \(10\) is below min_cluster_points \(100\)",
        ),
        ({"up": "w"}, "up must be an axis"),
        ({"up": (0.0, 0.0, 0.0)}, "up must be a non-zero 3-vector"),
    ],
)
def test_bad_parameters_say_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SceneParams(**kwargs)


def test_up_directions():
    np.testing.assert_array_equal(parse_up("-y"), [0, -1, 0])
    np.testing.assert_array_equal(parse_up("+Z"), [0, 0, 1])
    np.testing.assert_allclose(parse_up((0, 3, 4)), [0, 0.6, 0.8])
    assert SceneParams(up=(0.0, 1.0, 0.0)).to_dict()["up"] == [0.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="call resolve_params first"):
        SceneParams().distance("voxel_size")
