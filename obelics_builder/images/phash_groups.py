"""Run-wide near-duplicate image marks as waves of tasks over files: no process holds the run's images.

The same groups as :func:`.phash.near_duplicate_groups` (64-bit pHashes within ``max_distance`` bits are one group,
by bands and union-find; a group is named by its smallest ``(sha256 or url, url)``, whose URL is the representative,
every other member a near-duplicate), computed in six waves; each task holds one table part or one partition:

1. ``bands`` (a task per table part): the part's distinct hashes, one row per band ``(band, value, hash)``
   -> ``work/bands/<part>/PPPPP.parquet``, partitioned on ``(band, value)`` into ``band_partitions``;
2. ``edges`` (a task per band partition): its buckets are complete; the pairs of distinct hashes of a bucket
   within ``max_distance`` -> ``work/edges/PPPPP.npy`` (``(a, b)``, ``a < b``, each once per partition);
3. ``components`` (one task): union-find over the edge files only -> ``work/labels.npy`` (hash, root) for the
   hashes that have an edge (every other hash is a group of its own); memory O(hashes with a near neighbour);
4. ``members`` (a task per table part): the part's hashed rows ``(group, key, url)``, the group the root of the
   hash -> ``work/members/GGGGG/<part>.parquet``, partitioned on the group into ``group_partitions``;
5. ``names`` (a task per group partition): each group's smallest ``(key, url)``; every member's ``(url, group
   name, is_near_duplicate)`` -> ``work/marks/<part>/GGGGG.parquet``, back to the member's table part;
6. ``apply`` (a task per table part): the part's marks; the part is rewritten (:func:`.ledger.write_table_part`)
   only when a mark changed.

The partition counts come from the number of image rows (table part footers) and :class:`PhashPlanConfig`; they
change the work, never the marks.  The work folder is removed at the end; the step's own marker (the plan's) says
whether it has to run again, and a rerun starts the waves over (each writes under temporary names).  A URL is
assumed to be in one table part (the image-URL plan gives each URL to one fetch unit).

Known limit, as for the image buckets: waves 1, 4 and 5 write up to (table parts x partitions) small files.
"""
from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..io.image_table import IMAGE_TABLE_COLUMNS, IMAGE_TABLE_SCHEMA
from ..io.markers import read_marker
from ..io.parquet import tmp_path_for
from .ledger import read_part, write_table_part
from .phash import _bands, hashed_rows

#: a 64-bit odd constant for mixing partition keys (golden ratio)
MIX = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class PhashPlanConfig:
    """How the waves are partitioned (results do not depend on it)."""

    #: band rows (distinct hashes x bands) per band partition, about
    band_rows_per_partition: int = 4_000_000
    #: hashed image rows per group partition, about
    rows_per_partition: int = 1_000_000

    def partitions(self, rows: int, bands: int) -> tuple[int, int]:
        return (max(1, math.ceil(rows * bands / self.band_rows_per_partition)),
                max(1, math.ceil(rows / self.rows_per_partition)))


def _mix(x: np.ndarray, n: int) -> np.ndarray:
    """A partition in ``[0, n)`` of each uint64 of ``x`` (multiplicative hashing; the same in every process)."""
    with np.errstate(over="ignore"):
        return ((x.astype(np.uint64) * MIX) >> np.uint64(32)) % np.uint64(n)


def _write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(path)
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)


def _hashed(path: str) -> tuple[list[str], list[str], np.ndarray]:
    """The part's rows with a valid pHash: urls, keys (sha256, else the URL) and hashes (uint64)."""
    names = pq.ParquetFile(path).schema_arrow.names
    t = pq.read_table(path, columns=[c for c in ("url", "sha256", "phash") if c in names])
    urls = t.column("url").to_pylist()
    shas = t.column("sha256").to_pylist() if "sha256" in names else [None] * len(urls)
    phs = t.column("phash").to_pylist() if "phash" in names else [None] * len(urls)
    out_u, out_k, out_h = [], [], []
    for url, key, h in hashed_rows(zip(urls, shas, phs)):
        out_u.append(url)
        out_k.append(key)
        out_h.append(h)
    return out_u, out_k, np.array(out_h, dtype=np.uint64)


# ---- 1. bands ----------------------------------------------------------------------------------------------------

def bands_part(path: str, work: str, max_distance: int, partitions: int) -> int:
    """One table part's distinct hashes -> its band rows, partitioned on (band, value); returns the hashes."""
    _, _, h = _hashed(path)
    values = np.unique(h)
    if values.size == 0:
        return 0
    name = Path(path).stem
    band, value, hashes = [], [], []
    for b, (shift, mask) in enumerate(_bands(max_distance + 1)):
        band.append(np.full(values.size, b, dtype=np.uint8))
        value.append((values >> np.uint64(shift)) & np.uint64(mask))
        hashes.append(values)
    band_a, value_a, hash_a = np.concatenate(band), np.concatenate(value), np.concatenate(hashes)
    with np.errstate(over="ignore"):
        pid = _mix(value_a ^ (band_a.astype(np.uint64) << np.uint64(58)), partitions)
    order = np.argsort(pid, kind="stable")
    band_a, value_a, hash_a, pid = band_a[order], value_a[order], hash_a[order], pid[order]
    cuts = np.flatnonzero(np.diff(pid)) + 1
    for lo, hi in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [pid.size]])):
        t = pa.table({"band": band_a[lo:hi], "value": value_a[lo:hi], "hash": hash_a[lo:hi]})
        _write(t, Path(work) / "bands" / name / f"{int(pid[lo]):05d}.parquet")
    return int(values.size)


# ---- 2. edges ----------------------------------------------------------------------------------------------------

def edges_partition(p: int, work: str, max_distance: int) -> int:
    """A band partition's buckets -> the pairs of distinct hashes within ``max_distance``; returns the edges."""
    files = sorted((Path(work) / "bands").glob(f"*/{p:05d}.parquet"))
    out = Path(work) / "edges" / f"{p:05d}.npy"
    pairs: set[tuple[int, int]] = set()
    if files:
        t = pa.concat_tables([pq.read_table(f) for f in files])
        band = t.column("band").to_numpy()
        value = t.column("value").to_numpy()
        hashes = t.column("hash").to_numpy()
        order = np.lexsort((hashes, value, band))
        band, value, hashes = band[order], value[order], hashes[order]
        new = np.ones(band.size, dtype=bool)
        new[1:] = (band[1:] != band[:-1]) | (value[1:] != value[:-1])
        starts = np.flatnonzero(new)
        ends = np.append(starts[1:], band.size)
        for lo, hi in zip(starts, ends):
            if hi - lo < 2:
                continue
            members = sorted(set(int(x) for x in hashes[lo:hi]))
            for i, a in enumerate(members):
                for b in members[i + 1:]:
                    if (a ^ b).bit_count() <= max_distance:
                        pairs.add((a, b))
    arr = np.array(sorted(pairs), dtype=np.uint64).reshape(-1, 2)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(out)
    with open(tmp, "wb") as f:
        np.save(f, arr)
    tmp.replace(out)
    return len(pairs)


# ---- 3. components -----------------------------------------------------------------------------------------------

def components(work: str) -> int:
    """Union-find over the edge files -> ``labels.npy`` (sorted hash, root = the smallest hash of its component);
    returns the hashes labelled."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    for f in sorted((Path(work) / "edges").glob("*.npy")):
        for a, b in np.load(f).tolist():
            parent.setdefault(a, a)
            parent.setdefault(b, b)
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    keys = np.array(sorted(parent), dtype=np.uint64)
    roots = np.array([find(int(k)) for k in keys.tolist()], dtype=np.uint64)
    out = Path(work) / "labels.npy"
    tmp = tmp_path_for(out)
    with open(tmp, "wb") as f:
        np.save(f, np.stack([keys, roots]) if keys.size else np.zeros((2, 0), dtype=np.uint64))
    tmp.replace(out)
    return int(keys.size)


def _groups(h: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The group (root hash) of each hash: its label, or itself when it has no edge."""
    keys, roots = labels
    if keys.size == 0 or h.size == 0:
        return h.copy()
    i = np.searchsorted(keys, h)
    i_c = np.minimum(i, keys.size - 1)
    hit = keys[i_c] == h
    return np.where(hit, roots[i_c], h)


# ---- 4. members --------------------------------------------------------------------------------------------------

def members_part(index: int, path: str, work: str, partitions: int) -> int:
    """One table part's hashed rows -> ``(group, key, url, part)`` partitioned on the group."""
    urls, keys, h = _hashed(path)
    if not urls:
        return 0
    g = _groups(h, np.load(Path(work) / "labels.npy"))
    pid = _mix(g, partitions)
    t = pa.table({"group": g, "key": pa.array(keys, pa.string()), "url": pa.array(urls, pa.string()),
                  "part": pa.array(np.full(len(urls), index, dtype=np.int32))})
    pids = pa.array(pid.astype(np.int32))
    for p in pc.unique(pids).to_pylist():
        _write(t.filter(pc.equal(pids, p)), Path(work) / "members" / f"{p:05d}" / f"{Path(path).stem}.parquet")
    return len(urls)


# ---- 5. names ----------------------------------------------------------------------------------------------------

def names_partition(p: int, work: str, part_names: list[str]) -> int:
    """A group partition: each group's smallest (key, url) names it; every member's mark -> its part's folder."""
    files = sorted((Path(work) / "members" / f"{p:05d}").glob("*.parquet"))
    if not files:
        return 0
    t = pa.concat_tables([pq.read_table(f) for f in files])
    t = t.sort_by([("group", "ascending"), ("key", "ascending"), ("url", "ascending")])
    g = t.column("group").to_numpy()
    new = np.ones(g.size, dtype=bool)
    new[1:] = g[1:] != g[:-1]
    run = np.cumsum(new) - 1
    first = pa.array(np.flatnonzero(new)[run])
    name = t.column("key").take(first)
    rep = t.column("url").take(first)
    dup = pc.not_equal(t.column("url"), rep)
    marks = pa.table({"url": t.column("url"), "phash_group": name, "image_near_duplicate": dup,
                      "part": t.column("part")})
    parts = marks.column("part")
    for part in pc.unique(parts).to_pylist():
        _write(marks.filter(pc.equal(parts, part)).drop_columns(["part"]),
               Path(work) / "marks" / part_names[part] / f"{p:05d}.parquet")
    return int(g.size)


# ---- 6. apply ----------------------------------------------------------------------------------------------------

def apply_part(path: str, work: str | None) -> dict:
    """Rewrite one table part with its marks when one changed; returns its counts ``{"representatives",
    "near_duplicates", "rewritten"}``.  ``work=None``: grouping disabled, each hashed row its own group."""
    path_p = Path(path)
    marks: dict[str, tuple[str, bool]] = {}
    if work is None:
        urls, keys, _ = _hashed(path)
        marks = {u: (k, False) for u, k in zip(urls, keys)}
    for f in sorted((Path(work) / "marks" / path_p.stem).glob("*.parquet")) if work is not None else ():
        t = pq.read_table(f)
        for url, g, d in zip(t.column("url").to_pylist(), t.column("phash_group").to_pylist(),
                             t.column("image_near_duplicate").to_pylist()):
            marks[url] = (g, d)
    rewritten = marks_changed(path_p, marks)
    if rewritten:
        marker = read_marker(path_p.parent, path_p.stem) or {}
        write_table_part(path_p.parent, path_p.stem, with_marks(path_p, marks), marker.get("input_fingerprint", ""),
                         marker.get("stats", {}))
    return {"representatives": sum(1 for _, d in marks.values() if not d),
            "near_duplicates": sum(1 for _, d in marks.values() if d), "rewritten": int(rewritten)}


def marks_changed(path: Path, marks: dict[str, tuple[str, bool]]) -> bool:
    """Whether a row of the part has other marks than ``marks`` (None, None for a URL without)."""
    names = pq.ParquetFile(path).schema_arrow.names
    cols = [c for c in ("url", "phash_group", "image_near_duplicate") if c in names]
    t = pq.read_table(path, columns=cols)
    n = t.num_rows
    groups = t.column("phash_group").to_pylist() if "phash_group" in cols else [None] * n
    dups = t.column("image_near_duplicate").to_pylist() if "image_near_duplicate" in cols else [None] * n
    return any(marks.get(u, (None, None)) != (g, d) for u, g, d in zip(t.column("url").to_pylist(), groups, dups))


def with_marks(path: Path, marks: dict) -> Iterator[pa.Table] | list[dict]:
    """The part at ``path`` with its near-duplicate marks replaced, as Arrow tables, one row group at a time (the
    part is never whole in memory; its row groups are bounded when it was written by
    :func:`.ledger.write_table_part`): the other columns (the image bytes) are not converted to Python objects and
    back.  Read on this thread: Arrow's threaded read of a part holding the image bytes costs about twice the CPU
    for the same result.  A part written before a column existed comes back as rows (:func:`.ledger.read_part`
    fills the gaps)."""
    pf = pq.ParquetFile(path)
    if not set(IMAGE_TABLE_COLUMNS) <= set(pf.schema_arrow.names):
        rows = read_part(path)
        for r in rows:
            r["phash_group"], r["image_near_duplicate"] = marks.get(r["url"], (None, None))
        return rows
    return _with_marks(pf, marks)


def _with_marks(pf: pq.ParquetFile, marks: dict) -> Iterator[pa.Table]:
    for rg in range(pf.metadata.num_row_groups):
        table = pf.read_row_group(rg, use_threads=False).select(list(IMAGE_TABLE_COLUMNS)).cast(IMAGE_TABLE_SCHEMA)
        got = [marks.get(u, (None, None)) for u in table.column("url").to_pylist()]
        for name, values in (("phash_group", [g for g, _ in got]), ("image_near_duplicate", [d for _, d in got])):
            i = table.schema.get_field_index(name)
            table = table.set_column(i, table.schema.field(i), pa.array(values, table.schema.field(i).type))
        yield table


# ---- the step ----------------------------------------------------------------------------------------------------

def apply_phash_groups(table_dir: str | Path, keys: list[str], max_distance: int = 4, engine=None,
                       cfg: PhashPlanConfig = PhashPlanConfig()) -> dict:
    """Group near-duplicate images over the finished parts of ``keys`` (those with a marker) and store
    ``phash_group`` / ``image_near_duplicate`` in the parts whose marks changed; returns ``{"groups"`` (one
    representative each), ``"near_duplicates", "parts_rewritten"}``.  ``engine``: an :class:`~obelics_builder.engine.Engine` (None: in
    this process)."""
    table_dir = Path(table_dir)
    parts = [str(table_dir / f"{k}.parquet") for k in keys
             if (table_dir / f"{k}.parquet").exists() and read_marker(table_dir, k) is not None]

    def run(fn, items, *args, desc):
        if engine is None:
            return [fn(i, *args) for i in items]
        return engine.map(fn, items, *args, desc=desc)

    if max_distance < 0:
        done = run(apply_part, parts, None, desc="image pHash: apply")
    else:
        work = table_dir.parent / "phash" / "_work"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        try:
            rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)  # footers only
            band_p, group_p = cfg.partitions(rows, max_distance + 1)
            if max_distance > 0:
                run(bands_part, parts, str(work), max_distance, band_p, desc="image pHash: bands")
                run(edges_partition, list(range(band_p)), str(work), max_distance, desc="image pHash: edges")
            run(components, [str(work)], desc="image pHash: components")
            run(_members, list(enumerate(parts)), str(work), group_p, desc="image pHash: members")
            run(names_partition, list(range(group_p)), str(work), [Path(p).stem for p in parts],
                desc="image pHash: names")
            done = run(apply_part, parts, str(work), desc="image pHash: apply")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return {"groups": sum(d["representatives"] for d in done),
            "near_duplicates": sum(d["near_duplicates"] for d in done),
            "parts_rewritten": sum(d["rewritten"] for d in done)}


def _members(item: tuple[int, str], work: str, partitions: int) -> int:
    return members_part(item[0], item[1], work, partitions)
