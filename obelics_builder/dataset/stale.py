"""``OUT/dataset`` kept in step with ``OUT/documents``.

``filter`` rewrites ``OUT/documents``; the dataset folder built from the earlier documents is then out of date.
``filter`` marks it stale (``OUT/dataset/STALE``, a text file saying why) before it starts, rebuilds it with the
options it was built with (:func:`recorded_options`, from its ``shards.json`` and card) and removes the marker;
when it is not rebuilt (``filter --no-dataset``, an interrupted or failed run) the marker stays: ``publish`` refuses
the folder and ``status`` reports it until ``obelics-build shards OUT`` rebuilds it.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

STALE_NAME = "STALE"


def stale_path(out: str | Path) -> Path:
    return Path(out) / "dataset" / STALE_NAME


def mark_stale(out: str | Path, why: str) -> Path | None:
    """Write the marker when ``OUT/dataset`` exists (nothing to mark otherwise); returns its path or None."""
    root = Path(out) / "dataset"
    if not root.is_dir():
        return None
    p = root / STALE_NAME
    p.write_text(f"STALE: {why}\nRebuild it with: obelics-build shards {Path(out)}\n", encoding="utf-8")
    return p


def stale_reason(out: str | Path) -> str | None:
    """Why ``OUT/dataset`` is stale (the marker's first line), or None when it is not marked."""
    p = stale_path(out)
    if not p.is_file():
        return None
    first = p.read_text(encoding="utf-8", errors="replace").splitlines()[:1]
    return (first[0].removeprefix("STALE: ") if first else "") or "marked stale"


def clear_stale(out: str | Path) -> None:
    stale_path(out).unlink(missing_ok=True)


def recorded_options(out: str | Path) -> dict | None:
    """The :func:`~obelics_builder.dataset.shards.write_dataset` options ``OUT/dataset`` was built with (shard size,
    embedded images, WebDataset tars, card license), or None when its ``shards.json`` is missing or unreadable."""
    root = Path(out) / "dataset"
    try:
        info = json.loads((root / "shards.json").read_text(encoding="utf-8"))
        size = int(info["shard_size_bytes"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    license = None
    card = root / "README.md"
    if card.is_file():
        m = re.search(r"^license: *(\S+) *$", card.read_text(encoding="utf-8", errors="replace"), re.M)
        if m and m.group(1) != "other":
            license = m.group(1).strip("'\"")
    return {"shard_size_bytes": size, "embed_images": bool(info.get("embed_images")),
            "webdataset": bool(info.get("webdataset")), "license": license}
