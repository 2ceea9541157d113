import subprocess
import sys

import numpy as np

from pointnet1x1.io import PointCloud, write_points


def test_reading_ply_xyz_npy_imports_no_heavy_library(tmp_path):
    cloud = PointCloud(np.random.default_rng(0).normal(size=(10, 3)))
    for ext in (".ply", ".xyz", ".npy"):
        write_points(tmp_path / f"c{ext}", cloud)
    code = (
        "import sys, pointnet1x1.io as io\n"
        f"for ext in ('.ply', '.xyz', '.npy'): io.read_points(r'{tmp_path}/c' + ext)\n"
        "print(sorted(m for m in ('open3d', 'torch', 'torch_geometric') "
        "if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
