"""Reading and writing point clouds and meshes, on numpy.

``read_points(path)`` returns a :class:`PointCloud` (float32 ``(N, 3)`` points,
optional normals, colours in ``[0, 1]`` and extra fields); meshes are sampled
area-weighted on their surface (2,048 points by default, seeded). ``read_mesh``
returns a :class:`Mesh` (vertices, int64 triangle faces). Every malformed file
raises :class:`PointCloudFileError` (a ``ValueError``) with a one-line message
naming the file and the problem; a missing file raises ``FileNotFoundError``.

Which reader serves which format, and why:

============  ===============================================================
OFF           :mod:`.off`, our own numpy parser: fast on ModelNet (one
              ``np.fromstring`` per file) and accepts ``OFF490 518 0``.
============  ===============================================================
"""

from pointnet1x1.io.api import (
    DEFAULT_MESH_POINTS,
    SUPPORTED_EXTENSIONS,
    read_mesh,
    read_points,
)
from pointnet1x1.io.cloud import Mesh, PointCloud, PointCloudFileError
from pointnet1x1.io.off import parse_off, read_off
from pointnet1x1.io.sampling import sample_surface, subsample

__all__ = [
    "DEFAULT_MESH_POINTS",
    "SUPPORTED_EXTENSIONS",
    "Mesh",
    "PointCloud",
    "PointCloudFileError",
    "parse_off",
    "read_mesh",
    "read_off",
    "read_points",
    "sample_surface",
    "subsample",
]
