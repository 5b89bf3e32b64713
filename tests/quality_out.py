"""A crawl output of the sample mirror's readability-dev WARC, built once per test process (quality tests)."""
from __future__ import annotations

import functools
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE_WARC = (REPO / "obelics_builder" / "data" / "sample" / "crawl-data" / "CC-MAIN-2023-06" / "segments" / "sample"
               / "warc" / "pages-readability-dev.warc.gz")


def crawl(out: Path, *extra: str) -> subprocess.CompletedProcess:
    """``obelics-build crawl`` of the sample WARC into ``out`` (sync scheduler, no network, no dataset)."""
    cmd = [sys.executable, "-m", "obelics_builder.cli", "crawl", "--warc", str(SAMPLE_WARC), "--out", str(out),
           "--scheduler", "sync", "--no-network", "--no-dataset", "--quiet", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=str(REPO))


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "obelics_builder.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=str(REPO))


@functools.lru_cache(maxsize=1)
def _base_out() -> Path:
    out = Path(tempfile.mkdtemp(prefix="obelics-quality-")) / "out"
    r = crawl(out)
    if r.returncode != 0:
        raise RuntimeError(f"crawl failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return out


def sample_out(dest: Path) -> Path:
    """A private copy (``dest``) of the sample crawl output; the crawl itself runs once per process."""
    if not SAMPLE_WARC.is_file():
        import pytest

        pytest.skip(f"sample WARC missing: {SAMPLE_WARC}")
    shutil.copytree(_base_out(), dest, copy_function=shutil.copy2)
    return dest
