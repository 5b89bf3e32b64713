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


def crawl(*args: str, timeout: int = 900):
    """Run ``obelics-build crawl ARGS`` in a subprocess (the real command line)."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "obelics_builder.cli", "crawl", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory):
    """The README's main job: ``crawl --dump 2023-06 --mirror sample`` (run once per test session)."""
    out = tmp_path_factory.mktemp("sample") / "out"
    r = crawl("--dump", "2023-06", "--mirror", "sample", "--out", str(out), "--workers", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    return out, r
