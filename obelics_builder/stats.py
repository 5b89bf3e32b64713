"""Counting: every stage says how many documents (and nodes, images) came in, went out, and why the rest left.

``Stats`` is a plain, picklable, mergeable container: a per-WARC task fills one and returns it, the engine merges
them and writes ``stats.json``.  The invariant the engine checks at the end of a run is, per stage::

    documents_in == documents_out + sum(removed[reason]) + sum(errors[reason])

``StageContext`` is what a stage function receives besides its batch: its name, its config section and the
``Stats`` to count into.

Costs: ``seconds`` is wall time, ``cpu_seconds`` CPU time, both summed over tasks.  A document stage's CPU is the
CPU time of the thread that runs it (``time.thread_time``: exact when a worker runs several tasks in threads);
the image fetch, which decodes in a thread pool, counts its whole process's CPU (``time.process_time``).  The
run-wide reductions between the per-part passes (URL and MinHash groupings, counts) are not in any stage's figure.
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("obelics_builder")

#: (stage, note) pairs already logged by this process
_LOGGED_NOTES: set[tuple[str, str]] = set()

#: How many error/rejection examples (file, offset, message) each stage keeps in stats.json.
MAX_EXAMPLES = 50


def _stage_dict() -> dict:
    return {
        "documents_in": 0,
        "documents_out": 0,
        "nodes_in": 0,
        "nodes_out": 0,
        "images_in": 0,
        "images_out": 0,
        "removed": defaultdict(int),  # documents removed, by reason
        "nodes_removed": defaultdict(int),  # text paragraphs (nodes) removed, by reason
        "images_removed": defaultdict(int),  # image positions removed, by reason
        "errors": defaultdict(int),  # documents / records lost to an error, by reason
        "examples": [],  # a few {"reason", "file", "offset", "url", "message"} for errors and rejections
        "seconds": 0.0,  # wall time
        "cpu_seconds": 0.0,  # CPU time (see the module docstring)
        "notes": [],  # e.g. "perplexity filter disabled: no model configured"
    }


class Stats:
    def __init__(self) -> None:
        self.stages: dict[str, dict] = {}

    def stage(self, name: str) -> dict:
        if name not in self.stages:
            self.stages[name] = _stage_dict()
        return self.stages[name]

    # ---- counting helpers -------------------------------------------------------------------------------
    def add(self, stage: str, key: str, n: int | float = 1) -> None:
        s = self.stage(stage)
        s[key] = s.get(key, 0) + n

    def unreadable_input(self, stage: str, **info: Any) -> None:
        """An input file of which nothing could be read (missing, empty, no WARC...): counted in
        ``inputs_unreadable`` and named (file, reason, message) in ``unreadable_inputs``."""
        s = self.stage(stage)
        s["inputs_unreadable"] = s.get("inputs_unreadable", 0) + 1
        names = s.setdefault("unreadable_inputs", [])
        if len(names) < MAX_EXAMPLES:
            names.append({k: v for k, v in info.items() if v is not None})

    def remove(self, stage: str, reason: str, n: int = 1, unit: str = "documents") -> None:
        key = {"documents": "removed", "nodes": "nodes_removed", "images": "images_removed"}[unit]
        self.stage(stage)[key][reason] += n

    def error(self, stage: str, reason: str, n: int = 1, **example: Any) -> None:
        """Count ``n`` records/documents lost to an error; keep an example (file, offset, url, message)."""
        s = self.stage(stage)
        s["errors"][reason] += n
        self.example(stage, reason, **example)

    def example(self, stage: str, reason: str, **example: Any) -> None:
        s = self.stage(stage)
        if len(s["examples"]) < MAX_EXAMPLES:
            s["examples"].append({"reason": reason, **{k: v for k, v in example.items() if v is not None}})

    def note(self, stage: str, message: str) -> None:
        s = self.stage(stage)
        if message not in s["notes"]:
            s["notes"].append(message)

    # ---- merging / serialisation -----------------------------------------------------------------------------
    def merge(self, other: "Stats | dict") -> "Stats":
        stages = other.stages if isinstance(other, Stats) else other
        for name, src in stages.items():
            dst = self.stage(name)
            for key, value in src.items():
                if key in ("removed", "nodes_removed", "images_removed", "errors"):
                    for reason, n in value.items():
                        dst[key][reason] += n
                elif key in ("examples", "unreadable_inputs"):
                    have = dst.setdefault(key, [])
                    room = MAX_EXAMPLES - len(have)
                    if room > 0:
                        have.extend(value[:room])
                elif key == "notes":
                    for m in value:
                        if m not in dst["notes"]:
                            dst["notes"].append(m)
                elif key in dst:
                    dst[key] += value
                else:
                    dst[key] = value
        return self

    def to_dict(self) -> dict:
        out = {}
        for name, s in self.stages.items():
            d = {}
            for key, value in s.items():
                if isinstance(value, defaultdict):
                    value = dict(sorted(value.items()))
                if key in ("seconds", "cpu_seconds"):
                    value = round(value, 3)
                d[key] = value
            out[name] = d
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Stats":
        return cls().merge(data)

    def balance_problems(self, stage_names: list[str] | None = None) -> list[str]:
        """Stages whose documents_in != out + removed + errors (an empty list means every record is accounted)."""
        problems = []
        for name, s in self.stages.items():
            if stage_names is not None and name not in stage_names:
                continue
            accounted = s["documents_out"] + sum(s["removed"].values()) + sum(s["errors"].values())
            if s["documents_in"] != accounted:
                problems.append(
                    f"{name}: {s['documents_in']} in != {s['documents_out']} out + "
                    f"{sum(s['removed'].values())} removed + {sum(s['errors'].values())} errors"
                )
        return problems


@dataclass
class StageContext:
    """What a stage gets besides its batch."""

    stage: str
    config: dict = field(default_factory=dict)
    stats: Stats = field(default_factory=Stats)
    #: free-form resources set up once per worker (loaded models, word lists); stages may cache in here
    resources: dict = field(default_factory=dict)
    #: a stage of one's own: the filter config's section of its name (its decisions; ``{}`` when absent)
    filters: dict = field(default_factory=dict)
    #: a stage of one's own after ``final``: the fetched image bytes by URL (``ctx.images.get_many(urls)`` ->
    #: ``{url: (bytes, format)}``, :class:`obelics_builder.io.image_store.ImageStore`); None elsewhere
    images: Any = None
    #: a stage of one's own: values it computed, kept across reruns of its step (:class:`obelics_builder.plan.cache.
    #: StageCache`: ``get(key)`` / ``put(key, value)``), so a rerun caused by a decision upstream recomputes nothing
    cache: Any = None

    def remove(self, reason: str, n: int = 1, unit: str = "documents") -> None:
        self.stats.remove(self.stage, reason, n, unit)

    def error(self, reason: str, n: int = 1, **example: Any) -> None:
        self.stats.error(self.stage, reason, n, **example)

    def add(self, key: str, n: int | float = 1) -> None:
        self.stats.add(self.stage, key, n)

    def note(self, message: str, level: int = logging.WARNING) -> None:
        """A run-level remark that must not be missed (e.g. a disabled filter): kept in stats.json and logged at
        ``level`` (once per process, not once per batch or task)."""
        key = (self.stage, message)
        if key not in _LOGGED_NOTES:
            _LOGGED_NOTES.add(key)
            log.log(level, "%s: %s", self.stage, message)
        self.stats.note(self.stage, message)


class timed:
    """``with timed(ctx): ...`` adds the elapsed wall seconds to the stage's ``seconds`` and the CPU seconds to its
    ``cpu_seconds``: of the calling thread, or with ``process=True`` of the whole process (work done in helper
    threads); ``wall=False`` leaves ``seconds`` alone (a stage that sums its own wall times)."""

    def __init__(self, ctx: StageContext, process: bool = False, wall: bool = True) -> None:
        self.ctx = ctx
        self.clock = time.process_time if process else time.thread_time
        self.wall = wall

    def __enter__(self):
        self.t0, self.c0 = time.perf_counter(), self.clock()
        return self

    def __exit__(self, *exc):
        self.ctx.add("cpu_seconds", self.clock() - self.c0)
        if self.wall:
            self.ctx.add("seconds", time.perf_counter() - self.t0)
        return False


def timed_iter(ctx: StageContext, items):
    """``items`` (an iterator, e.g. a WARC reader) with the time spent producing each item counted as
    :class:`timed` counts it (wall and thread CPU), the consumer's work between items excluded."""
    it = iter(items)
    while True:
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            item = next(it)
        except StopIteration:
            return
        finally:
            ctx.add("cpu_seconds", time.thread_time() - c0)
            ctx.add("seconds", time.perf_counter() - t0)
        yield item


#: (documents, snapshot of their texts, (nodes, images)) of the last stage's output, so the next stage, given the
#: same documents with the same text strings (checked by identity, which the snapshot's references keep valid),
#: does not split every text into paragraphs again to count its input.  One tuple, replaced whole (thread-safe).
_LAST_COUNT: tuple = (None, None, (0, 0))


def _count(docs: list[dict]) -> tuple[int, int]:
    global _LAST_COUNT
    from .schema import n_images, n_paragraphs

    last_docs, last_texts, last_counts = _LAST_COUNT
    if docs is last_docs and len(docs) == len(last_texts) and all(
            len(d["texts"]) == len(t) and all(a is b for a, b in zip(d["texts"], t))
            for d, t in zip(docs, last_texts)):
        return last_counts
    counts = (sum(n_paragraphs(d) for d in docs), sum(n_images(d) for d in docs))
    _LAST_COUNT = (docs, [list(d["texts"]) for d in docs], counts)
    return counts


def run_stage(fn, docs: list[dict], ctx: StageContext) -> list[dict]:
    """Run one document stage, counting documents/nodes/images in and out and the time taken.

    The stage itself counts its removals with reasons (``ctx.remove``/``ctx.error``).
    """
    ctx.add("documents_in", len(docs))
    if docs and "texts" in docs[0]:  # documents (a reader's records have no nodes yet)
        nodes, images = _count(docs)
        ctx.add("nodes_in", nodes)
        ctx.add("images_in", images)
    with timed(ctx):
        out = fn(docs, ctx)
    ctx.add("documents_out", len(out))
    nodes, images = _count(out) if out else (0, 0)
    ctx.add("nodes_out", nodes)
    ctx.add("images_out", images)
    return out
