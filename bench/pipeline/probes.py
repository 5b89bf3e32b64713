"""CPU probes for the finer splits of bench/pipeline (installed in the measuring process only, never in the product).

A probe wraps a function (or a generator function: the time inside each ``next`` counts) and adds the CPU time of
the calling thread (``time.thread_time``) spent inside it to its label.  Probes nest exclusively: a probe's own
figure excludes the time of probes called inside it (writing a Parquet table inside the MinHash reduction is
writing, not MinHash), as a profiler's "self" time, but at the granularity of a few named functions, so the
overhead is a few microseconds per call instead of cProfile's per-call cost on every function.

A target is ``module:qualname`` (``obelics_builder.quality.langid:LangId.predict``).  Module-level functions are
rebound in every loaded ``obelics_builder`` module that imported them by name.  A target that does not exist (code
moved on) is reported in ``missing`` and its figure is absent, never guessed.

Stage context: :func:`install_stage_markers` wraps ``stats.run_stage`` (and the image fetch's rows) so that a probe
that fires inside a stage whose CPU the pipeline already counts is recorded as ``label@stage``: such time is part
of that stage's ``cpu_seconds`` (a split of it), while a label without ``@`` is work outside every stage.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import sys
import threading
import time

_local = threading.local()
TOTALS: dict[str, float] = {}
CALLS: dict[str, int] = {}
_LOCK = threading.Lock()


def _stack() -> list:
    s = getattr(_local, "stack", None)
    if s is None:
        s = _local.stack = []
    return s


def _enter() -> list:
    frame = [time.thread_time(), 0.0]  # start, CPU of nested probes
    _stack().append(frame)
    return frame


def _leave(label: str, frame: list) -> None:
    stage = getattr(_local, "stage", None)
    if stage:
        label = f"{label}@{stage}"
    stack = _stack()
    stack.pop()
    elapsed = time.thread_time() - frame[0]
    if stack:
        stack[-1][1] += elapsed
    with _LOCK:
        TOTALS[label] = TOTALS.get(label, 0.0) + elapsed - frame[1]
        CALLS[label] = CALLS.get(label, 0) + 1


def _wrap(fn, label: str):
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            frame = _enter()
            try:
                it = fn(*args, **kwargs)
            finally:
                _leave(label, frame)
            while True:
                frame = _enter()
                try:
                    item = next(it)
                except StopIteration:
                    return
                finally:
                    _leave(label, frame)
                yield item

        gen_wrapper.__probe__ = label
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        frame = _enter()
        try:
            return fn(*args, **kwargs)
        finally:
            _leave(label, frame)

    wrapper.__probe__ = label
    return wrapper


def _wrap_outcome(fn, label: str, outcome):
    """As :func:`_wrap` for a plain function, the label suffixed with ``|`` and ``outcome(result, args)``
    (``|error`` when it raised): the same function's cost split by what it was given and returned."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        frame = _enter()
        tag = "error"
        try:
            res = fn(*args, **kwargs)
            tag = outcome(res, args)
            return res
        finally:
            _leave(f"{label}|{tag}", frame)

    wrapper.__probe__ = label
    return wrapper


def _resolve(target: str):
    """``(owner, attribute, original)`` of ``module:qualname``; raises ImportError/AttributeError."""
    mod_name, _, qual = target.partition(":")
    mod = importlib.import_module(mod_name)
    owner, attr = mod, qual
    if "." in qual:
        cls_name, attr = qual.split(".", 1)
        owner = getattr(mod, cls_name)
    return mod, owner, attr, inspect.getattr_static(owner, attr)


def install_outcomes(targets: dict[str, tuple[str, object]]) -> list[str]:
    """Wrap every ``module:qualname`` of ``targets`` (-> ``(label, outcome)``) with :func:`_wrap_outcome`;
    returns the targets that were not found."""
    missing = []
    for target, (label, outcome) in targets.items():
        try:
            mod, owner, attr, orig = _resolve(target)
        except (ImportError, AttributeError):
            missing.append(target)
            continue
        if getattr(orig, "__probe__", None):
            continue
        wrapped = _wrap_outcome(orig, label, outcome)
        if owner is mod:
            _rebind(mod, attr, orig, wrapped)
        else:
            setattr(owner, attr, wrapped)
    return missing


def install(targets: dict[str, str]) -> list[str]:
    """Wrap every ``module:qualname`` of ``targets`` (-> label); returns the targets that were not found."""
    missing = []
    for target, label in targets.items():
        try:
            mod, owner, attr, orig = _resolve(target)
        except (ImportError, AttributeError):
            missing.append(target)
            continue
        if getattr(orig, "__probe__", None):
            continue
        if isinstance(orig, (staticmethod, classmethod)):
            setattr(owner, attr, type(orig)(_wrap(orig.__func__, label)))
            continue
        wrapped = _wrap(orig, label)
        if owner is mod:  # names imported elsewhere (``from .x import f``) point at the original too
            _rebind(mod, attr, orig, wrapped)
        else:
            setattr(owner, attr, wrapped)
    return missing


def _stage_setter(fn, stage_of):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        before = getattr(_local, "stage", None)
        _local.stage = stage_of(args, kwargs)
        try:
            return fn(*args, **kwargs)
        finally:
            _local.stage = before

    wrapper.__probe__ = "stage"
    return wrapper


def _rebind(mod, attr: str, orig, wrapped) -> None:
    setattr(mod, attr, wrapped)
    for name, other in list(sys.modules.items()):
        if other is None or not name.startswith("obelics_builder"):
            continue
        for k, v in list(vars(other).items()):
            if v is orig:
                setattr(other, k, wrapped)


def install_stage_markers() -> list[str]:
    """Mark ``run_stage`` calls with their stage (``ctx.stage``) and the image fetch (``fetch_rows``, the block
    whose process CPU ``tasks.fetch_partition`` counts, and the fetch's checkpoints, ``Spool.save``, which run in its
    decode pool: threads that ``fetch_rows``' mark does not reach) with ``image_fetch``, and the image table's writes
    (not a stage of stats.json: their probes' figures, ``...@image_table``, belong to the image work) with
    ``image_table``."""
    missing = []
    for target, stage_of in (("obelics_builder.stats:run_stage", lambda a, k: getattr(a[2], "stage", None)),
                             ("obelics_builder.images.ledger:fetch_rows", lambda a, k: "image_fetch"),
                             ("obelics_builder.images.partition:Spool.save", lambda a, k: "image_fetch"),
                             ("obelics_builder.images.ledger:write_table_part", lambda a, k: "image_table")):
        try:
            mod, owner, attr, orig = _resolve(target)
        except (ImportError, AttributeError):
            missing.append(target)
            continue
        if getattr(orig, "__probe__", None) != "stage":  # (a probe of the same function stays inside the mark)
            if owner is mod:
                _rebind(mod, attr, orig, _stage_setter(orig, stage_of))
            else:
                setattr(owner, attr, _stage_setter(orig, stage_of))
    return missing


def snapshot() -> dict[str, float]:
    with _LOCK:
        return dict(TOTALS)


def calls() -> dict[str, int]:
    with _LOCK:
        return dict(CALLS)
