"""Scene fixtures: the two real scans segmented once per session, and the engine
tests' tiny trained run (a classifier for the scene commands to run with)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "_engine_fixtures_scene",
    Path(__file__).resolve().parents[1] / "engine" / "conftest.py",
)
assert _spec is not None and _spec.loader is not None
_engine = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_engine)

tiny_data = _engine.tiny_data
tiny_run = _engine.tiny_run
_one_thread = _engine._one_thread

PCL = "PointCloudLibrary_pcl__table_scene_mug_stereo_textured.pcd"
FRAGMENT = "isl-org_Open3D-ML__fragment.pcd"


@pytest.fixture(scope="session")
def pcl_path(shared_data: Path) -> Path:
    return shared_data / "clouds" / PCL


@pytest.fixture(scope="session")
def fragment_path(shared_data: Path) -> Path:
    return shared_data / "clouds" / FRAGMENT


@pytest.fixture(scope="session")
def pcl_scene(pcl_path: Path):
    from pointnet1x1.scene import segment_scene

    return segment_scene(pcl_path)


@pytest.fixture(scope="session")
def fragment_scene(fragment_path: Path):
    from pointnet1x1.scene import segment_scene

    return segment_scene(fragment_path)
