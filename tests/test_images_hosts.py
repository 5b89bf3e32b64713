"""Host-partitioned image fetching (issue 19): robots.txt once per host per run, the per-host limit across the
tasks of a split host, a failing host backed off and counted, resume of a partially fetched host, and the plan
built over millions of URLs without the driver holding URL lists.

One threaded HTTP server on 127.0.0.1 plays several hosts: the URLs name hosts (``a.test``...) that a fake
resolver maps to 127.0.0.1, and the server tells them apart by the Host header."""
from __future__ import annotations

import io
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from obelics_builder.images import partition
from obelics_builder.images.hosts import BACKED_OFF, HostPolicy, host_of
from obelics_builder.images.partition import fetch_table_part
from obelics_builder.io.markers import read_marker

LOCAL = {"allow_addresses": ["127.0.0.1"], "retries": 0, "timeout_s": 5, "connect_timeout_s": 2,
         "robots_timeout_s": 3}
ROBOTS = b"User-agent: *\nDisallow: /private/\n"


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (10, 120, 200)).save(buf, "PNG")
    return buf.getvalue()


class Hosts:
    """Counts requests by (host, path) and the most requests in flight per host."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.hits: Counter = Counter()
        self.active: Counter = Counter()
        self.peak: Counter = Counter()
        self.lock = threading.Lock()
        self.delay_s = delay_s
        img, outer = _png(), self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802
                host = (self.headers.get("Host") or "").split(":")[0]
                with outer.lock:
                    outer.hits[(host, self.path)] += 1
                    outer.active[host] += 1
                    outer.peak[host] = max(outer.peak[host], outer.active[host])
                try:
                    if self.path == "/robots.txt":
                        status, body = 200, ROBOTS
                    elif host.startswith("down"):
                        status, body = 503, b"down"
                    else:
                        time.sleep(outer.delay_s)
                        status, body = 200, img
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain" if self.path == "/robots.txt" else "image/png")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                finally:
                    with outer.lock:
                        outer.active[host] -= 1

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]

    def url(self, host: str, path: str) -> str:
        return f"http://{host}:{self.port}{path}"

    def requests(self, host: str, prefix: str = "/img/") -> int:
        return sum(n for (h, p), n in self.hits.items() if h == host and p.startswith(prefix))

    def __enter__(self) -> "Hosts":
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


async def _dns(host, port, family=0, type=0, proto=0, flags=0):
    if not host.endswith(".test"):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port or 0))]


def _recipe(**images) -> dict:
    return {"images": {**LOCAL, **images}, "filters_config": {"image": {"nsfw": {"enabled": False}}}}


def _fetch(index, urls, recipe, out, **kw) -> dict:
    return fetch_table_part(index, urls, recipe, str(out), None, {}, getaddrinfo=_dns, **kw)


def _rows(out: Path, index: int) -> dict[str, dict]:
    return {r["url"]: r for r in pq.read_table(out / "images" / "table" / f"part-{index:05d}.parquet").to_pylist()}


def test_robots_txt_once_per_host_per_run_across_tasks_and_resumes(tmp_path):
    with Hosts() as srv:
        a = [srv.url("a.test", f"/img/{i}.png") for i in range(6)] + [srv.url("a.test", "/private/x.png")]
        b = [srv.url("b.test", f"/img/{i}.png") for i in range(6)]
        _fetch(0, a + b, _recipe(), tmp_path)
        assert srv.hits[("a.test", "/robots.txt")] == 1 and srv.hits[("b.test", "/robots.txt")] == 1
        rows = _rows(tmp_path, 0)
        assert rows[srv.url("a.test", "/private/x.png")]["reason"] == "consent:robots-txt"
        assert srv.hits[("a.test", "/private/x.png")] == 0
        assert len(list((tmp_path / "images" / "robots").glob("*.json"))) == 2
        # another task of the same run (a split host's other share, or a part refetched after a new document):
        # the host's answer comes from OUT, not from the host
        _fetch(1, [srv.url("a.test", "/img/new.png"), srv.url("a.test", "/private/y.png")], _recipe(),
                       tmp_path)
        assert srv.hits[("a.test", "/robots.txt")] == 1
        assert _rows(tmp_path, 1)[srv.url("a.test", "/private/y.png")]["reason"] == "consent:robots-txt"
        # the shares of a split host run at once: one of them asks, the other waits for its answer
        c = [srv.url("c.test", f"/img/{i}.png") for i in range(8)]
        threads = [threading.Thread(target=_fetch, args=(2 + i, c[i::2], _recipe(), tmp_path), kwargs={"shares": 2})
                   for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert srv.hits[("c.test", "/robots.txt")] == 1
        assert all(r["reason"] is None for i in (2, 3) for r in _rows(tmp_path, i).values())


def test_per_host_limit_holds_across_the_tasks_of_a_split_host(tmp_path):
    with Hosts(delay_s=0.05) as srv:
        urls = [srv.url("big.test", f"/img/{i}.png") for i in range(48)]
        recipe = _recipe(per_host=4, concurrency=32)
        threads = [threading.Thread(target=_fetch, args=(i, urls[i::2], recipe, tmp_path), kwargs={"shares": 2})
                   for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert srv.requests("big.test") == 48
        assert srv.peak["big.test"] <= 4, srv.peak  # each share holds per_host // 2 = 2
        # the control: one task alone with the whole limit does use it
        srv.peak.clear()
        _fetch(5, [srv.url("one.test", f"/img/{i}.png") for i in range(24)], recipe, tmp_path)
        assert srv.peak["one.test"] == 4


def test_a_failing_host_is_backed_off_whole_and_counted(tmp_path):
    with Hosts() as srv:
        down = [srv.url("down.test", f"/img/{i}.png") for i in range(30)]
        up = [srv.url("up.test", f"/img/{i}.png") for i in range(5)]
        stats = _fetch(0, down + up, _recipe(per_host=1, host_failures_max=5), tmp_path)
        assert srv.requests("down.test") == 5  # then the host was left alone
        rows = _rows(tmp_path, 0)
        reasons = Counter(rows[u]["reason"] for u in down)
        assert reasons == {"http_503": 5, BACKED_OFF: 25}
        assert all(rows[u]["reason"] is None for u in up)  # the other host of the task is not affected
        s = stats["image_fetch"]
        assert s["removed"][BACKED_OFF] == 25 and s["hosts_backed_off"] == 1
        assert s["documents_in"] == 35 == s["documents_out"] + sum(s["removed"].values())
        assert any(e["url"] == "down.test" for e in s["examples"])
        from obelics_builder.images.fetch import is_retryable

        assert is_retryable(BACKED_OFF)  # --retry-failed asks again later


def test_resume_of_a_partially_fetched_host(tmp_path, monkeypatch):
    with Hosts() as srv:
        urls = [srv.url("a.test", f"/img/{i:02d}.png") for i in range(20)]
        recipe = _recipe(checkpoint_urls=5, per_host=2)
        real = partition.write_table_part

        def crash(*a, **k):
            raise KeyboardInterrupt("the worker died before the part was written")

        monkeypatch.setattr(partition, "write_table_part", crash)
        with pytest.raises(KeyboardInterrupt):
            _fetch(0, urls, recipe, tmp_path)
        spool = tmp_path / "images" / "table" / "_partial" / "part-00000"
        saved = {r["url"] for f in spool.glob("*.parquet") for r in pq.read_table(f).to_pylist()}
        assert len(saved) >= 15  # checkpoints every 5 URLs
        assert all(_codecs(f)["data"] == "UNCOMPRESSED" for f in spool.glob("*.parquet"))
        assert srv.hits[("a.test", "/robots.txt")] == 1
        before = Counter(srv.hits)
        monkeypatch.setattr(partition, "write_table_part", real)
        _fetch(0, urls, recipe, tmp_path)
        delta = {k: n - before[k] for k, n in srv.hits.items() if n - before[k]}
        assert set(delta) == {("a.test", u.split(str(srv.port))[1]) for u in set(urls) - saved}  # only the rest
        assert ("a.test", "/robots.txt") not in delta  # robots.txt from OUT
        rows = _rows(tmp_path, 0)
        assert list(rows) == urls and all(r["reason"] is None and r["data"] for r in rows.values())
        assert not spool.exists() and read_marker(tmp_path / "images" / "table", "part-00000") is not None
        # the same part fetched in one go has the same rows (timings aside)
        _fetch(0, urls, recipe, tmp_path / "fresh")
        fresh = _rows(tmp_path / "fresh", 0)
        strip = lambda r: {k: v for k, v in r.items() if k != "seconds"}  # noqa: E731
        assert [strip(r) for r in rows.values()] == [strip(r) for r in fresh.values()]
        # the image bytes, compressed already, are stored as they are; the other columns with zstd
        codecs = _codecs(tmp_path / "images" / "table" / "part-00000.parquet")
        assert codecs.pop("data") == "UNCOMPRESSED" and set(codecs.values()) == {"ZSTD"}


def _codecs(path: Path) -> dict[str, str]:
    rg = pq.ParquetFile(path).metadata.row_group(0)
    return {rg.column(i).path_in_schema: rg.column(i).compression for i in range(rg.num_columns)}


def test_per_host_delay_spaces_the_requests_of_a_host(tmp_path):
    with Hosts() as srv:
        urls = [srv.url("slow.test", f"/img/{i}.png") for i in range(5)]
        t0 = time.perf_counter()
        _fetch(0, urls, _recipe(per_host_delay_s=0.1, respect_robots=False), tmp_path)
        assert time.perf_counter() - t0 >= 0.4 and srv.requests("slow.test") == 5


def test_host_policy_defaults_and_host_key():
    p = HostPolicy.from_config({"host_max_urls": "7", "per_host_delay_s": None})
    assert p.host_max_urls == 7 and p.per_host_delay_s == 0.0 and p.host_failures_max == 10
    assert host_of("https://IMG.Example.com:8443/a.png") == "img.example.com" and host_of("not a url") == ""


# ---- the planner ----------------------------------------------------------------------------------------------

def _generated_pairs(folder: Path, n_urls: int, files: int) -> dict[str, int]:
    """``n_urls`` unique image URLs over skewed hosts (two above the cap), in ``files`` pairs files."""
    import numpy as np

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    sizes = {"huge.example": 130_000, "large.example": 60_000}
    rest = n_urls - sum(sizes.values())
    per_host = rng.integers(1, 400, size=rest // 200 + 10)
    per_host = per_host[np.cumsum(per_host) <= rest]
    per_host[-1] += rest - int(per_host.sum())
    sizes.update({f"h{i}.example": int(n) for i, n in enumerate(per_host)})
    hosts = np.repeat(np.array(list(sizes), dtype=object), list(sizes.values()))
    idx = np.arange(n_urls)
    urls = np.char.add(np.char.add(np.char.add("https://", hosts.astype(str)), "/i/"), idx.astype(str))
    order = rng.permutation(n_urls)
    for k, chunk in enumerate(np.array_split(order, files)):
        t = pa.table({"image_url": pa.array(urls[chunk].astype(object), pa.string()),
                      "doc_url": pa.array(np.char.add("https://d/", (chunk % 50_000).astype(str)).astype(object))})
        pq.write_table(t, folder / f"w{k}.pairs.parquet")
    return sizes


@pytest.mark.slow
def test_plan_of_millions_of_urls_keeps_the_driver_flat(tmp_path):
    """2 million URLs: the plan is built on a LocalCluster and the driver's peak Python memory (tracemalloc, the
    graphs and every small result included) stays far below what one list of the URLs takes; a host is in one
    unit, the hosts above the cap are split into shares of at most the cap, the units come out as paths."""
    import tracemalloc

    from dask.distributed import Client, LocalCluster

    from obelics_builder.engine.reductions import image_url_plan, plan_units
    from obelics_builder.images.partition import unit_urls

    n = 2_000_000
    sizes = _generated_pairs(tmp_path / "pairs", n, 16)
    files = sorted((tmp_path / "pairs").glob("*.parquet"))
    dest = tmp_path / "images" / "plan"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      memory_limit="2GiB") as cluster, Client(cluster):
        tracemalloc.start()
        t0 = time.perf_counter()
        parts = image_url_plan(files, dest, "fp", 10, "distributed", host_max_urls=50_000)
        units = plan_units(dest)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    print(f"plan of {n} URLs: {parts} units, {time.perf_counter() - t0:.1f} s, driver peak {peak / 2**20:.1f} MiB")
    one_list = n * (8 + 49 + len("https://h1234.example/i/1000000"))  # list slots + str objects of ~30 chars
    assert peak < 60 * 2**20 < one_list / 2, (peak, one_list)  # a list of 2M URL strings alone is ~160 MB
    assert parts == len(units) and sum(u["urls"] for u in units) == n
    shares = [u for u in units if u["shares"] > 1]
    assert sorted(u["shares"] for u in shares) == [2, 2, 3, 3, 3]  # 60k -> 2 shares, 130k -> 3
    assert all(u["urls"] <= 50_000 and u["hosts"] == 1 for u in shares)
    # every host but the split ones in exactly one unit (read back one unit at a time, as the tasks do)
    seen: dict[str, int] = {}
    for i, u in enumerate(units):
        for h in {host_of(x) for x in unit_urls(dest / "fetch" / f"bucket={u['bucket']}" / "urls.parquet")}:
            seen[h] = seen.get(h, 0) + 1
    assert seen.pop("huge.example") == 3 and seen.pop("large.example") == 2
    assert set(seen.values()) == {1} and len(seen) == len(sizes) - 2


def test_robots_store_rechecks_after_taking_the_lock(tmp_path):
    """A task that found no answer, then took the lock after another task stored its answer and let go of the lock
    (the race behind a second robots.txt request of a split host under load), uses that answer."""
    import asyncio

    from obelics_builder.images.robots import RobotsStore

    url = "http://a.test/robots.txt"

    class Racing(RobotsStore):
        looked = 0

        def load(self, u):
            self.looked += 1
            if self.looked == 1:  # our first look: nothing yet; the other task finishes right after it
                RobotsStore.save(self, u, 200, ROBOTS, None)
                return None
            return super().load(u)

    asked: list[str] = []

    async def fetch(u):
        asked.append(u)
        return 200, b"User-agent: *\nDisallow: /\n", None

    store = Racing(tmp_path)
    assert asyncio.run(store.fetch(url, fetch)) == (200, ROBOTS, None)
    assert asked == [] and not list(tmp_path.glob("*.lock"))
