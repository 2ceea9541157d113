"""Hostile checkpoints, built here: one line naming the file and the problem, exit 1.

Each file goes through ``pointnet1x1 classify`` (``pointnet1x1.cli.main``) and
through :func:`load_model_checkpoint`, whose checks run before any model is built
from the metadata's numbers (issue 16, classes 2, 4 and 5).
"""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch

from pointnet1x1.cli import main
from pointnet1x1.engine.checkpoint import (
    CheckpointError,
    load_model_checkpoint,
    make_preprocessing,
    save_model_checkpoint,
    save_training_state,
)
from pointnet1x1.engine.metadata import build_metadata
from pointnet1x1.io.errors import InputFileError
from pointnet1x1.models import create_model

_KW = {"num_classes": 3, "mlp1": [8, 8], "mlp2": [8, 16], "head": [16, 8]}


def _meta_kw(**over):
    kw = dict(
        model_name="pointnet",
        model_kwargs=_KW,
        class_names=["a", "b", "c"],
        preprocessing=make_preprocessing(32),
        extra={"task": "cls", "config": {"epochs": 2, "num_points": 32}},
    )
    kw.update(over)
    return kw


def _model(**kwargs):
    torch.manual_seed(0)
    return create_model("pointnet", **{**_KW, **kwargs})


def _save(path, model=None, **over):
    return save_model_checkpoint(path, model or _model(), **_meta_kw(**over))


def _header(path):
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def _write(path, header, body):
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + body)


def _rewrite_meta(path, change):
    header, body = _header(path)
    meta = json.loads(header["__metadata__"]["pointnet1x1"])
    change(meta)
    header["__metadata__"]["pointnet1x1"] = json.dumps(meta)
    _write(path, header, body)


@pytest.fixture
def cloud_file(tmp_path):
    path = tmp_path / "cloud.xyz"
    np.savetxt(path, np.random.default_rng(0).normal(size=(50, 3)))
    return path


def _classify_fails(ckpt, cloud_file, capsys, *needles):
    """``classify`` exits 1 with one line that names the file and the problem."""
    code = main(["classify", str(ckpt), str(cloud_file)])
    out, err = capsys.readouterr()
    assert code == 1, err
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("pointnet1x1 classify: error: ")
    assert str(ckpt) in err
    for needle in needles:
        assert needle in err, err
    return err


def test_the_good_checkpoint_classifies(tmp_path, cloud_file, capsys):
    """The baseline the hostile variants below are made from does load."""
    ckpt = _save(tmp_path / "good.safetensors")
    assert main(["classify", str(ckpt), str(cloud_file)]) == 0
    assert capsys.readouterr().out.startswith(str(cloud_file))


def test_a_tensor_of_the_wrong_shape_is_named(tmp_path, cloud_file, capsys):
    # weights of a 5-class model under metadata that says 3 classes
    ckpt = _save(tmp_path / "shape.safetensors", _model(num_classes=5))
    small, big = _model().state_dict(), _model(num_classes=5).state_dict()
    first = next(k for k in small if small[k].shape != big[k].shape)
    want, got = tuple(small[first].shape), tuple(big[first].shape)
    _classify_fails(
        ckpt, cloud_file, capsys, f"tensor {first!r} has shape {got}",
        f"the model's is {want}", "weights do not fit model 'pointnet'",
    )  # fmt: skip


def test_metadata_claiming_a_huge_model_is_refused_before_building_it(
    tmp_path, cloud_file, capsys
):
    """A billion classes in the metadata: compared on the meta device, never allocated."""
    ckpt = _save(tmp_path / "huge.safetensors")
    _rewrite_meta(ckpt, lambda m: m["model"]["kwargs"].update(num_classes=10**9))
    _classify_fails(ckpt, cloud_file, capsys, "weights do not fit", "1000000000")


def test_a_missing_and_an_extra_tensor_are_named(tmp_path):
    ckpt = _save(tmp_path / "m.safetensors")
    header, body = _header(ckpt)
    gone = sorted(k for k in header if k != "__metadata__")[-1]
    header["surplus.weight"] = header.pop(gone)
    _write(ckpt, header, body)
    with pytest.raises(CheckpointError, match=f"tensor {gone!r}.* is missing"):
        load_model_checkpoint(ckpt)
    header[gone] = header.pop("surplus.weight")
    header["surplus.weight"] = {**header[gone]}
    _write(ckpt, header, body)
    with pytest.raises(CheckpointError, match="'surplus.weight' is not part"):
        load_model_checkpoint(ckpt)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_naming_the_tensor(
    value, tmp_path, cloud_file, capsys
):
    model = _model()
    names = [n for n, p in model.named_parameters() if p.dim() == 2]
    target = names[len(names) // 2]
    with torch.no_grad():
        dict(model.named_parameters())[target][0, 0] = value
    ckpt = _save(tmp_path / "nan.safetensors", model)
    _classify_fails(ckpt, cloud_file, capsys, f"tensor {target!r}", "1 NaN or inf")


def test_nan_in_a_training_state_is_refused_too(tmp_path):
    model = _model()
    state = model.state_dict()
    key = next(k for k in state if k.endswith("running_var"))
    state[key][1] = float("nan")
    path = tmp_path / "state.pt"
    meta = build_metadata(**_meta_kw())
    save_training_state(path, {"metadata": meta, "model": state})
    with pytest.raises(CheckpointError, match=f"tensor {key!r} holds 1 NaN"):
        load_model_checkpoint(path)


def test_a_header_length_larger_than_the_file(tmp_path, cloud_file, capsys):
    ckpt = tmp_path / "cut.safetensors"
    body = b'{"__metadata__": {}}'
    ckpt.write_bytes(struct.pack("<Q", 10**6) + body)
    size = ckpt.stat().st_size
    _classify_fails(
        ckpt, cloud_file, capsys, "header length 1000000 bytes", f"({size} bytes)"
    )


def test_data_offsets_beyond_the_file(tmp_path, cloud_file, capsys):
    ckpt = _save(tmp_path / "short.safetensors")
    header, body = _header(ckpt)
    _write(ckpt, header, body[: len(body) // 2])  # the tensors' bytes cut in half
    _classify_fails(ckpt, cloud_file, capsys, "data offsets", "outside the file")


def test_a_header_that_lies_about_a_tensors_size(tmp_path):
    ckpt = _save(tmp_path / "lie.safetensors")
    header, body = _header(ckpt)
    key = next(k for k in header if k != "__metadata__" and header[k]["shape"])
    header[key]["shape"] = [10**6, *header[key]["shape"][1:]]
    _write(ckpt, header, body)
    with pytest.raises(CheckpointError, match=f"tensor {key!r} of dtype F32"):
        load_model_checkpoint(ckpt)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (
            lambda m: m.update(class_names="abc"),
            "class_names must be a list of a string",
        ),
        (lambda m: m.update(class_names=[1, 2, 3]), "class_names must be a list"),
        (lambda m: m["model"].update(kwargs=[1]), "model kwargs must be a table"),
        (lambda m: m["model"].update(name=7), "model name must be a string"),
        (lambda m: m.update(model="pointnet"), "model must be a table"),
        (lambda m: m.update(extra=[]), "extra must be a table"),
        (
            lambda m: m["extra"]["config"].update(epochs="x"),
            "extra config epochs must be an integer or null, got 'x'",
        ),
        (
            lambda m: m["extra"]["config"].update(num_points=100.5),
            "extra config num_points must be an integer or null, got 100.5",
        ),
    ],
)
def test_metadata_of_the_wrong_type(change, needle, tmp_path, cloud_file, capsys):
    ckpt = _save(tmp_path / "typed.safetensors")
    _rewrite_meta(ckpt, change)
    _classify_fails(ckpt, cloud_file, capsys, "checkpoint metadata", needle)


def test_an_unknown_model_name(tmp_path, cloud_file, capsys):
    ckpt = _save(tmp_path / "unknown.safetensors")
    _rewrite_meta(ckpt, lambda m: m["model"].update(name="resnet9000"))
    _classify_fails(ckpt, cloud_file, capsys, "resnet9000")


def test_checkpoint_errors_are_input_file_errors_and_stay_one_line(tmp_path):
    ckpt = _save(tmp_path / "two\nlines.safetensors", _model(num_classes=5))
    with pytest.raises(InputFileError) as info:
        load_model_checkpoint(ckpt)
    assert "\n" not in str(info.value) and "two\\nlines.safetensors" in str(info.value)
