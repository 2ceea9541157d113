"""examples/train_and_classify.py runs (one epoch) and shows both APIs."""

import runpy
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_and_classify.py"


def test_train_and_classify_example_runs(tmp_path, capsys):
    module = runpy.run_path(str(EXAMPLE))
    report = module["main"](epochs=1, out=str(tmp_path / "run"))
    out = capsys.readouterr().out
    # one epoch of the fast recipe already learns: far above chance (1/10)
    chance = 1 / len(report["class_names"])
    assert report["test"]["oa"] > chance + 0.5 * (1 - chance)
    assert "Classifier(classes=10" in out and "a random sphere:" in out
    assert "torus_0065.off:" in out  # a z-up mesh file, classified with no flag
    lines = [line for line in out.splitlines() if line.startswith("  true ")]
    assert len(lines) == 4 and all("predicted" in line for line in lines)
