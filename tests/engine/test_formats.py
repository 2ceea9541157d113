"""Model files are recognised by their bytes before any loader touches them, and no
loader that runs code ever sees a file a user hands in (issue 16, class 1)."""

from __future__ import annotations

import io
import pickle
import zipfile
from typing import Tuple  # noqa: UP035 - TorchScript reads the annotation

import pytest
import torch

from pointnet1x1.cli import main
from pointnet1x1.engine import CheckpointError, Classifier, load_model_checkpoint
from pointnet1x1.engine.checkpoint import load_training_state, read_checkpoint_metadata
from pointnet1x1.engine.formats import file_kind
from pointnet1x1.engine.predict import load_predictor
from pointnet1x1.export import check_parity, read_torchscript_metadata


def _hostile_torchscript(path, target):
    """A TorchScript archive whose __setstate__ writes ``target`` when it is loaded."""

    class Payload(torch.nn.Module):
        def __init__(self, where: str) -> None:
            super().__init__()
            self.where = where
            self.buf = torch.zeros(1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

        @torch.jit.export
        def __getstate__(self) -> Tuple[str, bool]:  # noqa: UP006
            return (self.where, self.training)

        @torch.jit.export
        def __setstate__(self, state: Tuple[str, bool]) -> None:  # noqa: UP006
            self.where = state[0]
            self.training = state[1]
            self.buf = torch.from_file(self.where, True, 8, dtype=torch.uint8).fill_(65)

    torch.jit.save(torch.jit.script(Payload(str(target))), str(path))
    return path


@pytest.fixture()
def hostile(tmp_path):
    target = tmp_path / "pwned.bin"
    path = _hostile_torchscript(tmp_path / "model.pt", target)
    assert not target.exists()
    return path, target


def test_the_hostile_file_really_runs_code_when_jit_loaded(hostile, tmp_path):
    # proof that the payload works, on a copy (never through the package)
    path, target = hostile
    torch.jit.load(str(path))
    assert target.read_bytes() == b"A" * 8


def test_every_loader_refuses_torchscript_before_loading_it(hostile, tmp_path, capsys):
    path, target = hostile
    assert file_kind(path) == "torchscript"
    onnx_named = tmp_path / "model.onnx"
    onnx_named.write_bytes(path.read_bytes())  # a zip that claims to be ONNX
    calls = [
        lambda: load_model_checkpoint(path),
        lambda: read_checkpoint_metadata(path),
        lambda: load_training_state(path),
        lambda: Classifier.from_checkpoint(path),
        lambda: Classifier.from_onnx(onnx_named),
        lambda: load_predictor(onnx_named),
        lambda: check_parity(torch.nn.Linear(3, 4), onnx_named, in_channels=3),
    ]
    for call in calls:
        with pytest.raises((CheckpointError, ValueError)) as info:
            call()
        message = str(info.value)
        assert "\n" not in message and "TorchScript" in message, message
    for argv in (["classify", str(onnx_named), str(path)], ["eval", str(path)],
                 ["export", str(path), "--out", str(tmp_path / "x.onnx")]):  # fmt: skip
        assert main(argv) == 1  # a bad input file (CheckpointError: InputFileError)
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "TorchScript" in err, err
    assert not target.exists()


def test_torchscript_metadata_is_read_from_the_zip_without_loading(hostile, tmp_path):
    path, target = hostile
    with pytest.raises(
        ValueError, match="TorchScript file without pointnet1x1 metadata"
    ):
        read_torchscript_metadata(path)
    # with metadata beside the payload: read, and still nothing runs
    buffer = io.BytesIO(path.read_bytes())
    with zipfile.ZipFile(buffer, "a") as archive:
        prefix = archive.namelist()[0].split("/")[0]
        archive.writestr(f"{prefix}/extra/pointnet1x1.json", '{"class_names": ["a"]}')
    with_meta = tmp_path / "with_meta.pt"
    with_meta.write_bytes(buffer.getvalue())
    assert read_torchscript_metadata(with_meta) == {"class_names": ["a"]}
    assert not target.exists()


def test_file_kinds_from_bytes(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, tmp_path / "a.bin")
    torch.save({"w": torch.zeros(2)}, tmp_path / "b.bin")
    (tmp_path / "c.bin").write_bytes(pickle.dumps({"a": 1}))
    with zipfile.ZipFile(tmp_path / "d.bin", "w") as archive:
        archive.writestr("notes.txt", "hello")
    (tmp_path / "e.bin").write_bytes(b"PK\x03\x04 truncated")
    (tmp_path / "f.bin").write_text("x y z\n1 2 3\n")
    (tmp_path / "g.bin").write_bytes(b"")
    kinds = {p.name: file_kind(p) for p in sorted(tmp_path.iterdir())}
    assert kinds == {
        "a.bin": "safetensors", "b.bin": "torch", "c.bin": "pickle", "d.bin": "zip",
        "e.bin": "zip", "f.bin": "unknown", "g.bin": "unknown",
    }  # fmt: skip
    # a zip that is neither: refused by name, in one line, before torch.load
    with pytest.raises(CheckpointError, match="d.bin: a zip archive that is neither"):
        load_model_checkpoint(tmp_path / "d.bin")
    with pytest.raises(FileNotFoundError):
        file_kind(tmp_path / "missing.bin")
