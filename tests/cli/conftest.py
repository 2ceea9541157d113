"""Loads the engine tests' fixtures (tiny dataset, tiny trained run)."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "_engine_fixtures", Path(__file__).resolve().parents[1] / "engine" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_engine = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_engine)

tiny_data = _engine.tiny_data
tiny_run = _engine.tiny_run
make_shape = _engine.make_shape
CLASSES = _engine.CLASSES
tiny_kwargs = _engine.tiny_kwargs
_one_thread = _engine._one_thread
shape_maker = _engine.shape_maker
