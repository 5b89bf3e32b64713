"""``Engine.map`` keeps a bounded window of tasks in flight (submitted, not finished) whatever the number of items,
with results in input order and failures raised after the rest finished."""
from __future__ import annotations

import threading
import time

import pytest

from obelics_builder.engine import Engine
from obelics_builder.engine.executor import IN_FLIGHT_PER_THREAD

#: set by the test: the in-process scheduler whose task table the tasks look at, and the largest count seen
_SCHED = {"scheduler": None, "max": 0}
_LOCK = threading.Lock()
UNFINISHED = {"waiting", "processing", "queued", "no-worker"}


def _probe(x: int) -> int:
    tasks = _SCHED["scheduler"].tasks
    n = sum(1 for k, ts in list(tasks.items()) if str(k).startswith("_probe") and ts.state in UNFINISHED)
    with _LOCK:
        _SCHED["max"] = max(_SCHED["max"], n)
    time.sleep(0.002)
    if x == 17:
        raise ValueError("seventeen")
    return x * 2


@pytest.fixture(scope="module")
def cluster():
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as c:
        _SCHED["scheduler"] = c.scheduler
        yield c


@pytest.mark.parametrize("cap", [3, 8])
def test_map_never_has_more_than_the_cap_in_flight(cluster, cap):
    _SCHED["max"] = 0
    items = [i for i in range(300) if i != 17]
    with Engine(scheduler=cluster.scheduler_address, max_in_flight=cap, quiet=True) as eng:
        assert eng.map(_probe, items) == [2 * i for i in items]
    assert 1 <= _SCHED["max"] <= cap


def test_without_the_window_every_item_would_be_in_flight(cluster):
    """The probe can see a map's whole backlog (so the test above can fail): one client.map of 300 items."""
    from dask.distributed import Client, wait

    _SCHED["max"] = 0
    with Client(cluster.scheduler_address) as client:
        futs = client.map(_probe, [i for i in range(300) if i != 17], key=[f"_probe-all-{i}" for i in range(299)])
        wait(futs)
    assert _SCHED["max"] > 100


def test_default_cap_is_per_worker_thread_and_failures_come_after_the_rest(cluster):
    _SCHED["max"] = 0
    with Engine(scheduler=cluster.scheduler_address, quiet=True) as eng:
        assert eng.in_flight_cap() == IN_FLIGHT_PER_THREAD * 2
        with pytest.raises(RuntimeError, match="1 task\\(s\\) of _probe failed; first on 17"):
            eng.map(_probe, list(range(60)))
    assert _SCHED["max"] <= IN_FLIGHT_PER_THREAD * 2


def test_a_cap_below_one_is_refused():
    with pytest.raises(ValueError, match="max_in_flight"):
        Engine(scheduler="sync", max_in_flight=0)


def _probe_pair(x: int, y: int) -> int:
    return _probe(x) + y


def test_near_dedup_steps_go_through_the_same_window(cluster):
    """The near-duplicate steps (one task per part, per band range, ...) are windowed too, not one graph."""
    from dask.distributed import Client

    from obelics_builder.engine.near_dedup import _run

    _SCHED["max"] = 0
    with Client(cluster.scheduler_address, set_as_default=True):
        good = [i for i in range(200) if i != 17]
        assert _run("distributed", _probe_pair, [(i, 1) for i in good]) == [2 * i + 1 for i in good]
        with pytest.raises(RuntimeError, match="1 task\\(s\\) of _probe_pair failed"):
            _run("distributed", _probe_pair, [(i, 0) for i in range(30)])
    assert 1 <= _SCHED["max"] <= IN_FLIGHT_PER_THREAD * 2
    assert _run("sync", _probe_pair, [(1, 1), (2, 2)]) == [3, 6]


def _slow_odd(x: int) -> int:
    time.sleep(0.02 if x % 7 == 0 else 0.001)
    if x == 17:
        raise ValueError("seventeen")
    return x


def test_fold_gets_every_result_in_input_order_and_keeps_none(cluster, monkeypatch):
    """``fold``: results handed over in input order (the order stats are merged in, so stats.json does not depend
    on which task finished first), none kept; no task starts more than FOLD_AHEAD items past the oldest result
    not folded yet; a failed item is skipped and raised after the rest."""
    import obelics_builder.engine.executor as executor

    monkeypatch.setattr(executor, "FOLD_AHEAD", 5)
    got: list[int] = []
    with Engine(scheduler=cluster.scheduler_address, max_in_flight=4, quiet=True) as eng:
        assert eng.map(_slow_odd, [i for i in range(120) if i != 17], fold=got.append) is None
        assert got == [i for i in range(120) if i != 17]
        got.clear()
        with pytest.raises(RuntimeError, match="1 task\\(s\\) of _slow_odd failed; first on 17"):
            eng.map(_slow_odd, list(range(40)), fold=got.append)
        assert got == [i for i in range(40) if i != 17]
    with Engine(scheduler="sync") as eng:
        got.clear()
        assert eng.map(_slow_odd, [1, 2, 3], fold=got.append) is None and got == [1, 2, 3]


def test_windowed_never_starts_past_the_horizon(cluster):
    from dask.distributed import Client

    from obelics_builder.engine.executor import windowed

    seen: list[int] = []
    with Client(cluster.scheduler_address) as client:
        items = [i for i in range(51) if i != 17]
        for i, ok, _ in windowed(client, _slow_odd, items, 8, horizon=lambda: len(seen) + 3):
            assert ok and i < len(seen) + 3
            seen.append(i)
    assert sorted(seen) == list(range(50))
