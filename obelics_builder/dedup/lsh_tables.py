"""Hash-partitioned tables on disk and a compact union-find: the numpy kernels of the near-duplicate reduction.

The run-wide steps in ``engine.near_dedup`` never hold the corpus in memory: every table they exchange is a raw
binary file of fixed-width rows (a numpy structured dtype, no header) sorted by a hash partition, with a sidecar
``<file>.off`` of ``n_partitions + 1`` int64 row offsets, so a reader takes partitions ``[lo, hi)`` of a file with two
small reads and one contiguous read (:func:`read_partitions`).  Files are written under a temporary name and renamed.

* :data:`BAND`: (key uint64, doc int64) LSH band rows, partitioned by ``key mod P``: all rows of one band key are in
  one partition, so each partition's buckets are complete.
* :data:`EDGE`: (a int64, b int64) candidate or verified pairs ``a < b``, partitioned by :func:`doc_partition` of
  ``a``.
* :func:`bucket_edges`: star edges (smallest doc of the bucket, every other doc) of the buckets of several documents.
* :func:`union_edges` / :func:`final_labels`: union-find over dense document ids (0..N-1) in one int32 array
  (int64 from 2**31 documents); a root is always the smallest id of its set (a parent is never larger than its
  child), so the final label of a document is the smallest dense id of its connected component.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

BAND = np.dtype([("key", "<u8"), ("doc", "<i8")])
EDGE = np.dtype([("a", "<i8"), ("b", "<i8")])
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _off_path(path: Path) -> Path:
    return path.with_name(path.name + ".off")


def _write_raw(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    np.ascontiguousarray(arr).tofile(tmp)
    os.replace(tmp, path)


def doc_partition(docs: np.ndarray, n: int) -> np.ndarray:
    """Partition of a doc id among ``n`` (Fibonacci hashing: doc ids are structured, their low bits are not)."""
    with np.errstate(over="ignore"):
        h = docs.astype(np.uint64) * _GOLDEN
    return ((h >> np.uint64(32)) % np.uint64(n)).astype(np.int64)


def write_partitioned(path: str | Path, rows: np.ndarray, partition: np.ndarray, n: int) -> int:
    """Write ``rows`` sorted by ``partition`` (values in ``[0, n)``) and their offsets; returns the row count.

    The offsets file is written first, the rows file last (both renamed into place): the caller's completion marker,
    written after this returns, is what makes the pair valid.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    order = np.argsort(partition, kind="stable")
    off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(partition, minlength=n), out=off[1:])
    _write_raw(_off_path(path), off)
    _write_raw(path, rows[order])
    return int(rows.size)


def read_partitions(path: str | Path, dtype: np.dtype, lo: int, hi: int) -> np.ndarray:
    """Rows of partitions ``[lo, hi)`` of a :func:`write_partitioned` file (empty if the file is absent)."""
    path = Path(path)
    if not path.exists():
        return np.zeros(0, dtype)
    ends = np.fromfile(_off_path(path), dtype=np.int64, count=hi - lo + 1, offset=lo * 8)
    start, stop = int(ends[0]), int(ends[-1])
    if stop <= start:
        return np.zeros(0, dtype)
    return np.fromfile(path, dtype=dtype, count=stop - start, offset=start * dtype.itemsize)


def write_rows(path: str | Path, rows: np.ndarray) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_raw(path, rows)


def read_rows(path: str | Path, dtype: np.dtype) -> np.ndarray:
    path = Path(path)
    return np.fromfile(path, dtype=dtype) if path.exists() else np.zeros(0, dtype)


def bucket_edges(keys: np.ndarray, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Star edges (smallest doc of the bucket, other doc) of every band key held by more than one document.

    The keys must be complete (every row of a key present), which a band partition guarantees.  Repeated edges are
    dropped; the result is sorted by (a, b).
    """
    if keys.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.lexsort((docs, keys))
    keys, docs = keys[order], docs[order]
    start = np.r_[True, keys[1:] != keys[:-1]]
    first_doc = docs[start][np.cumsum(start) - 1]
    sel = (~start) & (docs != first_doc)
    return unique_pairs(first_doc[sel], docs[sel])


def unique_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (a, b) pairs, sorted by (a, b)."""
    if a.size == 0:
        return a.astype(np.int64), b.astype(np.int64)
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    keep = np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1])]
    return a[keep], b[keep]


def parent_array(n: int) -> np.ndarray:
    """Union-find state of ``n`` documents: each its own root (int32 below 2**31 documents: 4 bytes a document)."""
    return np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)


def _find(parent: np.ndarray, x: np.ndarray) -> np.ndarray:
    r = parent[x]
    while True:
        rr = parent[r]
        if np.array_equal(rr, r):
            break
        r = rr
    parent[x] = r  # path compression of the queried nodes
    return r


def union_edges(parent: np.ndarray, a: np.ndarray, b: np.ndarray) -> int:
    """Merge the sets of every (a[i], b[i]) (dense ids); returns the number of hooking rounds.

    Each round finds both roots of the unsatisfied edges and hooks every larger root to the smallest root it is
    paired with (one write per root, so no hook is lost to a race); edges whose hook was taken by a smaller root are
    retried in the next round, until every edge joins one set.
    """
    rounds = 0
    a = a.astype(parent.dtype, copy=False)
    b = b.astype(parent.dtype, copy=False)
    while a.size:
        ra, rb = _find(parent, a), _find(parent, b)
        ne = ra != rb
        if not ne.any():
            break
        a, b, ra, rb = a[ne], b[ne], ra[ne], rb[ne]
        lo, hi = np.minimum(ra, rb), np.maximum(ra, rb)
        order = np.lexsort((lo, hi))
        hi, lo = hi[order], lo[order]
        first = np.r_[True, hi[1:] != hi[:-1]]
        parent[hi[first]] = lo[first]
        rounds += 1
    return rounds


def final_labels(parent: np.ndarray, chunk: int = 1 << 20) -> np.ndarray:
    """Every document's root (pointer jumping until stable, in place): the smallest dense id of its component.

    Works ``chunk`` documents at a time (a pointer replaced by its grandparent is still an ancestor, so updating in
    place is sound), so nothing of the corpus's size is allocated besides ``parent``.
    """
    while True:
        changed = False
        for lo in range(0, parent.size, chunk):
            p = parent[lo:lo + chunk]
            gp = parent[p]
            if not np.array_equal(gp, p):
                p[...] = gp
                changed = True
        if not changed:
            return parent


def members(labels: np.ndarray, chunk: int = 1 << 20) -> np.ndarray:
    """Documents in a component of two or more (labels from :func:`final_labels`): one bool a document."""
    out = np.zeros(labels.size, dtype=bool)
    for lo in range(0, labels.size, chunk):
        lab = labels[lo:lo + chunk]
        other = lab != np.arange(lo, lo + lab.size, dtype=lab.dtype)
        out[lo:lo + lab.size] |= other
        out[lab[other]] = True
    return out
