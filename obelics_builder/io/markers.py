"""Completion markers: a JSON file written (atomically) after a unit of work's outputs are complete.

A unit is done when its marker exists; its outputs are never taken as complete without it.  The marker carries
the unit's stats and a fingerprint of its inputs, so a rerun with other inputs recomputes instead of reusing.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .parquet import tmp_path_for


def fingerprint(*parts) -> str:
    """A short digest of JSON-able values (dict keys sorted): what a marker's ``fingerprint`` holds."""
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\x00")
    return h.hexdigest()[:16]


def marker_path(folder: str | Path, key: str) -> Path:
    return Path(folder) / "_done" / f"{key}.json"


def read_marker(folder: str | Path, key: str, fingerprint: str | None = None) -> dict | None:
    p = marker_path(folder, key)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    if fingerprint is not None and data.get("fingerprint") != fingerprint:
        return None
    return data


def write_marker(folder: str | Path, key: str, payload: dict) -> Path:
    p = marker_path(folder, key)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(p)
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=True, default=str), encoding="utf-8")
    os.replace(tmp, p)
    return p


def write_json_atomic(path: str | Path, data: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(path)
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str), encoding="utf-8")
    os.replace(tmp, path)
    return path
