"""Reading a crawl output for the report: the kept-document sample, image-table rows, unusable image URLs, NSFW flags."""
from __future__ import annotations

import math
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..schema import from_arrow
from .html import _as_float

DEFAULT_NSFW_CUTOFF = 0.5


# ---------------------------------------------------------------------------------------------------------------
# NSFW
# ---------------------------------------------------------------------------------------------------------------

def nsfw_cutoff(cfg: dict) -> float:
    cands = [DEFAULT_NSFW_CUTOFF]
    for section, key in (("image", "nsfw_max"), ("image", "nsfw"), ("nsfw", "max"), ("nsfw", "threshold")):
        v = _as_float((cfg.get(section) or {}).get(key)) if isinstance(cfg.get(section), dict) else None
        if v is not None:
            cands.append(v)
    return min(cands)


def is_nsfw(value: Any, cutoff: float = DEFAULT_NSFW_CUTOFF) -> bool:
    """True when an NSFW flag/score says the image must not be shown (a bool, a probability or a label)."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return not math.isnan(float(value)) and float(value) >= cutoff
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "nsfw", "unsafe", "porn", "hentai", "sexy")
    if isinstance(value, dict):  # e.g. {"porn": 0.9, "neutral": 0.1}
        return any(is_nsfw(v, cutoff) for k, v in value.items() if str(k).lower() not in ("neutral", "drawings", "safe"))
    return bool(value)


# ---------------------------------------------------------------------------------------------------------------
# reading inputs
# ---------------------------------------------------------------------------------------------------------------

def _parquet_files(folder: Path, pattern: str = "*.parquet") -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(pattern)
                  if not p.name.startswith(".") and not p.name.endswith((".keys.parquet", ".pairs.parquet")))


def sample_documents(out: Path, n: int, seed: int, problems: list[str]) -> list[dict]:
    """A seeded random sample of ``n`` kept documents (in file/row order), each with ``_part``/``_row``."""
    files = []
    for f in _parquet_files(out / "documents", "part-*.parquet"):
        try:
            files.append((f, pq.ParquetFile(f).metadata.num_rows))
        except Exception as e:  # noqa: BLE001 - a damaged part is reported, not fatal
            problems.append(f"cannot read {f.name}: {type(e).__name__}: {e}")
    total = sum(r for _, r in files)
    if total == 0 or n <= 0:
        return []
    picks = sorted(random.Random(seed).sample(range(total), min(n, total)))
    docs: list[dict] = []
    base = 0
    for f, rows in files:
        local = [i - base for i in picks if base <= i < base + rows]
        base += rows
        if not local:
            continue
        try:
            table = pq.read_table(f).take(pa.array(local, pa.int64()))
            for row, d in zip(local, from_arrow(table)):
                d["_part"], d["_row"] = f.name, row
                docs.append(d)
        except Exception as e:  # noqa: BLE001
            problems.append(f"cannot read {f.name}: {type(e).__name__}: {e}")
    return docs


def load_image_data(out: Path, urls: set[str], problems: list[str]) -> dict[str, dict]:
    """Image-table rows (with bytes) for ``urls``."""
    found: dict[str, dict] = {}
    if not urls:
        return found
    for f in _parquet_files(out / "images" / "table", "part-*.parquet"):
        try:
            names = pq.ParquetFile(f).schema_arrow.names
            cols = [c for c in ("url", "data", "format", "width", "height", "nsfw", "reason") if c in names]
            t = pq.read_table(f, columns=cols, filters=[("url", "in", sorted(urls))])
        except Exception as e:  # noqa: BLE001
            problems.append(f"cannot read image table {f.name}: {type(e).__name__}: {e}")
            continue
        for row in t.to_pylist():
            found[row["url"]] = row
    return found


def scan_image_table(out: Path, cutoff: float, k: int, problems: list[str]) -> tuple[dict[str, int], dict[str, list[dict]], int]:
    """Per-reason counts and a few examples of unusable image URLs; NSFW-flagged rows are only counted."""
    counts: dict[str, int] = defaultdict(int)
    examples: dict[str, list[dict]] = defaultdict(list)
    nsfw = 0
    for f in _parquet_files(out / "images" / "table", "part-*.parquet"):
        try:
            names = pq.ParquetFile(f).schema_arrow.names
            cols = [c for c in ("url", "status", "error", "source", "width", "height", "format", "reason", "nsfw")
                    if c in names]
            rows = pq.read_table(f, columns=cols).to_pylist()
        except Exception as e:  # noqa: BLE001
            problems.append(f"cannot read image table {f.name}: {type(e).__name__}: {e}")
            continue
        for r in rows:
            flagged = is_nsfw(r.get("nsfw"), cutoff) or "nsfw" in str(r.get("reason") or "").lower()
            if flagged:
                nsfw += 1
            reason = r.get("reason")
            if not reason:
                continue
            counts[reason] += 1
            if not flagged and len(examples[reason]) < k:
                examples[reason].append(r)
    return dict(counts), dict(examples), nsfw
