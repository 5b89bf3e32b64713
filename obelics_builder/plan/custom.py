"""Stages of one's own: a function named in the recipe by dotted path, run as a per-part step of the plan.

The contract (what a custom stage's function receives and returns) is the built-in stages'::

    def clip_score(docs: list[dict], ctx: StageContext) -> list[dict]: ...

* ``docs``: a batch of documents (at most 512) of one part, as :mod:`obelics_builder.schema` describes them (the
  four OBELICS columns plus every score column so far).  The function returns the documents it keeps, changed or
  not; it may add score columns (``doc_*``, or ``node_*``/``image_*`` aligned with ``texts``).
* ``ctx`` (:class:`~obelics_builder.stats.StageContext`): ``ctx.stage`` is the stage's name, ``ctx.config`` its
  recipe section (the top-level key of that name, ``{}`` when absent), ``ctx.resources`` a dict kept for the whole
  part (cache a loaded model there), and ``ctx.remove(reason)`` / ``ctx.error(reason)`` count each document it
  drops: documents in and out are counted for it, and stats.json's accounting requires
  ``in == out + removed + errors`` (a document dropped without a reason is an accounting problem); an image or a
  paragraph it drops is ``ctx.remove(reason, unit="images")`` (or ``"nodes"``).
* ``ctx.filters``: its decisions, from the filter config's ``stages: {NAME: {...}}`` (or a top-level section of
  its name that :mod:`obelics_builder.config_schema` declares, as the packaged ``image_text:``; ``{}`` when
  absent), fingerprinted with the step, so ``obelics-build filter`` with a new threshold reruns it and the steps
  after it, nothing before.
* ``ctx.images`` (placed after ``final``, where the images are fetched; None before): ``get_many(urls) ->
  {url: (bytes, format)}`` from the image table.  Known limit: each worker process indexes
  the whole table's URLs (once, while the table's files stay the same).
* ``ctx.cache`` (:class:`~.cache.StageCache`): values kept across reruns of the step under keys of the stage's
  choosing, valid while its ``use`` and recipe section stay the same: a costly score is computed once, whatever
  reruns the step.  Its ``cache_hits`` / ``cache_added`` are counted in the stage's stats.

The function may carry two attributes: ``check(config, filters) -> list[str]``, every problem of its sections
(a missing model), run by ``crawl`` and ``filter`` before any work (:func:`~.stages.check_problems`); and
``cutoffs(filters) -> {column: (min, max)}``, the cutoff lines the report draws on its score columns.  ``crawl
--set NAME.KEY=VALUE`` sets a key of its section from the command line.  :mod:`obelics_builder.align` is a
complete example.

Placement: ``after:`` a stage that ends a per-part step (:data:`~.builtin.CUSTOM_AFTER`: text_scores, text_filter,
url_dedup, final, cleanup) or after another stage of one's own.  The step reads that stage's parts and writes
``OUT/parts/<name>/<key>.parquet``; the steps after it read its parts instead.  It also rewrites the side tables
the step before it wrote (:data:`PRODUCTS`: the URL keys after text_filter, the image-URL pairs after url_dedup...)
from the documents it kept, so the run-wide reductions after it see what it kept.  It runs on the workers: its
module must be importable there.  Its fingerprint (the plan's rule) is its source's and ``[use, its section]``:
changing its section (or its filter-config section) reruns it and the steps after it.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

import pyarrow as pa

from ..io.markers import read_marker, write_marker
from ..io.parquet import DocumentWriter, iter_document_batches, write_table_atomic
from ..stats import StageContext, Stats, run_stage

#: documents per batch (as the built-in per-part steps)
BATCH = 512


def resolve(use: str) -> Callable:
    """The function ``use`` names (``pkg.module:function`` or ``pkg.module.function``); ImportError,
    AttributeError or TypeError (not callable) say what is wrong."""
    module, sep, attr = use.partition(":")
    if not sep:
        module, _, attr = use.rpartition(".")
    if not module or not attr:
        raise ImportError(f"{use!r} is not a dotted path (write it module.path:function)")
    fn = getattr(importlib.import_module(module), attr)
    if not callable(fn):
        raise TypeError(f"{use} is a {type(fn).__name__}, not a function")
    return fn


class _Product:
    """A side table written beside each part, from the documents kept (the same columns the built-in step
    writes)."""
    suffix = ""

    def add(self, docs: list[dict], key: str, row0: int) -> None:
        raise NotImplementedError

    def table(self, key: str) -> pa.Table:
        raise NotImplementedError


class _Columns(_Product):
    def __init__(self, suffix: str, collect: Callable, schema: pa.Schema) -> None:
        self.suffix, self.collect, self.schema = suffix, collect, schema
        self.cols: dict[str, list] = {n: [] for n in schema.names}

    def add(self, docs, key, row0):
        for col, values in self.collect(docs, key, row0).items():
            self.cols[col] += values

    def table(self, key):
        return pa.table(self.cols, schema=self.schema)


def _url_keys(docs, key, row0):
    from ..dedup.urls import url_keys

    k = url_keys(docs)
    return {"url": k["url"], "rank": k["rank"], "row": [r + row0 for r in k["row"]], "part": [key] * len(k["url"])}


def _pairs(docs, key, row0):
    from ..dedup.image_urls import image_url_doc_pairs

    p = image_url_doc_pairs(docs)
    return {"image_url": p["image_url"], "doc_url": p["doc_url"]}


def _sets(docs, key, row0):
    from ..dedup.image_sets import image_set_keys

    return image_set_keys(docs, key, row0)


def _urls(docs, key, row0):
    from ..optout.stage import collect_urls

    return collect_urls(docs)


class _Counts(_Product):
    suffix = "pcounts"

    def __init__(self) -> None:
        self.counts: dict = {}

    def add(self, docs, key, row0):
        from ..dedup.paragraphs import merge_counts, paragraph_counts

        merge_counts(self.counts, paragraph_counts(docs))

    def table(self, key):
        from ..dedup.paragraphs import counts_table

        return counts_table(self.counts)


def _product(name: str) -> _Product:
    from ..optout.stage import URLS_SCHEMA
    from ..tasks import KEYS_SCHEMA, PAIRS_SCHEMA, SETS_SCHEMA

    return {"keys": lambda: _Columns("keys", _url_keys, KEYS_SCHEMA),
            "pairs": lambda: _Columns("pairs", _pairs, PAIRS_SCHEMA),
            "pcounts": _Counts,
            "sets": lambda: _Columns("sets", _sets, SETS_SCHEMA),
            "urls": lambda: _Columns("urls", _urls, URLS_SCHEMA)}[name]()


#: the side tables a custom step writes, by the step it follows (see :mod:`.builtin`)
PRODUCTS = ("keys", "pairs", "pcounts", "sets", "urls")


def custom_part_task(job: tuple, use: str, name: str, products: tuple[str, ...], config: dict, recipe: dict,
                     out: str, src: str, dest: str, filters: dict | None = None, images: str | None = None) -> dict:
    """One part through a stage of one's own: ``src/<key>.parquet`` -> ``dest/<key>.parquet`` (+ side tables);
    skipped when its marker holds ``fp``.  ``filters``: its filter-config section (``ctx.filters``); ``images``:
    the image table's folder when it runs after ``final`` (``ctx.images``, opened on first use).  Returns its
    stats."""
    from .cache import StageCache, cache_identity

    key, fp = job
    folder = Path(dest)
    done = read_marker(folder, key, fp)
    if done is not None:
        return done["stats"]
    fn = resolve(use)
    stats = Stats()
    cache = StageCache(folder, key, cache_identity(use, config))
    ctx = StageContext(stage=name, config=dict(config or {}), stats=stats, resources={}, filters=dict(filters or {}),
                       images=_LazyImages(images) if images else None, cache=cache)
    side = [_product(p) for p in products]
    compression = (recipe.get("write") or {}).get("compression", "zstd")
    with DocumentWriter(folder / f"{key}.parquet", compression=compression) as writer:
        for docs in iter_document_batches(Path(src) / f"{key}.parquet", BATCH):
            docs = run_stage(fn, docs, ctx)
            for p in side:
                p.add(docs, key, writer.rows)
            writer.write(docs)
    for p in side:
        write_table_atomic(p.table(key), folder / f"{key}.{p.suffix}.parquet")
    cache.save()
    if cache.hits or cache.added:
        stats.add(name, "cache_hits", cache.hits)
        stats.add(name, "cache_added", cache.added)
    result = stats.to_dict()
    write_marker(folder, key, {"fingerprint": fp, "use": use, "stats": result})
    return result


#: the image table's URL index of this process: ((table folder, its parts' names, sizes and mtimes), ImageStore)
_IMAGE_STORE: list = []


class _LazyImages:
    """``ctx.images``: the image table's bytes by URL, indexed on first use (a stage that never asks costs
    nothing) and once per worker process while the table's files stay the same (not once per part).
    ``get_many(urls) -> {url: (bytes, format)}`` for the URLs whose bytes were fetched and kept."""

    #: the bytes of the table's row groups a process keeps in memory
    CACHE_BYTES = 128 * 2**20

    def __init__(self, table_dir: str) -> None:
        self.table_dir = Path(table_dir)
        self._mine = None

    def _store(self):
        if self._mine is None:  # the table is checked once per part's task
            self._mine = self._shared()
        return self._mine

    def _shared(self):
        from ..io.image_store import ImageStore

        files = sorted(self.table_dir.glob("part-*.parquet"))
        key = (str(self.table_dir), tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files))
        if not _IMAGE_STORE or _IMAGE_STORE[0][0] != key:
            # ImageStore takes OUT (it reads OUT/images/table)
            _IMAGE_STORE[:] = [(key, ImageStore(self.table_dir.parent.parent, cache_bytes=self.CACHE_BYTES))]
        return _IMAGE_STORE[0][1]

    def get_many(self, urls) -> dict:
        return self._store().get_many(urls)
