"""The embedded default dataset: procedural meshes in the ModelNet OFF layout.

With no dataset given, training uses this: ten classes of procedurally made
triangle meshes (:data:`DEFAULT_CLASSES`) with random proportions, orientation
(any turn about the up axis, a tilt of up to 15 degrees) and vertex noise, written
as ``<root>/<class>/{train,test}/<class>_NNNN.off`` (z up, like Princeton's
files), so :class:`~pointnet1x1.data.ModelNet` reads it through the same OFF code
path as the real ModelNet40. It is generated deterministically from a seed in a
few seconds, atomically (a temp folder renamed into place) and only once.

Where it lives (:func:`default_data_root`): ``$POINTNET1X1_DATA/default`` when
that variable is set, else ``<checkout>/datasets/generated/default`` when running
from a source checkout, else ``~/.cache/pointnet1x1/default``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from pointnet1x1.io.axes import rotation_about_axis

__all__ = [
    "DEFAULT_CLASSES",
    "data_home",
    "default_data_root",
    "generate_default_dataset",
    "make_shape",
]

GENERATOR_VERSION = 2
DEFAULT_CLASSES = [
    "box", "capsule", "cone", "cross", "cylinder",
    "hourglass", "mushroom", "sphere", "tabletop", "torus",
]  # fmt: skip
DEFAULT_TRAIN, DEFAULT_TEST = 64, 20
_MARKER = ".pointnet1x1_default.json"

Mesh = tuple[np.ndarray, np.ndarray]  # vertices (V, 3) float64, faces (F, 3) int64


def _revolve(radius: np.ndarray, height: np.ndarray, sides: int) -> Mesh:
    """Surface of revolution of the profile ``(radius[i], height[i])`` about z.

    ``sides`` segments around (3 makes a prism-like solid, 4 a box-like one).
    Profile points with radius 0 still get ``sides`` copies (degenerate faces are
    harmless: surface sampling never picks zero-area faces).
    """
    angle = np.linspace(0.0, 2.0 * np.pi, sides, endpoint=False) + np.pi / sides
    ring = np.stack([np.cos(angle), np.sin(angle)], axis=1)  # (sides, 2)
    verts = np.concatenate(
        [
            np.concatenate([r * ring, np.full((sides, 1), z)], axis=1)
            for r, z in zip(radius, height, strict=True)
        ]
    )
    faces = []
    for i in range(len(radius) - 1):
        for j in range(sides):
            a, b = i * sides + j, i * sides + (j + 1) % sides
            c, d = a + sides, b + sides
            faces += [(a, b, d), (a, d, c)]
    return verts, np.asarray(faces, dtype=np.int64)


def _line(
    *points: tuple[float, float], steps: int = 6
) -> tuple[np.ndarray, np.ndarray]:
    """A polyline profile through ``points`` with ``steps`` segments per piece."""
    pts = np.asarray(points, dtype=np.float64)
    t = np.linspace(0.0, 1.0, steps, endpoint=False)[:, None]
    out = [pts[i] + t * (pts[i + 1] - pts[i]) for i in range(len(pts) - 1)]
    path = np.concatenate([*out, pts[-1:]])
    return path[:, 0], path[:, 1]


def _arc(cr: float, cz: float, r: float, start: float, stop: float, steps: int = 10):
    t = np.linspace(start, stop, steps)
    return np.maximum(cr + r * np.cos(t), 0.0), cz + r * np.sin(t)


def _merge(*meshes: Mesh) -> Mesh:
    verts, faces, offset = [], [], 0
    for v, f in meshes:
        verts.append(v)
        faces.append(f + offset)
        offset += len(v)
    return np.concatenate(verts), np.concatenate(faces)


def _box(size: np.ndarray, centre: np.ndarray) -> Mesh:
    r, z = _line((0, -0.5), (1, -0.5), (1, 0.5), (0, 0.5), steps=4)
    v, f = _revolve(r * np.sqrt(2.0), z, 4)
    return v * size + centre, f


def _shape(name: str, rng: np.random.Generator) -> Mesh:
    u = rng.uniform
    h = u(0.6, 1.8)
    if name == "sphere":
        r, z = _arc(0.0, 0.0, 1.0, -np.pi / 2, np.pi / 2, 14)
        v, f = _revolve(r, z, 20)
        return v * u(0.85, 1.15, 3), f
    if name == "box":
        return _box(np.array([u(0.5, 1.5), u(0.5, 1.5), h]), np.zeros(3))
    if name == "cylinder":
        r, z = _line((0, 0), (1, 0), (1, h), (0, h))
        v, f = _revolve(r, z, 20)
        return v * [1.0, u(0.8, 1.0), 1.0], f
    if name == "cone":
        r, z = _line((0, 0), (1, 0), (0, h))
        return _revolve(r, z, 20)
    if name == "capsule":  # lying down: a long rounded bar
        rad, length = u(0.25, 0.45), u(1.2, 2.2)
        r1, z1 = _arc(0.0, 0.0, rad, -np.pi / 2, 0.0, 8)
        r2, z2 = _arc(0.0, length, rad, 0.0, np.pi / 2, 8)
        v, f = _revolve(np.concatenate([r1, r2]), np.concatenate([z1, z2]), 20)
        return v[:, [2, 1, 0]], f
    if name == "cross":  # three orthogonal bars
        th = u(0.12, 0.3)
        bars = [_box(np.roll([u(1.2, 2.0), th, th], k), np.zeros(3)) for k in range(3)]
        return _merge(*bars)
    if name == "mushroom":
        stem, cap, dome = u(0.12, 0.3), u(0.6, 1.0), u(0.4, 0.9)
        t = np.linspace(0.0, np.pi / 2, 10)
        r0, z0 = _line((0, 0), (stem, 0), (stem, h * 0.6), (cap, h * 0.6))
        r = np.concatenate([r0, cap * np.cos(t[1:])])
        z = np.concatenate([z0, h * 0.6 + dome * cap * np.sin(t[1:])])
        return _revolve(r, z, 20)
    if name == "hourglass":
        waist = u(0.1, 0.45)
        r, z = _line((0, 0), (1, 0), (waist, h / 2), (1, h), (0, h))
        return _revolve(r, z, 20)
    if name == "torus":
        tube = u(0.15, 0.4)
        r, z = _arc(1.0, 0.0, tube, 0.0, 2.0 * np.pi, 14)
        v, f = _revolve(r, z, 24)
        return v * [1.0, u(0.8, 1.0), 1.0], f
    if name == "tabletop":
        w, d, leg = u(0.8, 1.4), u(0.5, 1.0), u(0.05, 0.12)
        top = _box(np.array([w, d, u(0.05, 0.15)]), np.array([0.0, 0.0, h]))
        legs = [
            _box(
                np.array([leg, leg, h]),
                np.array([sx * (w - leg) / 2, sy * (d - leg) / 2, h / 2]),
            )
            for sx in (-1, 1)
            for sy in (-1, 1)
        ]
        return _merge(top, *legs)
    raise ValueError(
        f"unknown default shape {name!r}; known: {', '.join(DEFAULT_CLASSES)}"
    )


def make_shape(name: str, rng: np.random.Generator | int = 0) -> Mesh:
    """One random mesh of class ``name``: proportions, orientation and noise drawn from ``rng``.

    Returns:
        ``(vertices, faces)``: float64 (V, 3) z up, int64 (F, 3).
    """
    rng = np.random.default_rng(rng)
    verts, faces = _shape(name, rng)
    verts = verts - verts.mean(axis=0)
    verts = verts + rng.normal(0.0, 0.015, verts.shape)
    yaw, tilt, tilt_dir = (
        rng.uniform(0, 2 * np.pi),
        rng.uniform(0, np.radians(15)),
        rng.uniform(0, 2 * np.pi),
    )
    rz = rotation_about_axis(yaw, "z")  # the turn about the up axis
    axis = np.array([np.cos(tilt_dir), np.sin(tilt_dir), 0.0])
    k = np.array(
        [[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]]
    )
    # a tilt about a horizontal axis of any direction: Rodrigues' formula (io.axes
    # has rotations about x, y and z only)
    tilt_m = np.eye(3) + np.sin(tilt) * k + (1 - np.cos(tilt)) * (k @ k)
    return verts @ (tilt_m @ rz).T * rng.uniform(0.5, 2.0), faces


def _off_text(verts: np.ndarray, faces: np.ndarray) -> str:
    lines = [f"OFF\n{len(verts)} {len(faces)} 0"]
    lines += [f"{x:.5f} {y:.5f} {z:.5f}" for x, y, z in verts]
    lines += [f"3 {a} {b} {c}" for a, b, c in faces]
    return "\n".join(lines) + "\n"


def generate_default_dataset(
    root: str | os.PathLike[str],
    *,
    seed: int = 0,
    train_per_class: int = DEFAULT_TRAIN,
    test_per_class: int = DEFAULT_TEST,
    classes: list[str] | None = None,
) -> Path:
    """Write the procedural dataset to ``root`` (atomically; replaces a stale one).

    Returns:
        ``root`` as a Path.
    """
    root = Path(root).expanduser()
    classes = list(DEFAULT_CLASSES if classes is None else classes)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        for ci, name in enumerate(classes):
            for split, count, first in (
                ("train", train_per_class, 1),
                ("test", test_per_class, train_per_class + 1),
            ):
                folder = tmp / name / split
                folder.mkdir(parents=True)
                for k in range(first, first + count):
                    verts, faces = make_shape(
                        name, np.random.default_rng([seed, ci, k])
                    )
                    (folder / f"{name}_{k:04d}.off").write_text(_off_text(verts, faces))
        meta = {"version": GENERATOR_VERSION, "seed": seed, "classes": classes,
                "train_per_class": train_per_class, "test_per_class": test_per_class}  # fmt: skip
        (tmp / _MARKER).write_text(json.dumps(meta, indent=1))
        if root.exists():
            stale = root.with_name(f".{root.name}.stale-{os.getpid()}")
            os.replace(root, stale)
            shutil.rmtree(stale, ignore_errors=True)
        os.replace(tmp, root)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if _is_current(root, seed):  # another process won the race
            return root
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def _is_current(root: Path, seed: int = 0) -> bool:
    try:
        meta = json.loads((root / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    return meta.get("version") == GENERATOR_VERSION and meta.get("seed") == seed


def _checkout_dir() -> Path | None:
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").is_file() and (repo / "pointnet1x1" / "data").is_dir():
        return repo
    return None


def data_home() -> Path:
    """Where datasets go by default: ``$POINTNET1X1_DATA``, else
    ``<checkout>/datasets/generated`` in a source checkout, else the user cache."""
    env = os.environ.get("POINTNET1X1_DATA")
    if env:
        return Path(env).expanduser()
    repo = _checkout_dir()
    if repo is not None and os.access(repo, os.W_OK):
        return repo / "datasets" / "generated"
    from pointnet1x1.data.cache import user_cache_dir

    return user_cache_dir()


def _default_location() -> Path:
    return data_home() / "default"


def default_data_root() -> Path:
    """Root of the embedded default dataset, generated on first use (seconds).

    Returns:
        A directory in the Princeton OFF layout, ready for ``ModelNet(root, ...)``.
    """
    root = _default_location()
    if not _is_current(root):
        generate_default_dataset(root)
    return root
