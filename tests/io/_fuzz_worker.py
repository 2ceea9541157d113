"""Reads the fuzzed files listed in a JSON file, in a process of bounded size.

Run by ``test_fuzz.py`` as ``python _fuzz_worker.py CASES.json OUT.json``: the
address space is capped (``RLIMIT_AS``) before anything is read, so a reader that
allocated what a corrupt header declares fails here instead of swapping, and a
reader that crashed the interpreter kills this process, not pytest. Each case is
announced on stderr first, so the last line names the case that crashed.
"""

import hashlib
import json
import resource
import sys
import time
import traceback

import numpy as np

MESHES = (".off", ".obj", ".stl", ".ply")


def _cloud_facts(cloud) -> dict:
    points = cloud.points
    ok = (
        points.dtype == np.float32
        and points.ndim == 2
        and points.shape[1] == 3
        and len(points) > 0
        and bool(np.isfinite(points).all())
    )
    for name in ("normals", "colors"):
        value = getattr(cloud, name)
        ok = ok and (value is None or value.shape == points.shape)
    return {
        "n": len(points),
        "digest": hashlib.sha1(np.ascontiguousarray(points).tobytes()).hexdigest(),
        "valid": bool(ok),
    }


def _read(path: str, ext: str) -> dict:
    from pointnet1x1.io import read_mesh, read_points

    out: dict = {}
    if ext in MESHES:
        mesh = read_mesh(path)
        out["mesh"] = [len(mesh.vertices), len(mesh.faces)]
        out["mesh_digest"] = hashlib.sha1(
            np.ascontiguousarray(mesh.vertices).tobytes()
            + np.ascontiguousarray(mesh.faces).tobytes()
        ).hexdigest()
    out.update(_cloud_facts(read_points(path, seed=0)))
    return out


def main() -> None:
    cases_file, out_file, cap = sys.argv[1], sys.argv[2], int(sys.argv[3])
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    from pointnet1x1.io import PointCloudFileError

    results = []
    with open(cases_file) as f:
        cases = json.load(f)
    for case in cases:
        print(f"case {case['path']}", file=sys.stderr, flush=True)
        result = {"path": case["path"]}
        start = time.perf_counter()
        try:
            result.update(outcome="read", **_read(case["path"], case["ext"]))
        except PointCloudFileError as err:
            result.update(outcome="refused", message=str(err))
        except BaseException as err:  # noqa: BLE001 - every other outcome is a bug
            last = traceback.format_exception(err)[-2].strip().splitlines()[0]
            result.update(
                outcome="bug", message=f"{type(err).__name__}: {err} at {last}"
            )
        result["seconds"] = time.perf_counter() - start
        results.append(result)
    with open(out_file, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
