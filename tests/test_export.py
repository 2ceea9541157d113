"""ONNX / TorchScript export: dynamic axes, metadata, the parity check, the CLI."""

import io
import json
import runpy
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from pointnet1x1 import PointNetClassifier
from pointnet1x1.cli import main
from pointnet1x1.engine import Classifier
from pointnet1x1.engine.checkpoint import (
    CheckpointError,
    make_preprocessing,
    save_model_checkpoint,
)
from pointnet1x1.export import (
    ParityError,
    check_parity,
    export_onnx,
    export_torchscript,
    read_onnx_metadata,
    read_torchscript_metadata,
)
from pointnet1x1.models import create_model, list_models, register_model

CLASSES = ["airplane", "bathtub", "bench", "person"]


def _model(in_channels=3, seed=0):
    torch.manual_seed(seed)
    model = PointNetClassifier(num_classes=4, in_channels=in_channels)
    for m in model.modules():  # trained-like statistics and T-Nets
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    for tnet in (model.encoder.input_tnet, model.encoder.feature_tnet):
        torch.nn.init.normal_(tnet.out.weight, std=0.02)
    return model


def _meta(in_channels=3):
    return {
        "class_names": CLASSES,
        "preprocessing": make_preprocessing(256, use_normals=in_channels == 6),
    }


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    model = _model(in_channels=6)
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    result = export_onnx(model, path, metadata=_meta(6))
    return model, path, result


def test_onnx_parity_on_two_point_counts(onnx_file):
    model, path, result = onnx_file
    assert [(b, n) for b, n, _ in result.checks] == [(2, 1024), (3, 517)]
    assert result.max_abs_diff <= 1e-4
    assert model.training  # the caller's model is left as it was
    again = check_parity(model, path, shapes=[(1, 33), (5, 2048)])
    assert again.max_abs_diff <= 1e-4


def test_onnx_dynamic_axes_and_metadata(onnx_file):
    model, path, _ = onnx_file
    proto = onnx.load(str(path))
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["class_names"]) == CLASSES
    pre = json.loads(props["preprocessing"])
    assert pre["num_points"] == 256 and pre["in_channels"] == 6
    assert pre["normalize"] == "center_unit_sphere"
    assert read_onnx_metadata(path)["class_names"] == CLASSES
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert inp.name == "points" and out.name == "logits"
    assert isinstance(inp.shape[0], str) and inp.shape[1] == 6
    assert isinstance(inp.shape[2], str)
    x = torch.randn(7, 6, 300)
    (logits,) = session.run(None, {"points": x.numpy()})
    with torch.no_grad():
        want = model.eval()(x).numpy()
    model.train()
    assert logits.shape == (7, 4)
    np.testing.assert_allclose(logits, want, atol=1e-4)


def test_onnx_backend_predicts_as_the_checkpoint_classifier(onnx_file, tmp_path):
    model, path, _ = onnx_file
    clf = Classifier.from_onnx(path)
    assert clf.class_names == CLASSES and clf.preprocessing.num_points == 256
    assert (
        clf.preprocessing
        == Classifier(
            model, CLASSES, preprocessing=_meta(6)["preprocessing"]
        ).preprocessing
    )
    ref = Classifier(model, CLASSES, preprocessing=_meta(6)["preprocessing"])
    rng = np.random.default_rng(0)
    clouds = [rng.standard_normal((n, 6)).astype(np.float32) for n in (400, 180)]
    np.testing.assert_allclose(
        clf.predict_proba(clouds), ref.predict_proba(clouds), atol=1e-5
    )
    assert "OnnxBackend" in repr(clf)
    assert Classifier.from_onnx(path, input_up_axis="y").input_up_axis == "y"
    with pytest.raises(
        CheckpointError,
        match="an ONNX model, not a pointnet1x1 checkpoint; use Classifier.from_onnx",
    ):
        Classifier.from_checkpoint(path)


def test_torchscript_parity_metadata_and_dynamic_shapes(tmp_path):
    model = _model()
    path = tmp_path / "model.pt"
    result = export_torchscript(model, path, metadata=_meta())
    assert result.max_abs_diff <= 1e-4 and len(result.checks) == 2
    assert read_torchscript_metadata(path)["class_names"] == CLASSES
    assert read_torchscript_metadata(path)["preprocessing"]["up_axis"] == "z"
    loaded = torch.jit.load(str(path))  # the test's own export: loading it is safe
    x = torch.randn(1, 3, 77)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model.eval()(x), atol=1e-5, rtol=0)


def test_parity_check_fails_loudly_for_a_different_model(onnx_file, tmp_path):
    _, path, _ = onnx_file
    with pytest.raises(
        ParityError, match=r"onnx logits differ from eager PyTorch by up to .*tolerance"
    ):
        check_parity(_model(in_channels=6, seed=1), path)
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.trace(_model().eval(), torch.randn(1, 3, 64)), buffer)
    traced = torch.jit.load(io.BytesIO(buffer.getvalue()))  # a module, not a path
    with pytest.raises(ParityError, match="torchscript logits differ"):
        check_parity(_model(seed=1), traced)
    with pytest.raises(FileNotFoundError, match="exported model not found"):
        check_parity(_model(), tmp_path / "missing.onnx")


class _ShapeDependent(PointNetClassifier):
    """Eager code that tracing cannot follow: a Python branch on the point count."""

    def forward(self, x, mask=None, **kwargs):
        logits = super().forward(x, mask, **kwargs)
        return logits * 2 if x.shape[-1] > 600 else logits


if "test_shape_dependent" not in list_models():
    register_model("test_shape_dependent")(_ShapeDependent)


def _checkpoint(tmp_path, name="pointnet"):
    model = create_model(name, num_classes=4)
    path = tmp_path / f"{name}.safetensors"
    save_model_checkpoint(
        path,
        model,
        model_name=name,
        model_kwargs={"num_classes": 4},
        class_names=CLASSES,
        preprocessing=make_preprocessing(128),
    )
    return path


def test_cli_export_torchscript_and_parity_failure(tmp_path, capsys):
    ckpt = _checkpoint(tmp_path)
    out = tmp_path / "model.pt"
    assert main(["export", str(ckpt), "--out", str(out)]) == 0
    assert "parity vs eager" in capsys.readouterr().out
    assert read_torchscript_metadata(out)["preprocessing"]["num_points"] == 128
    # an export that disagrees with eager: one line, exit 2, no file left
    bad = _checkpoint(tmp_path, "test_shape_dependent")
    out_bad = tmp_path / "bad.pt"
    argv = ["export", str(bad), "--format", "torchscript", "--out", str(out_bad)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pointnet1x1 export: error:") and "\n" not in err
    assert "differ from eager PyTorch" in err
    assert not out_bad.exists()


def test_cli_export_onnx(tmp_path, capsys):
    ckpt = _checkpoint(tmp_path)
    out = tmp_path / "model.onnx"
    assert main(["export", str(ckpt), "--out", str(out)]) == 0
    assert "(onnx)" in capsys.readouterr().out
    assert Classifier.from_onnx(out).class_names == CLASSES
    assert main(["export", str(tmp_path / "nope.safetensors"), "--out", str(out)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_export_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="in_channels must be an int >= 3"):
        export_onnx(torch.nn.Linear(3, 4), tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="in_channels=6 but the model takes 3"):
        export_torchscript(_model(), tmp_path / "x.pt", metadata=_meta(6))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(
        ValueError, match="junk.onnx: not a model file .*, not an ONNX model"
    ):
        Classifier.from_onnx(junk)
    with pytest.raises(FileNotFoundError, match="ONNX model not found"):
        Classifier.from_onnx(tmp_path / "missing.onnx")


def test_export_example(tmp_path):
    example = Path(__file__).resolve().parents[1] / "examples" / "export_onnx.py"
    ckpt = _checkpoint(tmp_path)  # skip the example's training
    result = runpy.run_path(str(example))["main"](str(ckpt), str(tmp_path / "out"))
    assert result["parity"] <= 1e-4
    # the ONNX predictor (file metadata + onnxruntime) answers as the checkpoint's
    assert result["max_probability_difference"] < 1e-4
    assert (tmp_path / "out" / "model.onnx").is_file()


class _BakedPointCount(torch.nn.Module):
    """Traces at N=128, then fails at other point counts (a constant in the trace)."""

    in_channels = 3

    def forward(self, x):
        return (x + torch.zeros(1, 1, int(x.shape[2]))).amax(dim=2)


def test_exported_model_that_fails_at_another_size_is_a_parity_error(tmp_path):
    path = tmp_path / "baked.pt"
    with pytest.raises(ParityError, match=r"fails on input \(2, 3, 1024\) where eager"):
        export_torchscript(_BakedPointCount(), path)
    assert not path.exists()
