"""The examples run and show what they claim."""

import re
import runpy
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_one_by_one_prints_tiny_differences(capsys):
    runpy.run_path(str(EXAMPLES / "one_by_one.py"), run_name="__main__")
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 7
    diffs = [float(re.search(r"max \|diff\| = (\S+)", line).group(1)) for line in lines]
    assert max(diffs) < 1e-10


def test_custom_model_learns():
    module = runpy.run_path(str(EXAMPLES / "custom_model.py"))
    assert module["main"](steps=40) > 0.9
