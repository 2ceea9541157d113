from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    assert DATA.is_dir(), f"shared test data missing: {DATA}"
    return DATA


@pytest.fixture(scope="session")
def clouds_dir(data_dir: Path) -> Path:
    return data_dir / "clouds"
