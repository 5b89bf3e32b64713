"""A real Dask cluster on 127.0.0.1 (scheduler + 2 worker processes) runs the sample crawl; a killed worker does not
change the output."""
from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 60) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on {port}")


class Cluster:
    def __init__(self, tmp: Path, workers: int = 2) -> None:
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
        self.sched = subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                                       "--dashboard-address", "127.0.0.1:0"], cwd=tmp, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)
        self.workers = [self._worker(tmp, env, i) for i in range(workers)]
        from dask.distributed import Client

        with Client(self.address, timeout=60) as c:
            c.wait_for_workers(workers, timeout=120)

    def _worker(self, tmp, env, i):
        return subprocess.Popen([str(BIN / "dask"), "worker", self.address, "--nthreads", "1", "--no-nanny",
                                 "--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0", "--name", f"w{i}",
                                 "--local-directory", str(tmp / f"w{i}")], cwd=tmp, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def close(self) -> None:
        for p in [*self.workers, self.sched]:
            if p.poll() is None:
                p.terminate()
        for p in [*self.workers, self.sched]:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("part-*.parquet"))}


#: the first five WARCs of the sample (the archive.org crawl with its real images, the Common Crawl excerpt and the
#: wget captures): every stage has work, and the suite stays fast
SUBSET = ("--warcs", "5")


def crawl(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "obelics_builder.cli", "crawl", "--dump", "2023-06", "--mirror",
                             "sample", *SUBSET, "--out", str(out), "--quiet", "--no-dataset", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "out"
    p = crawl(out, "--workers", "2")  # a LocalCluster run
    _, err = p.communicate(timeout=900)
    assert p.returncode == 0, err
    ref = digest(out / "documents")
    assert sum(pq.read_metadata(out / "documents" / n).num_rows for n in ref) > 0, "the subset must yield documents"
    return ref


def test_real_cluster_gives_the_same_shards(tmp_path, reference):
    cluster = Cluster(tmp_path)
    try:
        p = crawl(tmp_path / "out", "--scheduler", cluster.address)
        _, err = p.communicate(timeout=900)
        assert p.returncode == 0, err
    finally:
        cluster.close()
    assert digest(tmp_path / "out" / "documents") == reference


def test_killed_worker_does_not_change_the_output(tmp_path, reference):
    cluster = Cluster(tmp_path)
    try:
        out = tmp_path / "out"
        p = crawl(out, "--scheduler", cluster.address)
        # wait until the first WARC is done, then kill one worker process (SIGKILL: no goodbye)
        t0 = time.time()
        while not list((out / "parts" / "scored" / "_done").glob("*.json")) if (out / "parts" / "scored" / "_done").exists() else True:
            assert p.poll() is None, p.stderr.read()
            assert time.time() - t0 < 300
            time.sleep(0.1)
        victim = cluster.workers[0]
        # workers run without a nanny, so this kills the worker process itself
        os.kill(victim.pid, signal.SIGKILL)
        _, err = p.communicate(timeout=900)
        assert p.returncode == 0, err
    finally:
        cluster.close()
    assert digest(out / "documents") == reference


def test_interrupted_run_resumes(tmp_path, reference):
    out = tmp_path / "out"
    p = crawl(out, "--workers", "2")
    t0 = time.time()
    while not ((out / "parts" / "scored" / "_done").exists() and list((out / "parts" / "scored" / "_done").glob("*.json"))):
        assert p.poll() is None
        assert time.time() - t0 < 300
        time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    time.sleep(1.0)
    if p.poll() is None:
        p.kill()
    p.communicate(timeout=60)
    done_before = len(list((out / "parts" / "scored" / "_done").glob("*.json")))
    assert done_before >= 1
    q = crawl(out, "--workers", "2")
    _, err = q.communicate(timeout=900)
    assert q.returncode == 0, err
    assert digest(out / "documents") == reference
