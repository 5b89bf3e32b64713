"""Per-domain paragraph dedup (reference §5.6, OBELICS step 09) and duplicate paragraphs inside a document.

* Domain = ``urlparse(url).netloc`` exactly as OBELICS (host as written, ``www.`` and port kept).
* Every exact paragraph (text entries split on ``"\\n\\n"``, :func:`obelics_builder.schema.paragraphs`) is counted
  per domain over the whole run, repeats inside one document included.  The run-wide count is a Dask groupby
  (``engine.dedup_reductions.frequent_paragraphs``) over per-part pre-aggregated counts of 64-bit paragraph hashes
  (keyed SipHash of pandas: identical in every process; a collision would need ~2**32 paragraphs in one domain).
* Paragraphs counted ``>= min_count`` (3) times in a domain are removed everywhere in that domain, no copy kept,
  except paragraphs containing the END_OF_DOCUMENT marker.
* Within one document, a paragraph repeated exactly is kept once (first occurrence), END_OF_DOCUMENT excepted.
* A text position left without paragraphs is removed (with its ``node_`` scores); documents are kept (the final
  cleaning decides on documents left without text).
"""
from __future__ import annotations

import zlib
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa

from ..schema import END_OF_DOCUMENT, PARAGRAPH_SEP, keep_positions
from ..stats import StageContext

COUNTS_SCHEMA = pa.schema([("domain", pa.string()), ("phash", pa.uint64()), ("n", pa.int64())])


def domain(url: str) -> str:
    try:
        return urlsplit(url or "").netloc
    except ValueError:
        return ""


def domain_bucket(dom: str, buckets: int) -> int:
    return zlib.crc32(dom.encode("utf-8", "surrogatepass")) % buckets


def paragraph_hashes(paras: list[str]) -> np.ndarray:
    import pandas as pd

    if not paras:
        return np.zeros(0, np.uint64)
    return pd.util.hash_array(np.asarray(paras, dtype=object), categorize=False).astype(np.uint64)


def _split(text: str) -> list[str]:
    return [p for p in text.split(PARAGRAPH_SEP) if p.strip()]


def paragraph_counts(docs: list[dict]) -> dict[str, list]:
    """Columns (domain, phash, n): counts of each paragraph per domain within a batch (pre-aggregated)."""
    counts: dict[tuple[str, int], int] = {}
    doms: list[str] = []
    paras: list[str] = []
    for d in docs:
        dom = domain(d["general_metadata"].get("url", ""))
        ps = [p for t in d["texts"] if t is not None for p in _split(t) if END_OF_DOCUMENT not in p]
        paras += ps
        doms += [dom] * len(ps)
    for dom, h in zip(doms, paragraph_hashes(paras).tolist()):  # one hash call per batch (hashes are per string)
        counts[(dom, h)] = counts.get((dom, h), 0) + 1
    return {"domain": [k[0] for k in counts], "phash": [k[1] for k in counts], "n": list(counts.values())}


def merge_counts(acc: dict[tuple[str, int], int], cols: dict[str, list]) -> None:
    for dom, h, n in zip(cols["domain"], cols["phash"], cols["n"]):
        acc[(dom, h)] = acc.get((dom, h), 0) + n


def counts_table(acc: dict[tuple[str, int], int]) -> pa.Table:
    return pa.table({"domain": [k[0] for k in acc], "phash": pa.array([k[1] for k in acc], pa.uint64()),
                     "n": list(acc.values())}, schema=COUNTS_SCHEMA)


def dedup_paragraphs(docs: list[dict], ctx: StageContext) -> list[dict]:
    """Stage: drop domain-frequent paragraphs and repeats inside a document.

    ``ctx.resources["frequent"]``: set of (domain, phash) pairs (``dedup_reductions.load_frequent_paragraphs``);
    without it only the repeats inside a document are removed.  Node removals are counted with the reasons
    ``paragraph:domain_frequent`` and ``paragraph:repeated_in_document``.
    """
    frequent = ctx.resources.get("frequent") or set()
    if frequent:  # every paragraph of the batch hashed in one call (a hash depends on the string alone)
        batch = [p for d in docs for t in d["texts"] if t is not None for p in t.split(PARAGRAPH_SEP) if p.strip()]
        hash_of = dict(zip(batch, paragraph_hashes(batch).tolist()))
    else:
        hash_of = {}
    for d in docs:
        dom = domain(d["general_metadata"].get("url", ""))
        seen: set[str] = set()
        keep_pos = []
        changed = False
        node_cols = [k for k in d if k.startswith("node_") and isinstance(d[k], list) and len(d[k]) == len(d["texts"])]
        for i, t in enumerate(d["texts"]):
            if t is None:
                keep_pos.append(True)
                continue
            raw = t.split(PARAGRAPH_SEP)
            nonempty = [p for p in raw if p.strip()]
            kept, kept_idx, j = [], [], 0
            for p in raw:
                if not p.strip():
                    continue
                eod = END_OF_DOCUMENT in p
                if not eod and frequent and (dom, hash_of[p]) in frequent:
                    ctx.remove("paragraph:domain_frequent", unit="nodes")
                elif not eod and p in seen:
                    ctx.remove("paragraph:repeated_in_document", unit="nodes")
                else:
                    seen.add(p)
                    kept.append(p)
                    kept_idx.append(j)
                j += 1
            if len(kept) != len(nonempty):
                changed = True
                d["texts"][i] = PARAGRAPH_SEP.join(kept)
                for k in node_cols:  # node scores: one value per paragraph of the text
                    v = d[k][i]
                    if isinstance(v, list) and len(v) == len(nonempty):
                        d[k][i] = [v[x] for x in kept_idx]
            keep_pos.append(bool(kept))
        if changed and not all(keep_pos):
            keep_positions(d, keep_pos)
    return docs
