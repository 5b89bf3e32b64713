"""Cluster connection and task mapping with progress."""
from __future__ import annotations

import gc
import logging
import os
import sys
from typing import Any, Callable, Sequence

log = logging.getLogger("obelics_builder")

#: ``Engine.map`` keeps at most this many tasks per worker thread submitted and not yet finished (a sliding window):
#: enough to keep every thread busy while results come back, while the scheduler's graph, the driver's futures and
#: the tasks' arguments stay O(threads), not O(units) (a 90,000-WARC map is never one 90,000-task graph).
IN_FLIGHT_PER_THREAD = 4
#: ``Engine.map(..., fold=...)`` starts a task at most this many items past the oldest result not handed to ``fold``
#: yet: the finished results waiting for an earlier one (to be folded in input order) are at most this many
FOLD_AHEAD = 512


#: the task functions after whose first run in this process the heap was frozen (:func:`settle`)
_SETTLED: set[str] = set()


def settle(fn: Callable) -> None:
    """After the first task of a kind in this process, move every object alive then (imports, models, word lists,
    tables: what the next tasks reuse) to the cyclic garbage collector's permanent generation (``gc.freeze``), so
    that the full collections of a long run scan what its tasks allocate, not the ~120,000 objects of the start-up
    each time (bench/pipeline's crawl: 0.37 -> 0.03 CPU-s of full collections).  Frozen objects are still freed by
    reference counting.  A young collection first, so that fresh garbage is not frozen; at most once per task kind
    per process (a recipe's twenty or so steps), so what it keeps does not grow with the run."""
    name = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"
    if name in _SETTLED:
        return
    _SETTLED.add(name)
    gc.collect(1)
    gc.freeze()


class Engine:
    """Run units of work on Dask.

    scheduler: ``None`` -> a LocalCluster (``workers`` processes × ``threads_per_worker`` threads);
    ``"tcp://HOST:PORT"`` -> connect to a running scheduler; ``"sync"`` -> no cluster, run in this process
    (debugging, notebooks, tiny inputs).  ``max_in_flight``: the cap on a map's tasks submitted and not finished
    (default ``IN_FLIGHT_PER_THREAD`` × the cluster's worker threads when the map starts).
    """

    def __init__(self, scheduler: str | None = None, workers: int | None = None, threads_per_worker: int = 1,
                 memory_limit: str | None = "auto", progress: bool = True, quiet: bool = False,
                 max_in_flight: int | None = None) -> None:
        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, not {max_in_flight}")
        self.max_in_flight = max_in_flight
        self.scheduler = scheduler
        self.workers = workers
        self.threads_per_worker = threads_per_worker
        self.memory_limit = memory_limit
        self.progress = progress and sys.stderr.isatty()
        self.quiet = quiet
        self.client = None
        self.cluster = None

    # ---- lifecycle --------------------------------------------------------------------------------------------
    def __enter__(self) -> "Engine":
        if self.scheduler == "sync":
            # the shuffle method Dask picks without a client, named so that it does not import distributed (~0.5
            # CPU-s) to find out that no client is running
            import dask

            self._config = dask.config.set({"dataframe.shuffle.method": "disk"})
            return self
        from dask.distributed import Client, LocalCluster

        if not log.isEnabledFor(logging.INFO):  # keep Dask's own INFO chatter out of a normal run's output
            for name in ("distributed", "distributed.shuffle"):
                logging.getLogger(name).setLevel(logging.ERROR)
        if self.scheduler:
            self.client = Client(self.scheduler, set_as_default=True)
        else:
            n = self.workers or max(1, min(os.cpu_count() or 1, 8))
            self.cluster = LocalCluster(
                n_workers=n, threads_per_worker=self.threads_per_worker, processes=True,
                dashboard_address=":0", memory_limit=self.memory_limit, silence_logs=logging.ERROR,
            )
            self.client = Client(self.cluster, set_as_default=True)
        if not self.quiet:
            print(f"Dask dashboard: {self.dashboard_link}", file=sys.stderr)
        return self

    def __exit__(self, *exc) -> bool:
        if getattr(self, "_config", None) is not None:
            self._config.__exit__(None, None, None)
            self._config = None
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        return False

    @property
    def dashboard_link(self) -> str | None:
        return None if self.client is None else self.client.dashboard_link

    @property
    def dask_scheduler(self):
        """What to pass to ``.compute(scheduler=...)`` for Dask collections: ``"distributed"``, or without a client
        Dask's synchronous scheduler itself (the function ``"sync"`` names: a name makes Dask import distributed to
        look for a client first)."""
        if self.client is None:
            from dask.local import get_sync

            return get_sync
        return "distributed"

    # ---- mapping ------------------------------------------------------------------------------------------------
    def map(self, fn: Callable, items: Sequence[Any], *args: Any, desc: str = "",
            progress: Callable[[Any], dict] | None = None, fold: Callable[[Any], Any] | None = None,
            **kwargs: Any) -> list[Any] | None:
        """``[fn(item, *args, **kwargs) for item in items]`` on the cluster, results in input order.

        A task that raises is retried by Dask on worker loss (``retries=2``); an exception inside a task is raised here
        after all other tasks finish, so completed work is kept (markers) and a rerun resumes.  ``progress(result)``
        returns counters (e.g. records, documents, images) shown, summed over finished tasks, beside the bar.

        ``fold(result)``: each result is handed to it in input order (as soon as it and those before it are done)
        and not kept; the map returns None.  The driver then holds at most :data:`FOLD_AHEAD` results, however many
        items (e.g. a step's per-WARC stats merged into running totals instead of a list of one per WARC).
        """
        totals: dict[str, int] = {}

        def advance(result: Any) -> None:
            if progress is not None and result is not None:
                for k, v in progress(result).items():
                    totals[k] = totals.get(k, 0) + v
                bar.set_postfix(totals, refresh=False)
            bar.update(1)

        items = list(items)
        if not items:
            return None if fold is not None else []
        bar = self._bar(desc, len(items))
        try:
            if self.client is None:
                out = []
                for it in items:
                    value = fn(it, *args, **kwargs)
                    settle(fn)
                    advance(value)
                    if fold is not None:
                        fold(value)
                    else:
                        out.append(value)
                return None if fold is not None else out
            results: list[Any] = [None] * len(items) if fold is None else []
            waiting: dict[int, Any] = {}  # with fold: finished results waiting for an earlier one
            folded = [0]  # with fold: the items whose result went to fold (or failed)
            failed = object()
            errors = []
            cap = self.in_flight_cap()
            horizon = None if fold is None else (lambda: folded[0] + max(cap, FOLD_AHEAD))
            for i, ok, value in windowed(self.client, _call, items, cap, name=getattr(fn, "__name__", "task"),
                                         horizon=horizon, fn=fn, args=args, kwargs=kwargs):
                if not ok:
                    errors.append((items[i], value))
                advance(value if ok else None)
                if fold is None:
                    results[i] = value if ok else None
                    continue
                waiting[i] = value if ok else failed
                while folded[0] in waiting:
                    got = waiting.pop(folded[0])
                    folded[0] += 1
                    if got is not failed:
                        fold(got)
            if errors:
                item, e = errors[0]
                raise RuntimeError(f"{len(errors)} task(s) of {desc or fn.__name__} failed; first on {item!r}: {e!r}") from e
            return None if fold is not None else results
        finally:
            bar.close()

    def in_flight_cap(self) -> int:
        """How many tasks a map keeps submitted and unfinished at once."""
        if self.max_in_flight is not None:
            return self.max_in_flight
        return in_flight_cap(self.client)

    def _bar(self, desc: str, total: int):
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit="task", disable=not self.progress, leave=False)


def in_flight_cap(client) -> int:
    """:data:`IN_FLIGHT_PER_THREAD` x the worker threads of ``client`` (1 thread without a client)."""
    threads = sum(client.nthreads().values()) if client is not None else 1
    return IN_FLIGHT_PER_THREAD * max(1, threads)


def windowed(client, task: Callable, items: Sequence[Any], cap: int, name: str = "task",
             horizon: Callable[[], int] | None = None, **kwargs: Any):
    """``task(item, **kwargs)`` for every item on ``client``, at most ``cap`` tasks submitted and unfinished at once
    (each finished task makes room for the next item): yields ``(index, True, result)`` or ``(index, False,
    exception)`` as tasks finish.  Retried twice on worker loss; a finished task's result is released at once.
    ``horizon()`` (optional): no item at this index or past it is started now (asked again after each yield; it
    must grow once every started task has been yielded, or the items past it are never run)."""
    from dask.distributed import as_completed

    tag = os.urandom(4).hex()
    pending: dict[str, int] = {}  # key of a submitted, unfinished task -> its item's index
    nxt = 0

    def submit(i: int):
        fut = client.submit(task, items[i], retries=2, pure=False, key=f"{name}-{tag}-{i}", **kwargs)
        pending[fut.key] = i
        return fut

    def more() -> list:
        nonlocal nxt
        stop = len(items) if horizon is None else min(len(items), horizon())
        out = []
        while len(pending) < max(1, cap) and nxt < stop:
            out.append(submit(nxt))
            nxt += 1
        return out

    window = as_completed(more())
    for fut in window:
        i = pending.pop(fut.key)
        try:
            got = (i, True, fut.result())
        except Exception as e:  # noqa: BLE001 - handed to the caller
            got = (i, False, e)
        fut.release()
        for f in more():
            window.add(f)
        yield got
        if horizon is not None:
            for f in more():
                window.add(f)
    if nxt < len(items):
        raise RuntimeError(f"windowed: {len(items) - nxt} items never started (horizon {horizon()} did not grow)")


def _call(item: Any, fn: Callable, args: tuple, kwargs: dict) -> Any:
    value = fn(item, *args, **kwargs)
    settle(fn)
    return value
