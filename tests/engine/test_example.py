"""examples/train_and_classify.py runs (one epoch) and shows both APIs."""

import runpy
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_and_classify.py"


def test_train_and_classify_example_runs(tmp_path, capsys):
    module = runpy.run_path(str(EXAMPLE))
    report = module["main"](epochs=1, out=str(tmp_path / "run"))
    out = capsys.readouterr().out
    assert 0.0 <= report["test"]["oa"] <= 1.0
    assert "Classifier(classes=10" in out and "a random sphere:" in out
    assert (tmp_path / "run" / "report.json").is_file()
