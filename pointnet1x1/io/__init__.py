"""Reading and writing point clouds and meshes, on numpy.

``read_points(path)`` returns a :class:`PointCloud` (float32 ``(N, 3)`` points,
optional normals, colours in ``[0, 1]`` and extra fields; NaN points dropped);
meshes are sampled area-weighted on their surface (2,048 points by default,
seeded, face normals). ``read_mesh`` returns a :class:`Mesh` (vertices, int64
triangle faces). ``write_points`` writes PLY, PCD, XYZ/XYZN/XYZRGB, NPY, NPZ
atomically. Every malformed file raises :class:`PointCloudFileError` (a
``ValueError``) with a one-line message naming the file and the problem; a
missing file raises ``FileNotFoundError``.

Which reader serves which format, and why (Open3D is never used: it returns
empty or partial clouds in silence for unknown extensions, truncated PLY files
and PCD bodies shorter than their header, and costs a second to import):

==========================  ==================================================
OFF                         :mod:`.off`, our numpy parser: ``np.fromstring`` on
                            the vertex block (floats) and the face block (ints),
                            no per-line Python; accepts ``OFF490 518 0``.
PLY (ascii, binary LE/BE)   :mod:`.ply`, plyfile: correct on every variant,
                            memory-maps binary bodies, raises on truncation;
                            plain ascii vertex/face files by numpy (10x).
PCD (ascii, binary,         :mod:`.pcd`, our numpy parser + pure-Python LZF:
binary_compressed)          checks the header against the body, keeps fields.
XYZ XYZN XYZRGB PTS TXT CSV :mod:`.text`, ``np.loadtxt`` (numpy's C parser)
                            from the file; header line, ``,``/``;``/space.
NPY / NPZ                   :mod:`.numpy_io`, ``np.load(allow_pickle=False)``;
                            NPZ keys ``points`` [+ ``normals``, ``colors``].
OBJ, STL (ascii, binary)    :mod:`.obj`, :mod:`.stl`, small numpy parsers.
LAS / LAZ                   :mod:`.lidar`, laspy (+ lazrs): extra ``[las]``.
E57                         :mod:`.lidar`, pye57 (+ normals): extra ``[e57]``.
Any other extension         refused (:data:`SUPPORTED_EXTENSIONS` lists them).
==========================  ==================================================

Reading PLY, XYZ or NPY imports neither open3d, torch nor torch_geometric.
Colours are float32 RGB in ``[0, 1]`` (8-bit sources / 255, 16-bit / 65535).
Writers: PLY (binary, everything), PCD (binary: points, normals, colours), NPZ
(everything), NPY (points [+ normals]), XYZ / XYZN / XYZRGB.
"""

from pointnet1x1.io.api import (
    DEFAULT_MESH_POINTS,
    SUPPORTED_EXTENSIONS,
    read_mesh,
    read_points,
    write_points,
)
from pointnet1x1.io.cloud import Mesh, PointCloud, PointCloudFileError
from pointnet1x1.io.obj import parse_obj
from pointnet1x1.io.off import parse_off, read_off
from pointnet1x1.io.pcd import parse_pcd
from pointnet1x1.io.sampling import sample_surface, subsample
from pointnet1x1.io.stl import parse_stl
from pointnet1x1.io.text import parse_text

__all__ = [
    "DEFAULT_MESH_POINTS",
    "SUPPORTED_EXTENSIONS",
    "Mesh",
    "PointCloud",
    "PointCloudFileError",
    "parse_obj",
    "parse_off",
    "parse_pcd",
    "parse_stl",
    "parse_text",
    "read_mesh",
    "read_off",
    "read_points",
    "sample_surface",
    "subsample",
    "write_points",
]
