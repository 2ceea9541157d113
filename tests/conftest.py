"""Shared test set-up.

- ``SHARED_DATA``: the real third-party data in ``../shared/data`` beside the checkout
  (CI has it there too). Tests that need it fail loudly if it is absent; none skip.
- Tests marked ``gpu`` need CUDA. On a machine without CUDA (CI) they are deselected
  and the summary says so in a line of its own; run them on a GPU with ``pytest -m gpu``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (ROOT / ".." / "shared" / "data").resolve()

_deselected_gpu: list[str] = []


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(
            f"real test data not found at {SHARED_DATA} (../shared/data beside the checkout)"
        )
    return SHARED_DATA


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    _deselected_gpu.extend(item.nodeid for item in gpu_items)
    config.hook.pytest_deselected(items=gpu_items)
    items[:] = [item for item in items if not item.get_closest_marker("gpu")]


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    if _deselected_gpu:
        terminalreporter.write_line(
            f"{len(_deselected_gpu)} GPU test(s) not run: no CUDA on this machine "
            "(run `pytest -m gpu` on a GPU machine)"
        )
