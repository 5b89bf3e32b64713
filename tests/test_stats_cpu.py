"""CPU seconds per stage in the stats: counted by ``timed`` / ``timed_iter``, merged across tasks, rounded."""
from __future__ import annotations

import threading
import time

from obelics_builder.stats import StageContext, Stats, run_stage, timed, timed_iter


def _spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_run_stage_counts_thread_cpu_beside_wall_seconds():
    ctx = StageContext("extract")

    def stage(docs, c):
        _spin(0.05)
        time.sleep(0.05)  # waiting costs wall time, not CPU
        return docs

    run_stage(stage, [{"texts": ["a b"], "images": [None]}], ctx)
    s = ctx.stats.stages["extract"]
    assert 0.045 <= s["cpu_seconds"] <= s["seconds"]
    assert s["seconds"] >= 0.095 and s["cpu_seconds"] < 0.09


def test_process_clock_counts_helper_threads_and_wall_can_be_left_alone():
    stats = Stats()
    with timed(StageContext("image_fetch", stats=stats), process=True, wall=False):
        t = threading.Thread(target=_spin, args=(0.05,))
        t.start()
        t.join()
    s = stats.stages["image_fetch"]
    assert s["cpu_seconds"] >= 0.045 and s["seconds"] == 0.0
    with timed(StageContext("other", stats=stats)):  # the thread clock does not see another thread's work
        t = threading.Thread(target=_spin, args=(0.05,))
        t.start()
        t.join()
    assert stats.stages["other"]["cpu_seconds"] < 0.03 and stats.stages["other"]["seconds"] >= 0.045


def test_timed_iter_counts_the_producer_only():
    ctx = StageContext("read")

    def produce():
        for i in range(3):
            _spin(0.02)
            yield i

    got = []
    for item in timed_iter(ctx, produce()):
        got.append(item)
        _spin(0.03)  # the consumer's work is not the reader's
    assert got == [0, 1, 2]
    cpu = ctx.stats.stages["read"]["cpu_seconds"]
    assert 0.055 <= cpu < 0.09


def test_cpu_seconds_merge_across_tasks_and_round_in_the_dict():
    a, b = Stats(), Stats()
    a.add("extract", "cpu_seconds", 1.23456)
    b.add("extract", "cpu_seconds", 2.0)
    merged = Stats().merge(a.to_dict()).merge(b)
    d = merged.to_dict()["extract"]
    assert d["cpu_seconds"] == 3.235 and d["seconds"] == 0.0
    # a stats.json written before CPU seconds existed still merges (the key defaults to 0)
    old = {"extract": {k: v for k, v in a.to_dict()["extract"].items() if k != "cpu_seconds"}}
    assert Stats().merge(old).to_dict()["extract"]["cpu_seconds"] == 0.0
