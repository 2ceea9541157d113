import json
import pickle
import struct

import numpy as np
import pytest
import torch

from pointnet1x1.engine.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    load_model_checkpoint,
    load_training_state,
    make_preprocessing,
    read_checkpoint_metadata,
    save_model_checkpoint,
    save_training_state,
)
from pointnet1x1.engine.preprocessing import Preprocessing
from pointnet1x1.models import create_model

_KW = {"num_classes": 3, "mlp1": [8, 8], "mlp2": [8, 16], "head": [16, 8]}


def _model():
    torch.manual_seed(0)
    return create_model("pointnet", **_KW)


def _save(path, model=None, **over):
    kw = dict(
        model_name="pointnet",
        model_kwargs=_KW,
        class_names=["a", "b", "c"],
        preprocessing=make_preprocessing(64),
        metrics={"val_oa": 0.5},
        extra={"data_root": "/x"},
    )
    kw.update(over)
    return save_model_checkpoint(path, model or _model(), **kw)


def test_round_trip_same_logits_and_metadata(tmp_path):
    model = _model().eval()
    path = _save(tmp_path / "m.safetensors", model)
    loaded = load_model_checkpoint(path)
    assert not loaded.model.training
    x = torch.randn(2, 3, 64)
    torch.testing.assert_close(loaded.model(x), model(x), rtol=0, atol=0)
    meta = loaded.metadata
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["class_names"] == ["a", "b", "c"]
    assert meta["preprocessing"] == {
        "num_points": 64, "features": ["xyz"], "in_channels": 3,
        "normalize": "center_unit_sphere", "sampling": "random", "up_axis": "z",
    }  # fmt: skip
    assert Preprocessing.from_dict(meta["preprocessing"]) == make_preprocessing(64)
    assert meta["model"] == {"name": "pointnet", "kwargs": _KW}
    assert meta["metrics"] == {"val_oa": 0.5}
    assert meta["versions"]["torch"] == torch.__version__
    assert read_checkpoint_metadata(path)["extra"] == {"data_root": "/x"}
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left nothing behind


def test_training_state_round_trip_and_model_from_it(tmp_path):
    model = _model().eval()
    meta = load_model_checkpoint(_save(tmp_path / "m.safetensors", model)).metadata
    opt = torch.optim.Adam(model.parameters())
    state = {
        "metadata": meta,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "epoch": 3,
        "rng": torch.get_rng_state(),
    }
    path = save_training_state(tmp_path / "state.pt", state)
    back = load_training_state(path)
    assert back["epoch"] == 3
    assert torch.equal(back["rng"], state["rng"])
    from_state = load_model_checkpoint(path).model
    x = torch.randn(2, 3, 64)
    torch.testing.assert_close(from_state(x), model(x), rtol=0, atol=0)


class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_malicious_plain_pickle_is_refused_and_never_runs(tmp_path):
    target = tmp_path / "pwned.txt"
    bad = tmp_path / "evil.pt"
    bad.write_bytes(pickle.dumps({"model": _Evil(str(target))}))
    with pytest.raises(CheckpointError, match="refusing to unpickle"):
        load_model_checkpoint(bad)
    assert not target.exists()


def test_malicious_torch_save_is_refused_and_never_runs(tmp_path):
    target = tmp_path / "pwned.txt"
    bad = tmp_path / "evil.pt"
    torch.save({"format": "pointnet1x1.train_state", "x": _Evil(str(target))}, bad)
    assert not target.exists()
    with pytest.raises(CheckpointError, match="refused to load") as info:
        load_model_checkpoint(bad)
    assert "\n" not in str(info.value)
    with pytest.raises(CheckpointError):
        load_training_state(bad)
    assert not target.exists()


def test_not_a_checkpoint(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="not a model file"):
        load_model_checkpoint(text)
    from safetensors.torch import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match="without pointnet1x1 metadata"):
        load_model_checkpoint(plain)
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_model_checkpoint(tmp_path / "missing.safetensors")
    torch.save({"w": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="not a pointnet1x1 training state"):
        load_model_checkpoint(tmp_path / "plain.pt")


def _rewrite_meta(path, change):
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = json.loads(header["__metadata__"]["pointnet1x1"])
    change(meta)
    header["__metadata__"]["pointnet1x1"] = json.dumps(meta)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :])


def test_incompatible_format_version_says_what_differs(tmp_path):
    path = _save(tmp_path / "m.safetensors")
    _rewrite_meta(path, lambda m: m.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(CheckpointError) as info:
        load_model_checkpoint(path)
    msg = str(info.value)
    assert f"format version {FORMAT_VERSION + 1}" in msg
    assert f"reads version {FORMAT_VERSION}" in msg
    assert "upgrade pointnet1x1" in msg


def test_weights_that_do_not_fit_and_unknown_model(tmp_path):
    path = _save(tmp_path / "m.safetensors")
    _rewrite_meta(path, lambda m: m["model"]["kwargs"].update(num_classes=5))
    with pytest.raises(CheckpointError, match="weights do not fit"):
        load_model_checkpoint(path)
    path2 = _save(tmp_path / "m2.safetensors")
    _rewrite_meta(path2, lambda m: m["model"].update(name="nope"))
    with pytest.raises(CheckpointError, match="unknown model 'nope'"):
        load_model_checkpoint(path2)


def test_preprocessing_object_round_trips_and_validates():
    prep = make_preprocessing(32, use_normals=True, up_axis="y")
    assert (prep.in_channels, prep.features, prep.use_normals) == (
        6,
        ("xyz", "normals"),
        True,
    )
    assert Preprocessing.from_dict(prep.to_dict()) == prep
    with pytest.raises(AttributeError):
        prep.num_points = 5  # frozen: one object, never edited in place
    for change, message in (
        ({"num_points": 0}, "num_points must be a positive int, got 0"),
        ({"features": ["rgb"]}, r"features must be \['xyz'\] or"),
        ({"in_channels": 3}, "in_channels must be an int >= 6"),
        ({"sampling": "grid"}, "sampling must be random or fps"),
        ({"up_axis": "w"}, "up_axis must be one of x, y, z"),
    ):
        with pytest.raises(ValueError, match=message):
            prep.replace(**change)
    with pytest.raises(ValueError, match=r"preprocessing lacks \['in_channels'\]"):
        Preprocessing.from_dict({"num_points": 3, "features": ["xyz"]})
    with pytest.raises(ValueError, match="preprocessing lacks"):
        save_model_checkpoint(
            "unused", _model(), model_name="pointnet", model_kwargs=_KW,
            class_names=["a", "b", "c"], preprocessing={"num_points": 3},
        )  # fmt: skip


def test_checkpoints_written_before_the_up_axis_was_recorded_read_as_y_up(tmp_path):
    path = _save(tmp_path / "m.safetensors")
    _rewrite_meta(path, lambda m: m["preprocessing"].pop("up_axis"))
    meta = load_model_checkpoint(path).metadata
    assert "up_axis" not in meta["preprocessing"]
    assert Preprocessing.from_dict(meta["preprocessing"]).up_axis == "y"
    from pointnet1x1.engine import Classifier

    clf = Classifier.from_checkpoint(path, device="cpu")
    assert clf.preprocessing.up_axis == "y" and clf.input_up_axis == "z"
    # a z-up cloud is turned y up for it: (x, y, z) -> (x, z, y), the measured swap
    cloud = torch.rand(50, 3).numpy()
    want = clf.preprocessing.replace(up_axis="z").prepare(
        cloud[:, [0, 2, 1]], input_up_axis="z"
    )
    np.testing.assert_allclose(clf.preprocess(cloud), want, atol=1e-6)
    # a checkpoint whose preprocessing is nonsense is one line naming it
    _rewrite_meta(path, lambda m: m["preprocessing"].update(num_points="many"))
    with pytest.raises(
        CheckpointError, match="m.safetensors: checkpoint num_points must be"
    ):
        load_model_checkpoint(path)
