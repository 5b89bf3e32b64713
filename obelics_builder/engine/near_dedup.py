"""MinHash near-duplicate dedup as a run-wide reduction whose memory per task does not grow with the corpus.

Six steps; each unit is one Dask task with a fingerprinted completion marker, and its outputs are written under
temporary names then renamed, so a rerun skips the finished units and resumes at the first unfinished one.  The
tables between the steps are hash-partitioned raw files (``dedup.lsh_tables``): a task reads only its partitions.

1. ``sig`` (a task per input part): signatures -> ``sig/NNNNN.npy`` (row-aligned with the part), capture ranks ->
   ``docs/NNNNN.parquet``, band rows (key, doc) -> ``bands/NNNNN.bin`` partitioned on ``key mod band_partitions``
   (a fixed, high count: it must be known before the corpus size is);
2. ``edges`` (a task per range of band partitions, about ``band_rows_per_partition`` rows): the buckets of a range
   are complete, each gives its star edges (smallest doc, other doc) -> ``edges/TTTTT.bin`` partitioned on ``a``
   into ``edge_partitions``;
3. ``verified`` (a task per range of edge partitions, about ``edges_per_partition`` rows): repeated edges dropped
   (every copy of an edge is in one partition), each edge verified on the full signatures (memory-mapped ``.npy``
   rows, ``verify_chunk`` edges at a time): Jaccard estimate >= ``threshold`` -> ``verified/VVVVV.bin``;
4. ``cc`` (one task): union-find over dense doc ids streamed over the verified files.  This is the one state that
   grows with the corpus: one int32 per document (4 MB per million documents) and a member mask (one byte); the
   pointer jumping and the mask are computed in place, 1M documents at a time.  -> ``cc/labels/NNNNN.parquet`` (node, label) for the clustered rows
   of each part, label = the smallest doc id of the component;
5. ``ranked`` (a task per part with clustered rows): their capture ranks -> ``ranked/NNNNN.parquet``, one row group
   per label partition (the label hashed into R partitions, R from ``ranks_per_partition``);
6. ``losers`` (a task per label partition): per component keep the document with the best capture rank
   (``dedup.urls.capture_rank``; ties by doc id, which the rank ends with), every other member is a loser ->
   ``losers/RRRRR.parquet`` (part, row), the format of ``reductions.url_losers``.

A doc id is ``part_index << 32 | row``; ``part_index`` is the position of the part in ``part_files``.  The losers are
those of the earlier all-Dask version (shuffles and min-label propagation): the same star edges, verification,
components and keep rule.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..dedup.lsh_tables import (BAND, EDGE, bucket_edges, doc_partition, final_labels, members, parent_array,
                                read_partitions, read_rows, union_edges, unique_pairs, write_partitioned, write_rows)
from ..io.markers import read_marker, write_json_atomic, write_marker
from ..io.parquet import tmp_path_for, write_table_atomic
from .losers import LOSERS_SCHEMA, part_key, rows_to_drop

log = logging.getLogger("obelics_builder")

ROW_MASK = (1 << 32) - 1


@dataclass(frozen=True)
class NearConfig:
    """``near_dedup`` recipe section (``enabled`` is the pipeline's)."""

    num_perm: int = 128
    bands: int = 20
    rows: int = 6
    threshold: float = 0.8            # verified Jaccard estimate
    ngram: int = 5
    seed: int = 1
    batch_rows: int = 2048            # documents per signature batch
    band_partitions: int = 4096       # hash partitions of the band table (fixed: written before the total is known)
    edge_partitions: int = 4096       # hash partitions of the candidate edges
    band_rows_per_partition: int = 2_000_000   # band rows per bucket task (16 bytes each)
    edges_per_partition: int = 1_000_000       # candidate edges per verification task
    verify_chunk: int = 100_000                # edges whose signatures are gathered at once
    ranks_per_partition: int = 1_000_000       # clustered documents per keep-the-best task

    def __post_init__(self) -> None:
        if self.bands * self.rows > self.num_perm:
            raise ValueError(f"near_dedup: bands*rows ({self.bands * self.rows}) > num_perm ({self.num_perm})")
        if not 0.0 < float(self.threshold) <= 1.0:
            raise ValueError("near_dedup: threshold must be in (0, 1]")


DEFAULT_NEAR = asdict(NearConfig())


def near_config(cfg: dict | NearConfig | None) -> NearConfig:
    if isinstance(cfg, NearConfig):
        return cfg
    return NearConfig(**(cfg or {}))


def _name(i: int) -> str:
    return f"{i:05d}"


def _ufp(fp: str, *parts) -> str:
    return ":".join([fp, *map(str, parts)])


def _done(folder: Path, name: str, ufp: str, *outputs: Path) -> dict | None:
    """The summary of a finished unit: its marker has this fingerprint and its outputs are all there."""
    done = read_marker(folder, name, ufp)
    if done is None or not all(p.exists() for p in outputs):
        return None
    return done["summary"]


# ---------------------------------------------------------------------------------------------------------------
# 1. signatures, ranks and partitioned band rows, per part
# ---------------------------------------------------------------------------------------------------------------

def signature_part(index: int, path: str, dest: str, c: NearConfig, exclude_dir: str | None, fp: str) -> dict:
    """One part: signatures, ranks and band rows (skips rows listed in ``exclude_dir``, e.g. URL-dedup losers)."""
    from ..dedup.minhash import band_keys, is_empty, signatures
    from ..dedup.urls import capture_rank

    dest_p = Path(dest)
    name = _name(index)
    pfp = _ufp(fp, path, "bands", c.band_partitions)
    done = _done(dest_p / "sig", name, pfp, dest_p / "sig" / f"{name}.npy", dest_p / "docs" / f"{name}.parquet",
                 dest_p / "bands" / f"{name}.bin")
    if done is not None:
        return done
    key = part_key(path)
    exclude = rows_to_drop(exclude_dir, key) if exclude_dir else set()
    pf = pq.ParquetFile(path)
    n_rows = pf.metadata.num_rows
    sig = np.full((n_rows, c.num_perm), np.uint32(0xFFFFFFFF), dtype=np.uint32)
    ranks = [""] * n_rows
    band_key_parts, band_doc_parts = [], []
    row0 = 0
    base = index << 32
    for batch in pf.iter_batches(batch_size=c.batch_rows, columns=["texts", "general_metadata"]):
        texts = batch.column(0).to_pylist()
        gms = batch.column(1).to_pylist()
        n = len(texts)
        keep = [i for i in range(n) if row0 + i not in exclude]
        docs_text = ["\n".join(t for t in (texts[i] or []) if t is not None) for i in keep]
        s = signatures(docs_text, c.num_perm, c.seed, c.ngram)
        rows = np.asarray(keep, dtype=np.int64) + row0
        sig[rows] = s
        for i in keep:
            try:
                gm = json.loads(gms[i]) if gms[i] else {}
            except ValueError:
                gm = {}
            ranks[row0 + i] = "%s\x00%020d" % (capture_rank(gm if isinstance(gm, dict) else {}), base | (row0 + i))
        ok = ~is_empty(s)
        if ok.any():
            keys = band_keys(s[ok], c.bands, c.rows)
            band_key_parts.append(keys.reshape(-1))
            band_doc_parts.append(np.repeat(rows[ok] | base, c.bands))
        row0 += n
    (dest_p / "sig").mkdir(parents=True, exist_ok=True)
    tmp = dest_p / "sig" / f".{name}.tmp.npy"
    np.save(tmp, sig)
    tmp.replace(dest_p / "sig" / f"{name}.npy")
    del sig
    write_table_atomic(pa.table({"rank": pa.array(ranks, pa.string())}), dest_p / "docs" / f"{name}.parquet")
    table = np.empty(sum(k.size for k in band_key_parts), dtype=BAND)
    if band_key_parts:
        table["key"] = np.concatenate(band_key_parts)
        table["doc"] = np.concatenate(band_doc_parts)
    del band_key_parts, band_doc_parts
    part = (table["key"] % np.uint64(c.band_partitions)).astype(np.int64)
    write_partitioned(dest_p / "bands" / f"{name}.bin", table, part, c.band_partitions)
    summary = {"part": key, "rows": n_rows, "excluded": len(exclude), "band_rows": int(table.size)}
    write_marker(dest_p / "sig", name, {"fingerprint": pfp, "summary": summary})
    return summary


# ---------------------------------------------------------------------------------------------------------------
# 2. star edges per range of band partitions; 3. verification per range of edge partitions
# ---------------------------------------------------------------------------------------------------------------

def _concat(chunks: list[np.ndarray], dtype: np.dtype) -> np.ndarray:
    chunks = [x for x in chunks if x.size]
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype)


def _put_index(dest: Path, name: str, obj) -> str:
    """A list every task of a step needs (file names, part keys), written once: the tasks get its path, so the
    task graph stays O(tasks) instead of O(tasks x parts)."""
    return str(write_json_atomic(dest / "_index" / f"{name}.json", obj))


def _get_index(path: str):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def edges_task(t: int, lo: int, hi: int, dest: str, index: str, c: NearConfig, fp: str) -> dict:
    """Band partitions ``[lo, hi)`` of every part (band file names in ``index``) -> star edges, partitioned on ``a``."""
    d = Path(dest)
    name = _name(t)
    ufp = _ufp(fp, "edges", lo, hi, c.band_partitions, c.edge_partitions)
    done = _done(d / "edges", name, ufp, d / "edges" / f"{name}.bin")
    if done is not None:
        return done
    rows = _concat([read_partitions(d / "bands" / f"{n}.bin", BAND, lo, hi) for n in _get_index(index)], BAND)
    a, b = bucket_edges(rows["key"], rows["doc"])
    n_rows = int(rows.size)
    del rows
    edges = np.empty(a.size, dtype=EDGE)
    edges["a"], edges["b"] = a, b
    write_partitioned(d / "edges" / f"{name}.bin", edges, doc_partition(a, c.edge_partitions), c.edge_partitions)
    summary = {"band_rows": n_rows, "edge_rows": int(a.size)}
    write_marker(d / "edges", name, {"fingerprint": ufp, "summary": summary})
    return summary


class _SigReader:
    """Rows of the per-part signature files, read through a memory map opened per call (RSS stays bounded)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def gather(self, docs: np.ndarray) -> np.ndarray:
        parts = docs >> 32
        rows = docs & ROW_MASK
        out = None
        for p in np.unique(parts):
            m = np.load(self.folder / f"{int(p):05d}.npy", mmap_mode="r")
            if out is None:
                out = np.empty((docs.size, m.shape[1]), dtype=np.uint32)
            sel = parts == p
            out[sel] = m[rows[sel]]
            del m
        if out is None:
            out = np.empty((0, 0), dtype=np.uint32)
        return out


def verify_task(v: int, lo: int, hi: int, dest: str, index: str, c: NearConfig, fp: str) -> dict:
    """Edge partitions ``[lo, hi)`` of every edges file -> distinct edges whose Jaccard estimate >= threshold."""
    d = Path(dest)
    name = _name(v)
    ufp = _ufp(fp, "verified", lo, hi, c.edge_partitions, c.threshold)
    done = _done(d / "verified", name, ufp, d / "verified" / f"{name}.bin")
    if done is not None:
        return done
    e = _concat([read_partitions(d / "edges" / f"{n}.bin", EDGE, lo, hi) for n in _get_index(index)], EDGE)
    a, b = unique_pairs(e["a"], e["b"])
    del e
    reader = _SigReader(d / "sig")
    keep = np.zeros(a.size, dtype=bool)
    for s in range(0, a.size, c.verify_chunk):
        sa, sb = reader.gather(a[s:s + c.verify_chunk]), reader.gather(b[s:s + c.verify_chunk])
        keep[s:s + c.verify_chunk] = np.mean(sa == sb, axis=1) >= c.threshold
    out = np.empty(int(keep.sum()), dtype=EDGE)
    out["a"], out["b"] = a[keep], b[keep]
    write_rows(d / "verified" / f"{name}.bin", out)
    summary = {"candidate_edges": int(a.size), "verified_edges": int(out.size)}
    write_marker(d / "verified", name, {"fingerprint": ufp, "summary": summary})
    return summary


# ---------------------------------------------------------------------------------------------------------------
# 4. connected components (union-find over dense ids); 5. ranks; 6. keep the best per component
# ---------------------------------------------------------------------------------------------------------------

def components_task(dest: str, part_rows: list[int], verified_names: list[str], fp: str) -> dict:
    """Union-find of the verified edges -> ``cc/labels/NNNNN.parquet`` (node, label) of every clustered row."""
    d = Path(dest)
    ufp = _ufp(fp, "cc", len(part_rows))
    done = _done(d / "cc", "labels", ufp, d / "cc" / "labels")
    if done is not None:
        return done
    shutil.rmtree(d / "cc" / "labels", ignore_errors=True)
    (d / "cc" / "labels").mkdir(parents=True)
    off = np.zeros(len(part_rows) + 1, dtype=np.int64)
    np.cumsum(np.asarray(part_rows, dtype=np.int64), out=off[1:])
    parent = parent_array(int(off[-1]))
    uf_bytes = int(parent.nbytes)
    rounds = 0
    for n in verified_names:
        e = read_rows(d / "verified" / f"{n}.bin", EDGE)
        if e.size:
            da = off[e["a"] >> 32] + (e["a"] & ROW_MASK)
            db = off[e["b"] >> 32] + (e["b"] & ROW_MASK)
            del e
            rounds = max(rounds, union_edges(parent, da, db))
            del da, db
    labels = final_labels(parent)
    mem = members(labels)
    clustered = clusters = 0
    label_parts = []
    for i in range(len(part_rows)):
        s, t = int(off[i]), int(off[i + 1])
        m = mem[s:t]
        rows = np.flatnonzero(m)
        if not rows.size:
            continue
        lab = labels[s:t][m].astype(np.int64)
        lpart = np.searchsorted(off, lab, side="right") - 1
        label_doc = (lpart << 32) | (lab - off[lpart])
        node = (np.int64(i) << 32) | rows.astype(np.int64)
        clusters += int(np.count_nonzero(lab == rows + s))
        clustered += int(rows.size)
        write_table_atomic(pa.table({"node": pa.array(node, pa.int64()), "label": pa.array(label_doc, pa.int64())}),
                           d / "cc" / "labels" / f"{_name(i)}.parquet")
        label_parts.append(i)
    summary = {"clustered_documents": clustered, "clusters": clusters, "union_rounds": rounds,
               "union_find_bytes": uf_bytes, "label_parts": label_parts}
    write_marker(d / "cc", "labels", {"fingerprint": ufp, "summary": summary})
    return summary


def ranked_task(i: int, dest: str, n_parts: int, fp: str) -> dict:
    """Part ``i``'s clustered rows with their rank, one row group per label partition (of ``n_parts``)."""
    d = Path(dest)
    name = _name(i)
    ufp = _ufp(fp, "ranked", n_parts)
    done = _done(d / "ranked", name, ufp, d / "ranked" / f"{name}.parquet")
    if done is not None:
        return done
    t = pq.read_table(d / "cc" / "labels" / f"{name}.parquet")
    node, label = t.column("node").to_numpy(), t.column("label").to_numpy()
    ranks = pq.read_table(d / "docs" / f"{name}.parquet", columns=["rank"]).column("rank")
    lp = doc_partition(label, n_parts)
    order = np.argsort(lp, kind="stable")
    table = pa.table({"lp": pa.array(lp[order], pa.int32()), "label": pa.array(label[order], pa.int64()),
                      "node": pa.array(node[order], pa.int64()),
                      "rank": ranks.take(pa.array(node[order] & ROW_MASK))})
    bounds = np.searchsorted(lp[order], np.arange(n_parts + 1))
    path = d / "ranked" / f"{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(path)
    with pq.ParquetWriter(tmp, table.schema, compression="zstd") as w:
        for r in range(n_parts):  # one row group per label partition: a reader of one partition skips the others
            if bounds[r + 1] > bounds[r]:
                w.write_table(table.slice(int(bounds[r]), int(bounds[r + 1] - bounds[r])))
    os.replace(tmp, path)
    summary = {"rows": int(table.num_rows)}
    write_marker(d / "ranked", name, {"fingerprint": ufp, "summary": summary})
    return summary


def losers_task(r: int, dest: str, n_parts: int, index: str, fp: str) -> dict:
    """Label partition ``r``: every clustered document whose rank is not the best of its component (``index``: the
    ranked file names and the part keys)."""
    d = Path(dest)
    name = _name(r)
    ufp = _ufp(fp, "losers", n_parts)
    done = _done(d / "losers", name, ufp, d / "losers" / f"{name}.parquet")
    if done is not None:
        return done
    idx = _get_index(index)
    keys = idx["keys"]
    tables = [pq.read_table(d / "ranked" / f"{n}.parquet", columns=["label", "node", "rank"],
                            filters=[("lp", "=", r)]) for n in idx["ranked"]]
    df = pa.concat_tables(tables).to_pandas() if tables else None
    if df is None or not len(df):
        lose = np.zeros(0, np.int64)
        summary = {"clustered_documents": 0, "clusters": 0, "losers": 0}
    else:
        best = df.groupby("label")["rank"].transform("max")
        lose = df["node"].to_numpy()[(df["rank"] != best).to_numpy()]
        summary = {"clustered_documents": len(df), "clusters": int(df["label"].nunique()), "losers": int(lose.size)}
    parts = pa.array([keys[int(p)] for p in (lose >> 32)], pa.string())
    write_table_atomic(pa.table({"part": parts, "row": pa.array(lose & ROW_MASK, pa.int64())}, schema=LOSERS_SCHEMA),
                       d / "losers" / f"{name}.parquet")
    write_marker(d / "losers", name, {"fingerprint": ufp, "summary": summary})
    return summary


# ---------------------------------------------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------------------------------------------

def _ranges(n: int, tasks: int) -> list[tuple[int, int]]:
    """``tasks`` contiguous ranges splitting ``[0, n)`` as evenly as possible (none for no task)."""
    if tasks <= 0:
        return []
    b = [n * k // tasks for k in range(tasks + 1)]
    return [(b[k], b[k + 1]) for k in range(tasks)]


def _tasks_for(rows: int, per_task: int, most: int) -> int:
    return min(most, max(1, math.ceil(rows / per_task))) if rows else 0


def _run(scheduler, fn, arg_lists: list[tuple]) -> list[dict]:
    """``[fn(*args) for args in arg_lists]``; on a cluster through the engine's window of tasks in flight (a
    90,000-part run is never one 90,000-task graph), failures raised after the rest finish."""
    if not arg_lists:
        return []
    if scheduler != "distributed":
        return [fn(*args) for args in arg_lists]
    from dask.distributed import get_client

    from .executor import in_flight_cap, windowed

    client = get_client()
    out: list = [None] * len(arg_lists)
    errors = []
    for i, ok, value in windowed(client, _star, arg_lists, in_flight_cap(client), name=fn.__name__, fn=fn):
        if ok:
            out[i] = value
        else:
            errors.append(value)
    if errors:
        raise RuntimeError(f"{len(errors)} task(s) of {fn.__name__} failed; first: {errors[0]!r}") from errors[0]
    return out


def _star(args: tuple, fn):
    return fn(*args)


def _clear_losers(folder: Path, keep: set[str]) -> None:
    """Remove loser files of an earlier, different run (a run with fewer label partitions leaves extra files)."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in folder.glob("*.parquet"):
        if f.name not in keep:
            f.unlink()


def near_duplicate_losers(part_files: list[Path], dest: Path, fp: str, scheduler: str,
                          cfg: dict | NearConfig | None = None, exclude_dir: Path | None = None) -> dict:
    """Documents that have a near duplicate (MinHash/LSH, verified Jaccard estimate) with a better capture rank.

    ``part_files``: document parquet parts (``texts`` and ``general_metadata`` columns are read); their file name
    without ``.parquet`` is the part key of the output.  ``exclude_dir``: a (part, row) losers folder whose rows are
    ignored (e.g. the URL-dedup losers).  Writes ``dest/losers/*.parquet`` (part, row) and returns a summary
    (documents, candidate and verified edges, clusters, losers) also kept in the marker.
    """
    done = read_marker(dest, "near_losers", fp)
    if done is not None:
        return done["summary"]
    c = near_config(cfg)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    part_files = [Path(p) for p in part_files]
    present = [i for i, p in enumerate(part_files) if p.exists()]
    excl = str(exclude_dir) if exclude_dir else None
    sums = _run(scheduler, signature_part, [(i, str(part_files[i]), str(dest), c, excl, fp) for i in present])
    part_rows = [0] * len(part_files)
    for i, s in zip(present, sums):
        part_rows[i] = s["rows"]
    band_rows = sum(s["band_rows"] for s in sums)
    summary = {"parts": len(sums), "documents": sum(s["rows"] - s["excluded"] for s in sums),
               "band_rows": band_rows, "edge_tasks": 0, "candidate_edge_rows": 0, "candidate_edges": 0,
               "verify_tasks": 0, "verified_edges": 0, "clustered_documents": 0, "clusters": 0, "losers": 0,
               "union_rounds": 0, "union_find_bytes": 0, "loser_tasks": 0}
    band_names = [_name(i) for i, s in zip(present, sums) if s["band_rows"]]
    nb = _tasks_for(band_rows, c.band_rows_per_partition, c.band_partitions)
    index = _put_index(dest, "bands", band_names)
    esums = _run(scheduler, edges_task, [(t, lo, hi, str(dest), index, c, fp)
                                         for t, (lo, hi) in enumerate(_ranges(c.band_partitions, nb))])
    edge_rows = sum(s["edge_rows"] for s in esums)
    edge_names = [_name(t) for t, s in enumerate(esums) if s["edge_rows"]]
    nv = _tasks_for(edge_rows, c.edges_per_partition, c.edge_partitions)
    index = _put_index(dest, "edges", edge_names)
    vsums = _run(scheduler, verify_task, [(v, lo, hi, str(dest), index, c, fp)
                                          for v, (lo, hi) in enumerate(_ranges(c.edge_partitions, nv))])
    summary.update(edge_tasks=nb, candidate_edge_rows=edge_rows, verify_tasks=nv,
                   candidate_edges=sum(s["candidate_edges"] for s in vsums),
                   verified_edges=sum(s["verified_edges"] for s in vsums))
    losers_dir = dest / "losers"
    if not summary["verified_edges"]:
        _clear_losers(losers_dir, set())
    else:
        verified_names = [_name(v) for v, s in enumerate(vsums) if s["verified_edges"]]
        cc = _run(scheduler, components_task, [(str(dest), part_rows, verified_names, fp)])[0]
        nr = _tasks_for(cc["clustered_documents"], c.ranks_per_partition, 1 << 16)
        _run(scheduler, ranked_task, [(i, str(dest), nr, fp) for i in cc["label_parts"]])
        _clear_losers(losers_dir, {f"{_name(r)}.parquet" for r in range(nr)})
        index = _put_index(dest, "losers", {"ranked": [_name(i) for i in cc["label_parts"]],
                                            "keys": [part_key(p) for p in part_files]})
        lsums = _run(scheduler, losers_task, [(r, str(dest), nr, index, fp) for r in range(nr)])
        summary.update(clustered_documents=cc["clustered_documents"], clusters=cc["clusters"],
                       union_rounds=cc["union_rounds"], union_find_bytes=cc["union_find_bytes"], loser_tasks=nr,
                       losers=sum(s["losers"] for s in lsums))
        if summary["losers"] != cc["clustered_documents"] - cc["clusters"]:
            raise RuntimeError(f"near_dedup: {summary['losers']} losers for {cc['clustered_documents']} clustered "
                               f"documents in {cc['clusters']} clusters")
    write_marker(dest, "near_losers", {"fingerprint": fp, "summary": summary})
    log.info("near_dedup: %s", summary)
    return summary
