"""Units of work the engine schedules: one per WARC, one per part, one per image-URL partition.

Each unit composes plain stages (functions over a batch of documents), reads and writes its own files, is safe to
rerun (outputs under a temporary name, renamed when complete, then a completion marker holding its stats and an
input fingerprint) and returns its ``Stats`` as a dict.  Nothing here imports Dask.  The fingerprints and the
folders a unit reads come from the plan (:mod:`obelics_builder.plan`), which imports this module, never the reverse.

Output folder::

    OUT/parts/scored/<warc>.parquet      documents with every text score, before any decision (per WARC)
    OUT/parts/text/<warc>.parquet        after page-level consent and the text decisions (+ <warc>.keys.parquet:
                                         url, rank, row, part; <warc>.manifest.parquet: page-consent removals)
    OUT/parts/url_dedup/<warc>.parquet   after URL dedup (+ <warc>.pairs.parquet: image_url, doc_url)
    OUT/images/table/part-NNNNN.parquet  one row per unique image URL: ledger (status, error, bytes, seconds...),
                                         image info and bytes
    OUT/images/by_url_hash/bucket-BBBBB  the same rows minus the bytes, by URL hash (the final step's join)
    OUT/documents/part-NNNNN.parquet     final documents (OBELICS columns + score columns)
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .dedup.image_urls import image_url_doc_pairs, image_url_prefilter
from .dedup.urls import drop_duplicate_urls, url_keys
from .io.image_table import IMAGE_TABLE_COLUMNS, IMAGE_TABLE_SCHEMA  # noqa: F401 - re-exported
from .io.markers import fingerprint, read_marker, write_marker  # noqa: F401 - fingerprint re-exported
from .engine.dedup_reductions import rows_to_drop
from .io.parquet import DocumentWriter, documents_of, iter_document_batches, iter_row_batches, write_table_atomic
from .stats import StageContext, Stats, run_stage, timed, timed_iter

log = logging.getLogger("obelics_builder")

BATCH = 512


def warc_key(name: str) -> str:
    """A file-name-safe, unique, readable key for a WARC name."""
    base = re.sub(r"\.(warc|arc)(\.gz)?$", "", Path(name).name)
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base)[:80]
    return f"{base}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def _ctx(stage: str, config: dict, stats: Stats, resources: dict | None = None) -> StageContext:
    return StageContext(stage=stage, config=config or {}, stats=stats, resources=resources or {})


# ---------------------------------------------------------------------------------------------------------------
# Per WARC: read -> extract -> text scores
# ---------------------------------------------------------------------------------------------------------------

def _record_failure(folder: Path, key: str, exc: BaseException) -> None:
    """A ``_failed`` marker (for ``obelics-build status``); it is removed when the unit later completes."""
    p = folder / "_failed" / f"{key}.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps({"error": f"{type(exc).__name__}: {exc}"[:2000]}), encoding="utf-8")


def _clear_failure(folder: Path, key: str) -> None:
    (folder / "_failed" / f"{key}.json").unlink(missing_ok=True)


def warc_config(recipe: dict) -> list:
    """What changes a WARC's stored scores (metric parameters, word-list contents, models), never the thresholds:
    the config the plan fingerprints the per-WARC step with (``recipe: read, extract, text_scores``)."""
    from .quality.score import scoring_inputs

    return [recipe.get("read"), recipe.get("extract"), recipe.get("text_scores"),
            scoring_inputs(recipe["filters_config"])]


def process_warc(ref, recipe: dict, out: str, dump: str | None = None, fp: str | None = None) -> dict:
    """Read one WARC, extract documents and score their text; write ``parts/scored/<key>.parquet``.

    A WARC that cannot be read to its end (the source failed after retries) raises: its part is not marked done, a
    ``_failed`` marker says why, and a rerun retries it.  Damaged records inside a readable WARC are counted, not
    raised.  ``fp``: the unit's fingerprint (the plan's; by default the same rule:
    ``H(name, dump, *warc_config(recipe))``).
    """
    folder = Path(out) / "parts" / "scored"
    try:
        result = _process_warc(ref, recipe, out, dump, fp or fingerprint(ref.name, dump, *warc_config(recipe)))
    except Exception as e:
        _record_failure(folder, warc_key(ref.name), e)
        raise
    _clear_failure(folder, warc_key(ref.name))
    return result


def _process_warc(ref, recipe: dict, out: str, dump: str | None, fp: str) -> dict:
    from .extract import extract_stage
    from .quality.score import text_score_stage
    from .sources.warc import iter_html_records

    folder = Path(out) / "parts" / "scored"
    key = warc_key(ref.name)
    done = read_marker(folder, key, fp)
    if done is not None:
        return done["stats"]

    stats = Stats()
    read_cfg = recipe.get("read") or {}
    c_read = _ctx("read", read_cfg, stats)
    c_extract = _ctx("extract", recipe.get("extract"), stats)
    c_score = _ctx("text_scores", recipe["filters_config"], stats)
    batch_size = int(read_cfg.get("batch_size", 256))

    def flush(records: list[dict], writer: DocumentWriter) -> None:
        docs = run_stage(extract_stage, records, c_extract)
        docs = run_stage(text_score_stage, docs, c_score)
        writer.write(docs)

    with DocumentWriter(folder / f"{key}.parquet") as writer:
        records: list[dict] = []
        held = 0  # payload bytes in the batch: a batch is flushed by count or by size, so memory stays bounded
        max_batch_bytes = int(read_cfg.get("max_batch_bytes", 64_000_000))
        reader = iter_html_records(ref, c_read, dump=dump, max_record_bytes=int(read_cfg.get("max_record_bytes", 20_000_000)))
        for rec in timed_iter(c_read, reader):
            records.append(rec)
            held += len(rec.get("body") or b"")
            if len(records) >= batch_size or held >= max_batch_bytes:
                flush(records, writer)
                records, held = [], 0
        if records:
            flush(records, writer)
    result = stats.to_dict()
    write_marker(folder, key, {"fingerprint": fp, "warc": ref.name, "stats": result})
    return result


# ---------------------------------------------------------------------------------------------------------------
# Per part: page-level consent and text decisions (from stored signals and scores)
# ---------------------------------------------------------------------------------------------------------------

def filter_part(key: str, recipe: dict, out: str, fp: str, src: str) -> dict:
    """Page-level consent, then the text decisions, from what the per-WARC step stored; writes the part, its URL
    keys and its page-consent manifest rows (``<key>.manifest.parquet``)."""
    from .optout.manifest import write_manifest_part
    from .optout.page import page_consent_stage
    from .quality.decide import text_filter_stage

    src = Path(src) / f"{key}.parquet"
    folder = Path(out) / "parts" / "text"
    fcfg = recipe["filters_config"]
    done = read_marker(folder, key, fp)
    if done is not None:
        return done["stats"]
    stats = Stats()
    c_consent = _ctx("page_consent", recipe.get("page_consent"), stats, {"manifest": []})
    ctx = _ctx("text_filter", fcfg, stats)
    keys: dict[str, list] = {"url": [], "rank": [], "row": []}
    with DocumentWriter(folder / f"{key}.parquet") as writer:
        for docs in iter_document_batches(src, BATCH):
            docs = run_stage(page_consent_stage, docs, c_consent)
            docs = run_stage(text_filter_stage, docs, ctx)
            k = url_keys(docs)
            keys["url"] += k["url"]
            keys["rank"] += k["rank"]
            keys["row"] += [r + writer.rows for r in k["row"]]
            writer.write(docs)
    keys["part"] = [key] * len(keys["url"])
    write_table_atomic(pa.table(keys, schema=KEYS_SCHEMA), folder / f"{key}.keys.parquet")
    write_manifest_part(c_consent.resources["manifest"], folder / f"{key}.manifest.parquet")
    result = stats.to_dict()
    write_marker(folder, key, {"fingerprint": fp, "stats": result})
    return result


KEYS_SCHEMA = pa.schema([("url", pa.string()), ("rank", pa.string()), ("row", pa.int64()), ("part", pa.string())])
PAIRS_SCHEMA = pa.schema([("image_url", pa.string()), ("doc_url", pa.string())])


# ---------------------------------------------------------------------------------------------------------------
# Per part: URL dedup (rows to drop were computed run-wide by the engine)
# ---------------------------------------------------------------------------------------------------------------

def dedup_part(key: str, losers_dir: str, near_dir: str | None, fp: str, out: str, src: str) -> dict:
    """Drop this part's rows that lost the run-wide URL dedup (``duplicate_url``) or near-duplicate dedup
    (``near_duplicate``); write the survivors and their (image URL, document URL) pairs."""
    src = Path(src) / f"{key}.parquet"
    folder = Path(out) / "parts" / "url_dedup"
    done = read_marker(folder, key, fp)
    if done is not None:
        return done["stats"]
    url_rows = rows_to_drop(losers_dir, key)
    near_rows = rows_to_drop(Path(near_dir) / "losers", key) - url_rows if near_dir else set()
    stats = Stats()
    ctx = _ctx("url_dedup", {}, stats)
    pairs: dict[str, list] = {"image_url": [], "doc_url": []}
    row0 = 0

    def stage(docs, c):
        kept = []
        for i, d in enumerate(docs):
            if row0 + i in url_rows:
                c.remove("duplicate_url")
            elif row0 + i in near_rows:
                c.remove("near_duplicate")
            else:
                kept.append(d)
        return drop_duplicate_urls(kept, c)  # duplicates inside the part (already resolved run-wide, kept as a guard)

    with DocumentWriter(folder / f"{key}.parquet") as writer:
        for table, light in iter_row_batches(src, BATCH):  # rows are only dropped: written as stored
            n = len(light)
            docs = run_stage(stage, light, ctx)
            row0 += n
            p = image_url_doc_pairs(docs)
            pairs["image_url"] += p["image_url"]
            pairs["doc_url"] += p["doc_url"]
            writer.write_rows(table, light, docs)
    write_table_atomic(pa.table(pairs, schema=PAIRS_SCHEMA), folder / f"{key}.pairs.parquet")
    result = stats.to_dict()
    write_marker(folder, key, {"fingerprint": fp, "stats": result})
    return result


# ---------------------------------------------------------------------------------------------------------------
# Per image-URL partition: fetch (archive first), decode, image filters
# ---------------------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4)
def _archive(refs: tuple) -> object | None:
    if not refs:
        return None
    from .sources.archive import ImageArchive

    return ImageArchive(list(refs))


def fetch_partition(index: int, urls: list[str], recipe: dict, out: str, archive_refs: tuple, fetch_overrides: dict,
                    fp: str | None = None, shares: int = 1) -> dict:
    """Build ``images/table/part-NNNNN.parquet`` from ``urls`` (see :mod:`obelics_builder.images.partition`; the
    marker: :mod:`obelics_builder.images.ledger`)."""
    from .images.partition import fetch_table_part

    return fetch_table_part(index, urls, recipe, out, _archive(archive_refs), fetch_overrides, fp=fp, shares=shares,
                            archive_names=[r.name for r in archive_refs])


def fetch_unit(index: int, path: str, shares: int, recipe: dict, out: str, archive_refs: tuple,
               fetch_overrides: dict, fp: str | None = None) -> dict:
    """One unit of the image-URL plan: its URLs read here from ``path`` (the plan's file), not passed in."""
    from .images.partition import unit_urls

    return fetch_partition(index, unit_urls(path), recipe, out, archive_refs, fetch_overrides, fp=fp, shares=shares)


def load_image_rows(out: str, urls: set[str]) -> dict[str, dict]:
    """Image-table rows (without the bytes) for the given URLs, by scanning every table part (the reference the
    keyed join, :class:`obelics_builder.images.join.BucketReader`, is tested against; the final step uses that)."""
    folder = Path(out) / "images" / "table"
    found: dict[str, dict] = {}
    if not urls:
        return found
    wanted = pa.array(sorted(urls), pa.string())
    import pyarrow.compute as pc

    for f in sorted(folder.glob("part-*.parquet")):
        names = pq.ParquetFile(f).schema_arrow.names
        cols = [c for c in IMAGE_TABLE_COLUMNS if c != "data" and c in names]
        t = pq.read_table(f, columns=cols)
        t = t.filter(pc.is_in(t.column("url"), value_set=wanted))
        for row in t.to_pylist():
            found[row["url"]] = row
    return found


# ---------------------------------------------------------------------------------------------------------------
# After images, per part, in three passes around run-wide reductions:
#   A finalize_part:   image rules, image results (NSFW), final cleaning  -> parts/final    (+ paragraph counts)
#   B paragraphs_part: per-domain paragraph dedup, cleaning again        -> parts/paragraphs (+ image-set keys, URLs)
#   C publish_part:    image-set dedup, opt-out                          -> documents/     (+ opt-out manifest rows)
# ---------------------------------------------------------------------------------------------------------------

def _writer(path: Path, recipe: dict) -> DocumentWriter:
    return DocumentWriter(path, compression=(recipe.get("write") or {}).get("compression", "zstd"))


def finalize_part(key: str, recipe: dict, out: str, too_frequent_dir: str, fp: str, src: str,
                  images_dir: str | None = None) -> dict:
    """``images_dir``: the image table bucketed by URL hash (:mod:`obelics_builder.images.join`; default
    ``OUT/images/by_url_hash``); the part's image URLs are looked up once, reading only the buckets (each opened
    once) and row groups they fall in; the rows held are the part's, never the table's."""
    from .dedup.paragraphs import counts_table, merge_counts, paragraph_counts
    from .images.apply import apply_image_table
    from .images.join import BucketReader, part_image_urls
    from .quality.final import final_cleaning_stage
    from .quality.wordlists import load_wordlist

    src = Path(src) / f"{key}.parquet"
    folder = Path(out) / "parts" / "final"
    fcfg = recipe["filters_config"]
    done = read_marker(folder, key, fp)
    if done is not None:
        return done["stats"]
    stats = Stats()
    img_cfg = fcfg.get("image") or {}
    words = ()
    if img_cfg.get("banned_url_substrings", True) and fcfg.get("wordlists", {}).get("url_ban_words"):
        words = sorted(load_wordlist(fcfg["wordlists"]["url_ban_words"]))
    too_frequent = _read_url_set(too_frequent_dir)
    c_pre = _ctx("image_rules", fcfg, stats, {"url_ban_words": words, "too_frequent": too_frequent})
    c_img = _ctx("images", fcfg, stats)
    c_final = _ctx("final", fcfg, stats)
    counts: dict = {}
    images = BucketReader.of(images_dir or Path(out) / "images" / "by_url_hash")
    table = images.lookup(part_image_urls(src))  # a superset of what the batches keep after the image rules
    with _writer(folder / f"{key}.parquet", recipe) as writer:
        for docs in iter_document_batches(src, BATCH):
            docs = run_stage(image_url_prefilter, docs, c_pre)
            docs = run_stage(lambda b, c: apply_image_table(b, table, c), docs, c_img)
            docs = run_stage(final_cleaning_stage, docs, c_final)
            merge_counts(counts, paragraph_counts(docs))
            writer.write(docs)
    write_table_atomic(counts_table(counts), folder / f"{key}.pcounts.parquet")
    result = stats.to_dict()
    write_marker(folder, key, {"fingerprint": fp, "stats": result})
    return result


def paragraphs_part(key: str, recipe: dict, out: str, frequent_dir: str, fp: str, src: str) -> dict:
    from .dedup.image_sets import image_set_keys
    from .dedup.paragraphs import dedup_paragraphs, domain
    from .engine.dedup_reductions import load_frequent_paragraphs
    from .optout.stage import URLS_SCHEMA, collect_urls
    from .quality.final import final_cleaning_stage

    src = Path(src) / f"{key}.parquet"
    folder = Path(out) / "parts" / "paragraphs"
    fcfg = recipe["filters_config"]
    done = read_marker(folder, key, fp)
    if done is not None:
        return done["stats"]
    stats = Stats()
    domains = set(pq.read_table(src, columns=["general_metadata"]).column("general_metadata").to_pylist())
    domains = {domain(json.loads(g).get("url", "")) for g in domains if g}
    enabled = (recipe.get("paragraph_dedup") or {}).get("enabled", True)
    frequent = load_frequent_paragraphs(Path(frequent_dir), domains) if enabled else set()
    c_par = _ctx("paragraph_dedup", recipe.get("paragraph_dedup") or {}, stats, {"frequent": frequent})
    c_clean = _ctx("cleanup", fcfg, stats, {"spam_checked": True})  # pass A's output: spam verdicts already taken
    sets: dict[str, list] = {"key": [], "rank": [], "row": [], "part": []}
    urls: dict[str, list] = {"url": [], "kind": []}
    with _writer(folder / f"{key}.parquet", recipe) as writer:
        for docs in iter_document_batches(src, BATCH):
            if enabled:
                docs = run_stage(dedup_paragraphs, docs, c_par)
            docs = run_stage(final_cleaning_stage, docs, c_clean)
            for col, values in image_set_keys(docs, key, writer.rows).items():
                sets[col] += values
            for col, values in collect_urls(docs).items():
                urls[col] += values
            writer.write(docs)
    write_table_atomic(pa.table(sets, schema=SETS_SCHEMA), folder / f"{key}.sets.parquet")
    write_table_atomic(pa.table(urls, schema=URLS_SCHEMA), folder / f"{key}.urls.parquet")
    result = stats.to_dict()
    write_marker(folder, key, {"fingerprint": fp, "stats": result})
    return result


SETS_SCHEMA = pa.schema([("key", pa.string()), ("rank", pa.string()), ("row", pa.int64()), ("part", pa.string())])


def publish_part(index: int, key: str, recipe: dict, out: str, sets_losers_dir: str, flagged_file: str,
                 fp: str, src: str) -> dict:
    """Image-set dedup and opt-out -> ``documents/part-NNNNN.parquet`` and the part's opt-out manifest rows."""
    from .dedup.image_sets import drop_duplicate_image_sets
    from .optout.local import LocalOptOut
    from .optout.manifest import write_manifest_part
    from .optout.stage import optout_edits_documents, optout_stage

    src = Path(src) / f"{key}.parquet"
    folder = Path(out) / "documents"
    name = f"part-{index:05d}"
    ocfg = recipe.get("optout") or {}
    done = read_marker(folder, name, fp)
    if done is not None:
        return done["stats"]
    stats = Stats()
    flagged_all = json.loads(Path(flagged_file).read_text(encoding="utf-8")) if Path(flagged_file).exists() else {}
    local = LocalOptOut.from_file(ocfg["local_list"]) if ocfg.get("local_list") else None
    c_sets = _ctx("image_set_dedup", {}, stats, {"drop_rows": rows_to_drop(sets_losers_dir, key)})
    c_opt = _ctx("optout", ocfg, stats, {"local": local, "manifest": []})
    with _writer(folder / f"{name}.parquet", recipe) as writer:
        for table, light in iter_row_batches(src, BATCH):  # rows written as stored unless opt-out edits them
            docs = run_stage(drop_duplicate_image_sets, light, c_sets)
            part_urls = {d["general_metadata"].get("url", "") for d in docs} | {u for d in docs for u in d["images"] if u}
            c_opt.resources["opted_out"] = {u: tuple(flagged_all[u]) for u in part_urls if u in flagged_all}
            if optout_edits_documents(docs, c_opt):
                writer.write(run_stage(optout_stage, documents_of(table, light, docs), c_opt))
            else:
                writer.write_rows(table, light, run_stage(optout_stage, docs, c_opt))
    write_manifest_part(c_opt.resources["manifest"], Path(out) / "parts" / "optout" / f"{key}.manifest.parquet")
    result = stats.to_dict()
    write_marker(folder, name, {"fingerprint": fp, "part": key, "stats": result})
    return result


def _read_url_set(folder: str) -> set[str]:
    path = Path(folder)
    if not path.exists():
        return set()
    urls: set[str] = set()
    for f in sorted(path.glob("*.parquet")):
        urls.update(pq.read_table(f, columns=["image_url"]).column("image_url").to_pylist())
    return urls
