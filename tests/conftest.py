"""Shared test fixtures.  ../shared (beside the repo) holds real test data; the product never needs it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("OBELICS_SHARED", REPO.parent / "shared")).resolve()
SHARED_DATA = SHARED / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA} (set OBELICS_SHARED)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
