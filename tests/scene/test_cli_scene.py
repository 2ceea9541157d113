"""``pointnet1x1 scene``: outputs, flags, errors (through ``pointnet1x1.cli.main``)."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

from pointnet1x1.cli import _scene, main
from pointnet1x1.io import read_points
from pointnet1x1.scene import DEFAULT_MIN_PROBABILITY, SceneParams


def test_scene_json_and_files(tiny_run, pcl_path, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["scene", str(tiny_run), str(pcl_path), "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0
    document = json.loads(captured.out)
    stem = out / "PointCloudLibrary_pcl__table_scene_mug_stereo_textured.objects"
    assert json.loads(Path(f"{stem}.json").read_text()) == document
    assert f"{stem}.ply" in captured.err and f"{stem}.png" in captured.err
    assert document["up_source"] == "support plane"
    assert document["num_input_points"] == 209280
    assert document["min_probability"] == DEFAULT_MIN_PROBABILITY
    assert 1 <= len(document["objects"]) <= 2
    mug = document["objects"][0]
    assert set(mug) >= {"id", "num_points", "centroid", "extent", "label", "top_k"}
    assert len(mug["top_k"]) == 3 and mug["label"] in ("ball", "cube", "rod", None)
    if mug["label"] is None:  # unknown: below the threshold, scores kept
        assert mug["probability"] < DEFAULT_MIN_PROBABILITY
    cloud = read_points(f"{stem}.ply")
    assert (cloud.fields["object_id"] == mug["id"]).sum() == mug["num_points"]
    assert Path(f"{stem}.png").stat().st_size > 10_000


def test_scene_table_flags_and_unknown(tiny_run, fragment_path, tmp_path, capsys):
    args = ["scene", str(tiny_run), str(fragment_path), "--out", str(tmp_path)]
    flags = ["--voxel-size", "0.03", "--up", "0,1,0", "--all-clusters"]
    assert main([*args, *flags, "--min-probability", "1", "--no-picture"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "(given)" in lines[0] and "at a 0.03 voxel" in lines[0]
    assert len(lines) > 1 and all(" unknown " in line for line in lines[1:])
    assert not list(tmp_path.glob("*.png"))
    document = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert document["params"]["voxel_size"] == 0.03
    assert document["params"]["plane_distance"] == 0.06  # derived from it
    assert document["params"]["up"] == [0.0, 1.0, 0.0]
    assert all(o["label"] is None and o["top_k"] for o in document["objects"])


def test_scene_errors_are_one_line(tiny_run, pcl_path, tmp_path, capsys):
    bad = tmp_path / "broken.pcd"
    bad.write_text("# .PCD v0.7\nVERSION 0.7\nFIELDS x y z\n")
    # exit 1: a bad input file; 2: a mistake in the command (cli.describe_error)
    cases = [
        ([str(tiny_run), str(bad)], str(bad), 1),
        ([str(tiny_run), str(tmp_path / "none.pcd")], "no such file", 2),
        ([str(tiny_run), str(pcl_path), "--up", "sideways"], "up must be an axis", 2),
        ([str(tiny_run), str(pcl_path), "--up", "1,x,2"], "--up must be an axis", 2),
        ([str(tiny_run), str(pcl_path), "--voxel-size", "-1"], "voxel_size must be", 2),
        (
            [str(tiny_run), str(pcl_path), "--min-probability", "2"],
            "--min-probability",
            2,
        ),
        ([str(tiny_run), str(pcl_path), "--out", str(bad)], "is a file", 2),
        ([str(tmp_path), str(pcl_path)], str(tmp_path), 2),  # no checkpoint there
    ]
    for argv, needle, expected in cases:
        code = main(["scene", "--out", str(tmp_path / "o"), *argv])
        err = capsys.readouterr().err
        assert code == expected, (argv, err)
        assert err.count("\n") == 1 and "pointnet1x1 scene: error:" in err, err
        assert needle in err, (needle, err)


def test_help_states_the_defaults_of_scene_params():
    defaults = {f.name: f.default for f in dataclasses.fields(SceneParams)}
    assert {name for name, _, _ in _scene._PARAMS} == set(defaults)
    for name, _, text in _scene._PARAMS:
        stated = re.search(r"\(default: ([-\d.]+)\)", text)
        value = defaults[name]
        if value is None:  # derived from the scan, or no bound
            assert stated is None, (name, text)
        else:
            assert stated and float(stated.group(1)) == value, (name, text)
    assert f"default: {DEFAULT_MIN_PROBABILITY}" in " ".join(
        a.help for a in _parser()._actions if a.dest == "min_probability"
    )


def _parser():
    import argparse

    parser = argparse.ArgumentParser()
    _scene.add_arguments(parser)
    return parser


def test_scene_modules_import_light():
    code = (
        "import sys, pointnet1x1.scene, pointnet1x1.cli._scene\n"
        "print(' '.join(sorted(sys.modules)))"
    )
    mods = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "open3d" not in mods and "torch" not in mods
    code = "import sys, pointnet1x1.cli._scene\nprint(' '.join(sys.modules))"
    mods = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "numpy" not in mods
