import pickle

import numpy as np
import pytest

from pointnet1x1.io import PointCloud, PointCloudFileError


def test_point_cloud_casts_validates_and_selects():
    cloud = PointCloud(
        np.arange(12.0).reshape(4, 3),
        normals=np.ones((4, 3)),
        fields={"label": np.arange(4)},
    )
    assert cloud.points.dtype == cloud.normals.dtype == np.float32
    assert len(cloud) == 4 and repr(cloud) == (
        "PointCloud(num_points=4, extras=['normals', 'label'])"
    )
    sub = cloud.select(np.array([True, False, True, False]))
    np.testing.assert_array_equal(sub.fields["label"], [0, 2])
    assert cloud.to_array(normals=True).shape == (4, 6)
    with pytest.raises(ValueError, match="this cloud has no colors"):
        cloud.to_array(colors=True)
    with pytest.raises(
        ValueError, match=r"points must have shape \(N, 3\), got \(4,\)"
    ):
        PointCloud(np.zeros(4))
    with pytest.raises(ValueError, match=r"normals must have shape \(4, 3\)"):
        PointCloud(np.zeros((4, 3)), normals=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="field 'label' has 3 rows, expected 4"):
        PointCloud(np.zeros((4, 3)), fields={"label": np.arange(3)})


def test_error_is_one_line_value_error_and_pickles():
    err = PointCloudFileError("bad\nthing", "a.ply")
    assert isinstance(err, ValueError)
    assert str(err) == "a.ply: bad thing" and err.path == "a.ply"
    assert str(pickle.loads(pickle.dumps(err))) == str(err)
