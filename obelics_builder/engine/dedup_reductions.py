"""Run-wide dedup steps on Dask: MinHash near duplicates, image-URL sets, per-domain paragraph counts, opt-out URLs.

Same contract as ``reductions``: inputs are per-part parquet files, outputs are parquet folders with a completion
marker carrying a fingerprint (rerun with the same fingerprint = nothing to do), and memory is bounded by the
partition size, never by the corpus size:

* MinHash (:func:`near_duplicate_losers`):
  1. per part (a Dask task each, resumable with a marker): signatures -> ``sig/NNNNN.npy`` (row-aligned with the
     part), ranks -> ``docs/NNNNN.parquet``, LSH band keys -> ``bands/NNNNN.parquet`` (key, doc);
  2. shuffle the band rows on the key (disk-based p2p shuffle on a cluster); each bucket with several documents
     gives star edges (smallest doc id, other doc);
  3. shuffle the edges on the first doc, drop repeated edges, verify each one on the full signatures (read from the
     memory-mapped ``.npy`` files, in chunks of ``verify_chunk`` edges): Jaccard estimate >= ``threshold``;
  4. connected components of the verified edges by min-label propagation with pointer jumping (each iteration is a
     pair of Dask merges and a groupby, written to parquet so the task graph never grows);
  5. per component keep the document with the best capture rank (``dedup.urls.capture_rank``; ties by doc id),
     every other member is a loser: ``losers/*.parquet`` with columns (part, row), the format of
     ``reductions.url_losers``.
  A doc id is ``part_index << 32 | row``; ``part_index`` is the position of the part in ``part_files``.
* Image-URL sets (:func:`keep_best_losers` on ``dedup.image_sets.image_set_keys`` files).
* Paragraphs (:func:`frequent_paragraphs` on ``dedup.paragraphs.paragraph_counts`` files).
* Opt-out (:func:`unique_urls_plan`: the distinct URLs to look up, hash-partitioned).

Wiring in ``pipeline.run_pipeline`` (proposed; the lead wires it):

* step 3, right after ``url_losers(...)``::

      near_dir = out / "parts" / "url_dedup" / "_near"
      near_cfg = recipe.get("near_dedup") or {}
      if near_cfg.get("enabled", True):
          near_duplicate_losers([text_dir / f"{k}.parquet" for k in keys], near_dir,
                                fingerprint(text_fp, near_cfg), engine.dask_scheduler, near_cfg,
                                exclude_dir=losers_dir)
  and ``tasks.dedup_part`` also drops ``rows_to_drop(near_dir / "losers", key)`` with reason ``near_duplicate``
  (its fingerprint gains the near fingerprint); everything downstream (image plan, fetch) then sees survivors only.
* after images: split ``finalize_part`` in two per-part passes around two run-wide reductions:
  pass A (image rules, images, final cleaning as today) also writes ``<part>.pcounts.parquet``
  (``dedup.paragraphs.paragraph_counts`` merged per part); run-wide :func:`frequent_paragraphs`;
  pass B: ``dedup.paragraphs.dedup_paragraphs`` (resources ``frequent`` = :func:`load_frequent_paragraphs` for the
  part's domains), ``final_cleaning_stage`` again, writes ``<part>.sets.parquet`` (``image_sets.image_set_keys``)
  and ``<part>.urls.parquet`` (``optout.stage.collect_urls``); run-wide :func:`keep_best_losers` on the sets files and
  :func:`unique_urls_plan` on the url files, Spawning per URL bucket in the driver (``optout.stage.spawning_lookup``,
  one client, so the requests/s cap holds) and ``optout.c2pa.scan_image_table`` per image-table part (engine.map);
  pass C: ``image_sets.drop_duplicate_image_sets`` then ``optout.stage.optout_stage`` -> ``documents/``, each part
  writing its manifest rows, merged at the end with ``optout.manifest.merge_manifests(..., out)``.
"""
from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..io.markers import read_marker, write_marker
from ..io.parquet import write_table_atomic

log = logging.getLogger("obelics_builder")

DEFAULT_NEAR = {"num_perm": 128, "bands": 20, "rows": 6, "threshold": 0.8, "ngram": 5, "seed": 1,
                "band_rows_per_partition": 2_000_000, "edges_per_partition": 1_000_000, "verify_chunk": 100_000,
                "batch_rows": 2048, "max_iterations": 64}

LOSERS_SCHEMA = pa.schema([("part", pa.string()), ("row", pa.int64())])
BANDS_SCHEMA = pa.schema([("key", pa.uint64()), ("doc", pa.int64())])
EDGES_SCHEMA = pa.schema([("a", pa.int64()), ("b", pa.int64())])
ROW_MASK = (1 << 32) - 1


def part_key(path: str | Path) -> str:
    """The part key of a part file (``<key>.parquet`` -> ``<key>``), as used in (part, row) loser files."""
    name = Path(path).name
    return name[: -len(".parquet")] if name.endswith(".parquet") else name


def _nonempty(files) -> list[str]:
    return [str(f) for f in files if Path(f).exists() and pq.ParquetFile(f).metadata.num_rows > 0]


def rows_to_drop(losers_dir: str | Path, key: str) -> set[int]:
    """Rows of part ``key`` listed in a losers folder ((part, row) parquet files); empty if the folder is absent."""
    path = Path(losers_dir)
    rows: set[int] = set()
    if not path.exists():
        return rows
    for f in sorted(path.glob("*.parquet")):
        t = pq.read_table(f, columns=["part", "row"], filters=[("part", "=", key)])
        rows.update(t.column("row").to_pylist())
    return rows


# ---------------------------------------------------------------------------------------------------------------
# MinHash near duplicates
# ---------------------------------------------------------------------------------------------------------------

def near_config(cfg: dict | None) -> dict:
    c = {**DEFAULT_NEAR, **(cfg or {})}
    if c["bands"] * c["rows"] > c["num_perm"]:
        raise ValueError(f"near_dedup: bands*rows ({c['bands'] * c['rows']}) > num_perm ({c['num_perm']})")
    if not 0.0 < float(c["threshold"]) <= 1.0:
        raise ValueError("near_dedup: threshold must be in (0, 1]")
    return c


def signature_part(index: int, path: str, dest: str, cfg: dict, exclude_dir: str | None, fp: str) -> dict:
    """One part: signatures, ranks and band keys (skips rows listed in ``exclude_dir``, e.g. URL-dedup losers)."""
    from ..dedup.minhash import band_keys, is_empty, signatures
    from ..dedup.urls import capture_rank

    dest_p = Path(dest)
    name = f"{index:05d}"
    pfp = f"{fp}:{path}"
    done = read_marker(dest_p / "sig", name, pfp)
    if done is not None:
        return done["summary"]
    key = part_key(path)
    exclude = rows_to_drop(exclude_dir, key) if exclude_dir else set()
    pf = pq.ParquetFile(path)
    n_rows = pf.metadata.num_rows
    sig = np.full((n_rows, cfg["num_perm"]), np.uint32(0xFFFFFFFF), dtype=np.uint32)
    ranks = [""] * n_rows
    band_key_parts, band_doc_parts = [], []
    row0 = 0
    base = index << 32
    for batch in pf.iter_batches(batch_size=int(cfg["batch_rows"]), columns=["texts", "general_metadata"]):
        texts = batch.column(0).to_pylist()
        gms = batch.column(1).to_pylist()
        n = len(texts)
        keep = [i for i in range(n) if row0 + i not in exclude]
        docs_text = ["\n".join(t for t in (texts[i] or []) if t is not None) for i in keep]
        s = signatures(docs_text, cfg["num_perm"], cfg["seed"], cfg["ngram"])
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
            keys = band_keys(s[ok], cfg["bands"], cfg["rows"])
            band_key_parts.append(keys.reshape(-1))
            band_doc_parts.append(np.repeat(rows[ok] | base, cfg["bands"]))
        row0 += n
    (dest_p / "sig").mkdir(parents=True, exist_ok=True)
    tmp = dest_p / "sig" / f".{name}.tmp.npy"
    np.save(tmp, sig)
    tmp.replace(dest_p / "sig" / f"{name}.npy")
    write_table_atomic(pa.table({"rank": pa.array(ranks, pa.string())}), dest_p / "docs" / f"{name}.parquet")
    bk = np.concatenate(band_key_parts) if band_key_parts else np.zeros(0, np.uint64)
    bd = np.concatenate(band_doc_parts) if band_doc_parts else np.zeros(0, np.int64)
    write_table_atomic(pa.table({"key": pa.array(bk, pa.uint64()), "doc": pa.array(bd, pa.int64())},
                                schema=BANDS_SCHEMA), dest_p / "bands" / f"{name}.parquet")
    summary = {"part": key, "rows": n_rows, "excluded": len(exclude), "band_rows": int(bk.size)}
    write_marker(dest_p / "sig", name, {"fingerprint": pfp, "summary": summary})
    return summary


def _bucket_edges(df):
    """Star edges (smallest doc, other doc) of every band bucket holding more than one document."""
    import pandas as pd

    if len(df) == 0:
        return pd.DataFrame({"a": np.zeros(0, np.int64), "b": np.zeros(0, np.int64)})
    keys = df["key"].to_numpy()
    docs = df["doc"].to_numpy()
    order = np.lexsort((docs, keys))
    keys, docs = keys[order], docs[order]
    start = np.r_[True, keys[1:] != keys[:-1]]
    group = np.cumsum(start) - 1
    first_doc = docs[start][group]
    sel = (~start) & (docs != first_doc)
    out = pd.DataFrame({"a": first_doc[sel], "b": docs[sel]})
    return out.drop_duplicates(ignore_index=True)


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


def _verify_edges(df, sig_dir: str, threshold: float, chunk: int):
    import pandas as pd

    df = df.drop_duplicates(ignore_index=True)
    if len(df) == 0:
        return pd.DataFrame({"a": np.zeros(0, np.int64), "b": np.zeros(0, np.int64)})
    df = df.sort_values(["a", "b"], ignore_index=True)
    reader = _SigReader(Path(sig_dir))
    a_all, b_all = df["a"].to_numpy(), df["b"].to_numpy()
    keep = np.zeros(len(df), dtype=bool)
    for lo in range(0, len(df), chunk):
        a, b = a_all[lo:lo + chunk], b_all[lo:lo + chunk]
        sa, sb = reader.gather(a), reader.gather(b)
        keep[lo:lo + chunk] = np.mean(sa == sb, axis=1) >= threshold
    return df[keep].reset_index(drop=True)


def _propagate(edges_dir: str, labels_dir: str, out_dir: str, scheduler: str) -> None:
    """One min-label propagation step over the edges, then one pointer-jumping step; writes (node, label)."""
    import dask.dataframe as dd

    e = dd.read_parquet(edges_dir)
    lab = dd.read_parquet(labels_dir)
    j = e.merge(lab.rename(columns={"node": "a", "label": "la"}), on="a", how="inner")
    j = j.merge(lab.rename(columns={"node": "b", "label": "lb"}), on="b", how="inner")
    m = j["la"].where(j["la"] < j["lb"], j["lb"])
    prop = dd.concat([
        j[["a"]].rename(columns={"a": "node"}).assign(label=m),
        j[["b"]].rename(columns={"b": "node"}).assign(label=m),
        lab,
    ])
    tmp = out_dir + ".prop"
    shutil.rmtree(tmp, ignore_errors=True)
    prop.groupby("node")["label"].min().reset_index().to_parquet(
        tmp, write_index=False, compute_kwargs={"scheduler": scheduler})
    # pointer jumping: a node's label becomes its label's label when smaller (every label is itself a node).
    # Both sides are read from disk: a self-merge of one Dask expression is not reliable (dask-expr 2026.8).
    new = dd.read_parquet(tmp)
    other = dd.read_parquet(tmp).rename(columns={"node": "label", "label": "hop"})
    hop = new.merge(other, on="label", how="inner")
    hop = hop.assign(label=hop["label"].where(hop["label"] <= hop["hop"], hop["hop"]))[["node", "label"]]
    hop.to_parquet(out_dir, write_index=False, compute_kwargs={"scheduler": scheduler})
    shutil.rmtree(tmp, ignore_errors=True)


def connected_components(edges_dir: Path, work: Path, scheduler: str, max_iterations: int = 64) -> Path:
    """Min-label propagation over the edges in ``edges_dir`` (columns a, b); returns a folder of (node, label)."""
    import dask.dataframe as dd

    e = dd.read_parquet(str(edges_dir))
    init = dd.concat([e[["a"]].rename(columns={"a": "node"}), e[["b"]].rename(columns={"b": "node"})])
    init = init.drop_duplicates()
    init = init.assign(label=init["node"])
    cur = work / "labels-0"
    shutil.rmtree(cur, ignore_errors=True)
    init.to_parquet(str(cur), write_index=False, compute_kwargs={"scheduler": scheduler})
    for it in range(1, max_iterations + 1):
        nxt = work / f"labels-{it}"
        shutil.rmtree(nxt, ignore_errors=True)
        _propagate(str(edges_dir), str(cur), str(nxt), scheduler)
        old = dd.read_parquet(str(cur)).rename(columns={"label": "old"})
        new = dd.read_parquet(str(nxt))
        cmp = new.merge(old, on="node", how="inner")
        changed = int((cmp["label"] != cmp["old"]).sum().compute(scheduler=scheduler))
        shutil.rmtree(cur, ignore_errors=True)
        cur = nxt
        log.info("near_dedup: connected components iteration %d: %d labels changed", it, changed)
        if changed == 0:
            return cur
    raise RuntimeError(f"near_dedup: connected components did not converge in {max_iterations} iterations")


def _attach_rank(df, docs_dir: str):
    parts = (df["node"].to_numpy() >> 32)
    rank = np.empty(len(df), dtype=object)
    for p in np.unique(parts):
        sel = parts == p
        col = pq.read_table(Path(docs_dir) / f"{int(p):05d}.parquet", columns=["rank"]).column("rank")
        rows = df["node"].to_numpy()[sel] & ROW_MASK
        rank[sel] = np.asarray(col.take(pa.array(rows)).to_pylist(), dtype=object)
    import pandas as pd

    return df.assign(rank=pd.Series(rank, index=df.index, dtype="str"))


def near_duplicate_losers(part_files: list[Path], dest: Path, fp: str, scheduler: str, cfg: dict | None = None,
                          exclude_dir: Path | None = None) -> dict:
    """Documents that have a near duplicate (MinHash/LSH, verified Jaccard estimate) with a better capture rank.

    ``part_files``: document parquet parts (``texts`` and ``general_metadata`` columns are read); their file name
    without ``.parquet`` is the part key of the output.  ``exclude_dir``: a (part, row) losers folder whose rows are
    ignored (e.g. the URL-dedup losers).  Writes ``dest/losers/*.parquet`` (part, row) and returns a summary
    (documents, candidate and verified edges, clusters, losers) also kept in the marker.
    """
    done = read_marker(dest, "near_losers", fp)
    if done is not None:
        return done["summary"]
    import dask
    import dask.dataframe as dd
    import pandas as pd

    c = near_config(cfg)
    shutil.rmtree(dest / "losers", ignore_errors=True)
    for sub in ("edges", "verified", "cc", "ranked"):
        shutil.rmtree(dest / sub, ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    part_files = [Path(p) for p in part_files]
    # drop signature outputs of an earlier run with another fingerprint (per-part markers are fingerprinted too)
    tasks = [dask.delayed(signature_part, pure=False)(i, str(p), str(dest), c,
                                                      str(exclude_dir) if exclude_dir else None, fp)
             for i, p in enumerate(part_files) if p.exists()]
    summaries = list(dask.compute(*tasks, scheduler=scheduler)) if tasks else []
    band_rows = sum(s["band_rows"] for s in summaries)
    summary = {"parts": len(summaries), "documents": sum(s["rows"] - s["excluded"] for s in summaries),
               "band_rows": band_rows, "candidate_edges": 0, "verified_edges": 0, "clustered_documents": 0,
               "clusters": 0, "losers": 0, "cc_iterations": 0}
    (dest / "losers").mkdir(parents=True, exist_ok=True)
    band_files = _nonempty(dest / "bands" / f"{i:05d}.parquet" for i, p in enumerate(part_files) if p.exists())
    if band_files:
        bands = dd.read_parquet(band_files, columns=["key", "doc"])
        nparts = max(1, math.ceil(band_rows / int(c["band_rows_per_partition"])))
        edges = bands.shuffle(on="key", npartitions=nparts).map_partitions(
            _bucket_edges, meta=pd.DataFrame({"a": np.zeros(0, np.int64), "b": np.zeros(0, np.int64)}))
        edges.to_parquet(str(dest / "edges"), write_index=False, compute_kwargs={"scheduler": scheduler})
        cand = dd.read_parquet(str(dest / "edges"))
        n_cand = int(cand.shape[0].compute(scheduler=scheduler))
        summary["candidate_edges"] = n_cand
        if n_cand:
            eparts = max(1, math.ceil(n_cand / int(c["edges_per_partition"])))
            verified = cand.shuffle(on="a", npartitions=eparts).map_partitions(
                _verify_edges, str(dest / "sig"), float(c["threshold"]), int(c["verify_chunk"]),
                meta=pd.DataFrame({"a": np.zeros(0, np.int64), "b": np.zeros(0, np.int64)}))
            verified.to_parquet(str(dest / "verified"), write_index=False, compute_kwargs={"scheduler": scheduler})
            ver = dd.read_parquet(str(dest / "verified"))
            n_ver = int(ver.shape[0].compute(scheduler=scheduler))
            summary["verified_edges"] = n_ver
            if n_ver:
                (dest / "cc").mkdir(parents=True, exist_ok=True)
                labels_dir = connected_components(dest / "verified", dest / "cc", scheduler, int(c["max_iterations"]))
                summary["cc_iterations"] = int(labels_dir.name.split("-")[1])
                lab = dd.read_parquet(str(labels_dir))
                ranked = lab.assign(p=lab["node"] // (1 << 32)).shuffle(on="p").map_partitions(
                    _attach_rank, str(dest / "docs"),
                    meta=pd.DataFrame({"node": np.zeros(0, np.int64), "label": np.zeros(0, np.int64),
                                       "p": np.zeros(0, np.int64), "rank": pd.Series([], dtype="str")}))
                ranked.to_parquet(str(dest / "ranked"), write_index=False, compute_kwargs={"scheduler": scheduler})
                ranked = dd.read_parquet(str(dest / "ranked"))
                best = ranked.groupby("label")["rank"].max().rename("best").reset_index()
                j = ranked.merge(best, on="label", how="inner")
                losers = j[j["rank"] != j["best"]][["node"]]
                keys = [part_key(p) for p in part_files]

                def to_part_row(df, keys=keys):
                    nodes = df["node"].to_numpy()
                    return pd.DataFrame({"part": pd.Series([keys[int(x)] for x in (nodes >> 32)], dtype="str"),
                                         "row": (nodes & ROW_MASK).astype(np.int64)})

                losers = losers.map_partitions(to_part_row, meta=pd.DataFrame(
                    {"part": pd.Series([], dtype="str"), "row": np.zeros(0, np.int64)}))
                losers.to_parquet(str(dest / "losers"), write_index=False, compute_kwargs={"scheduler": scheduler})
                summary["clustered_documents"] = int(ranked.shape[0].compute(scheduler=scheduler))
                summary["clusters"] = int(best.shape[0].compute(scheduler=scheduler))
                summary["losers"] = summary["clustered_documents"] - summary["clusters"]
    write_marker(dest, "near_losers", {"fingerprint": fp, "summary": summary})
    return summary


# ---------------------------------------------------------------------------------------------------------------
# Generic "same key: keep the best rank" (image-URL sets)
# ---------------------------------------------------------------------------------------------------------------

def keep_best_losers(keys_files: list[Path], dest: Path, fp: str, scheduler: str, key_column: str = "key") -> int:
    """Rows (part, row) whose ``key_column`` value has a better ``rank`` elsewhere in the run -> ``dest``.

    Input files have columns (key_column, rank, row, part); rows with a null/empty key never lose.  Ranks must be
    unique per row (``dedup.image_sets`` appends part and row), so exactly one row per key is kept.
    Returns the number of losers.
    """
    done = read_marker(dest, "losers", fp)
    if done is not None:
        return int(done.get("losers", 0))
    import dask.dataframe as dd

    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    files = _nonempty(keys_files)
    n = 0
    if files:
        df = dd.read_parquet(files, columns=[key_column, "rank", "row", "part"])
        df = df[df[key_column].notnull() & (df[key_column] != "")]
        best = df.groupby(key_column)["rank"].max().rename("best").reset_index()
        joined = df.merge(best, on=key_column, how="inner")
        losers = joined[joined["rank"] != joined["best"]][["part", "row"]]
        losers.to_parquet(str(dest), write_index=False, compute_kwargs={"scheduler": scheduler})
        n = sum(pq.ParquetFile(f).metadata.num_rows for f in dest.glob("*.parquet"))
    write_marker(dest, "losers", {"fingerprint": fp, "losers": n})
    return n


# ---------------------------------------------------------------------------------------------------------------
# Per-domain paragraph counts
# ---------------------------------------------------------------------------------------------------------------

def frequent_paragraphs(count_files: list[Path], dest: Path, fp: str, scheduler: str, min_count: int = 3,
                        buckets: int = 64) -> int:
    """(domain, paragraph hash) pairs counted ``>= min_count`` times over the run.

    Input: ``dedup.paragraphs.paragraph_counts`` files (domain, phash, n).  Output: ``dest/bucket=B/*.parquet``
    (domain, phash), bucketed on the domain so a part reads only the buckets of its domains
    (:func:`load_frequent_paragraphs`).  Returns the number of frequent pairs.
    """
    done = read_marker(dest, "frequent", fp)
    if done is not None:
        return int(done["pairs"])
    import dask.dataframe as dd

    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    files = _nonempty(count_files)
    total = 0
    if files:
        df = dd.read_parquet(files, columns=["domain", "phash", "n"])
        counts = df.groupby(["domain", "phash"])["n"].sum().reset_index()
        freq = counts[counts["n"] >= int(min_count)][["domain", "phash"]]

        def bucket(pdf, b=buckets):
            from ..dedup.paragraphs import domain_bucket

            return pdf.assign(bucket=np.asarray([domain_bucket(d, b) for d in pdf["domain"]], dtype=np.int64))

        freq = freq.map_partitions(bucket, meta=bucket(freq._meta))
        freq.to_parquet(str(dest), partition_on=["bucket"], write_index=False, compute_kwargs={"scheduler": scheduler})
        total = sum(pq.ParquetFile(f).metadata.num_rows for f in dest.glob("bucket=*/*.parquet"))
    write_marker(dest, "frequent", {"fingerprint": fp, "pairs": total, "buckets": buckets, "min_count": min_count})
    return total


def load_frequent_paragraphs(dest: Path, domains: set[str]) -> set[tuple[str, int]]:
    """The frequent (domain, phash) pairs of the given domains (reads only their buckets)."""
    from ..dedup.paragraphs import domain_bucket

    meta = read_marker(dest, "frequent") or {}
    nb = int(meta.get("buckets", 64))
    out: set[tuple[str, int]] = set()
    wanted = pa.array(sorted(domains), pa.string())
    import pyarrow.compute as pc

    for b in sorted({domain_bucket(d, nb) for d in domains}):
        for f in sorted((dest / f"bucket={b}").glob("*.parquet")):
            t = pq.read_table(f, columns=["domain", "phash"])
            t = t.filter(pc.is_in(t.column("domain"), value_set=wanted))
            out.update(zip(t.column("domain").to_pylist(), t.column("phash").to_pylist()))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Opt-out: distinct URLs to look up
# ---------------------------------------------------------------------------------------------------------------

def unique_urls_plan(url_files: list[Path], dest: Path, fp: str, scheduler: str, urls_per_bucket: int = 100_000) -> int:
    """Distinct (url, kind) rows of ``optout.stage.collect_urls`` files, hash-partitioned into ``dest/bucket=B``.

    Returns the number of buckets; read one with :func:`bucket_urls`.
    """
    done = read_marker(dest, "urls", fp)
    if done is not None:
        return int(done["buckets"])
    import dask.dataframe as dd
    import pandas as pd

    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    files = _nonempty(url_files)
    nb = 0
    if files:
        df = dd.read_parquet(files, columns=["url", "kind"]).drop_duplicates()
        n = int(df.shape[0].compute(scheduler=scheduler))
        nb = max(1, math.ceil(n / urls_per_bucket)) if n else 0
        if nb:
            def bucket(pdf, p=nb):
                h = pd.util.hash_pandas_object(pdf["url"], index=False).astype("uint64")
                return pdf.assign(bucket=(h % p).astype("int64"))

            df = df.map_partitions(bucket, meta=bucket(df._meta))
            df.to_parquet(str(dest), partition_on=["bucket"], write_index=False, compute_kwargs={"scheduler": scheduler})
    write_marker(dest, "urls", {"fingerprint": fp, "buckets": nb})
    return nb


def bucket_urls(dest: Path, bucket: int) -> list[tuple[str, str]]:
    rows: set[tuple[str, str]] = set()
    for f in sorted((dest / f"bucket={bucket}").glob("*.parquet")):
        t = pq.read_table(f, columns=["url", "kind"])
        rows.update(zip(t.column("url").to_pylist(), t.column("kind").to_pylist()))
    return sorted(rows)
