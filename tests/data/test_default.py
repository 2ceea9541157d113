import hashlib

import numpy as np
import pytest

from pointnet1x1.cli import main
from pointnet1x1.data import (
    DEFAULT_CLASSES,
    ModelNet,
    default_data_root,
    generate_default_dataset,
)
from pointnet1x1.data.default import make_shape


def _digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.off")):
        h.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def test_generation_is_deterministic_atomic_and_read_by_the_off_loader(tmp_path):
    a = generate_default_dataset(tmp_path / "a", train_per_class=2, test_per_class=1)
    b = generate_default_dataset(tmp_path / "b", train_per_class=2, test_per_class=1)
    assert _digest(a) == _digest(b)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a",
        "b",
    ]  # no temp folders left
    assert sorted(p.name for p in a.iterdir() if p.is_dir()) == DEFAULT_CLASSES
    ds = ModelNet(a, "train", num_points=128, cache_dir=tmp_path / "c", progress=False)
    assert (
        ds.layout == "class-split"
        and ds.class_names == DEFAULT_CLASSES
        and len(ds) == 20
    )
    assert np.bincount(ds.labels).tolist() == [2] * 10
    test = ModelNet(a, "test", num_points=128, cache_dir=tmp_path / "c", progress=False)
    assert len(test) == 10 and (a / "box" / "test" / "box_0003.off").is_file()
    c = generate_default_dataset(
        tmp_path / "a", train_per_class=2, test_per_class=1, seed=1
    )
    assert _digest(c) != _digest(b)  # regenerated in place with another seed


def test_default_data_root_honours_the_environment_and_is_cached(tmp_path, monkeypatch):
    import pointnet1x1.data.default as default

    monkeypatch.setenv("POINTNET1X1_DATA", str(tmp_path))
    calls = []
    real = default.generate_default_dataset

    def small(root, **kw):
        calls.append(root)
        return real(root, train_per_class=1, test_per_class=1)

    monkeypatch.setattr(default, "generate_default_dataset", small)
    root = default_data_root()
    assert root == tmp_path / "default" and calls == [root]
    assert default_data_root() == root and calls == [root]  # second call: cached
    assert main(["data", "info", str(root)]) == 0


@pytest.mark.parametrize("name", DEFAULT_CLASSES)
def test_every_shape_is_a_valid_mesh_with_varying_proportions(name):
    v1, f1 = make_shape(name, 1)
    v2, _ = make_shape(name, 2)
    assert (
        v1.shape[1] == 3 and f1.shape[1] == 3 and f1.min() >= 0 and f1.max() < len(v1)
    )
    assert np.isfinite(v1).all()
    ext = lambda v: np.sort(np.ptp(v, axis=0))  # noqa: E731
    assert not np.allclose(ext(v1) / ext(v1).max(), ext(v2) / ext(v2).max(), atol=1e-3)
