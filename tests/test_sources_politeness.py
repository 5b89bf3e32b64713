"""Common Crawl politeness against a local fault-injecting server: backoff on 503 / SlowDown / 429 (+ Retry-After) /
resets, Range resume from the byte reached (also when the server ignores Range), the process-wide rate cap, and a
network failure that raises SourceUnavailable instead of being counted as damaged data."""
from __future__ import annotations

import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from obelics_builder.resources import SAMPLE_MIRROR
from obelics_builder.sources import commoncrawl as cc
from obelics_builder.sources.warc import iter_html_records
from obelics_builder.stats import StageContext

WARC = next((SAMPLE_MIRROR / "crawl-data/CC-MAIN-2023-06/segments/sample/warc").glob("commoncrawl-*.warc.gz"))
DATA = WARC.read_bytes()

SLOWDOWN_BODY = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
                 b'<Message>Please reduce your request rate.</Message></Error>')


class FaultServer:
    """Serves DATA at any path; ``script`` is a list of faults consumed one per request (then plain answers).

    Faults: "503", "500", "slowdown" (503 + S3 XML body), "slowdown429", "429:<retry-after>", "reset" (RST before
    answering), "cut:<n>" (send n bytes of the body then reset), "short:<n>" (announce the full length, send n
    bytes, close cleanly), "norange" (ignore Range, answer 200 with the whole file), "norange-cut:<n>" (ignore Range
    and break after n bytes), "badrange" (206 from a wrong offset).
    """

    def __init__(self, data: bytes = DATA) -> None:
        self.data = data
        self.script: list[str] = []
        self.log: list[dict] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reset(self):
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                try:
                    self.connection.close()
                except OSError:
                    pass

            def _simple(self, code, body=b"", headers=()):
                self.send_response(code)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_HEAD(self):
                with outer.lock:
                    outer.log.append({"t": time.monotonic(), "range": None, "fault": "head"})
                self.send_response(200)
                self.send_header("Content-Length", str(len(outer.data)))
                self.end_headers()

            def do_GET(self):
                if self.path.endswith("/missing"):
                    return self._simple(404)
                rng = self.headers.get("Range")
                with outer.lock:
                    fault = outer.script.pop(0) if outer.script else "ok"
                    outer.log.append({"t": time.monotonic(), "range": rng, "fault": fault})
                data = outer.data
                kind, _, arg = fault.partition(":")
                if kind == "503":
                    return self._simple(503)
                if kind == "500":
                    return self._simple(500)
                if kind == "slowdown":
                    return self._simple(503, SLOWDOWN_BODY, [("Content-Type", "application/xml")])
                if kind == "slowdown429":
                    return self._simple(429, SLOWDOWN_BODY, [("Content-Type", "application/xml")])
                if kind == "429":
                    return self._simple(429, b"", [("Retry-After", arg)])
                if kind == "reset":
                    return self._reset()
                start = 0
                if rng and kind not in ("norange", "norange-cut"):
                    start = int(rng.split("=", 1)[1].split("-", 1)[0])
                    if kind == "badrange":
                        start = max(0, start - 100)
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if kind in ("cut", "norange-cut"):
                    self.wfile.write(body[: int(arg)])
                    self.wfile.flush()
                    return self._reset()
                if kind == "short":
                    self.wfile.write(body[: int(arg)])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/crawl-data/x/{WARC.name}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setattr(cc, "BACKOFF", 0.01)
    monkeypatch.setattr(cc, "RETRIES", 4)
    monkeypatch.setattr(cc, "_LIMITER", cc.RateLimiter(0))  # each test gets its own process-wide limiter
    yield


def read_all(url: str, size: int = 8191) -> bytes:
    out = []
    with cc.open_stream(url) as s:
        while True:
            b = s.read(size)
            if not b:
                break
            out.append(b)
    return b"".join(out)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("script", [
    ["503", "503", "500"],
    ["slowdown", "slowdown429"],
    ["reset", "reset"],
    ["cut:100000"],
    ["cut:1", "reset", "cut:50000", "503", "cut:70000"],
    ["short:30000", "short:45000"],
    ["cut:123457", "norange"],                   # server ignores Range on the resume: skip, don't duplicate
    ["cut:99999", "norange-cut:50000", "norange"],  # ... and breaks again before reaching the offset
])
def test_faults_still_deliver_exact_bytes(script):
    with FaultServer() as srv:
        srv.script = list(script)
        assert read_all(srv.url) == DATA
        assert srv.script == []  # every fault was hit
        # a resume asks for the byte offset already delivered, never from zero: with a clean close ("short") that is
        # exactly what was sent; after a reset the kernel may drop unread bytes, so it is at most what was sent
        sent, last = 0, 0
        for fault, entry in zip(script + ["ok"], srv.log):
            start = int(entry["range"].split("=")[1].rstrip("-")) if entry["range"] else 0
            assert last <= start <= sent, (fault, entry, sent)
            if all(f.startswith("short") for f in script):
                assert start == sent
            last = start
            kind, _, arg = fault.partition(":")
            if kind in ("cut", "short"):
                sent = start + int(arg)
            elif kind == "norange-cut":
                sent = max(start, int(arg))
        if script == ["cut:100000"]:
            assert srv.log[1]["range"] not in (None, "bytes=0-")


@pytest.mark.timeout(60)
def test_429_retry_after_is_honoured_and_pauses_the_process():
    with FaultServer() as srv:
        srv.script = ["429:1"]
        assert read_all(srv.url) == DATA
        t = [e["t"] for e in srv.log]
        assert len(t) == 2 and t[1] - t[0] >= 0.95
        assert cc.rate_limiter()._paused_until > 0
    # Retry-After forms and the cap
    assert cc.parse_retry_after("3") == 3.0
    assert cc.parse_retry_after("100000") == cc.MAX_RETRY_AFTER
    assert cc.parse_retry_after("-5") == 0.0
    assert cc.parse_retry_after("soon") is None and cc.parse_retry_after(None) is None
    assert 9 <= cc.parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) <= 11


@pytest.mark.timeout(60)
def test_gives_up_with_source_unavailable():
    with FaultServer() as srv:
        srv.script = ["503"] * 10
        with pytest.raises(cc.SourceUnavailable, match="giving up"):
            cc.open_stream(srv.url)
        assert len(srv.log) == cc.RETRIES + 1
        # a 206 that does not start where asked is refused loudly, never spliced in
        srv.script, srv.log[:] = ["short:5000", "badrange"], []
        with pytest.raises(cc.SourceUnavailable, match="Content-Range"):
            read_all(srv.url)


@pytest.mark.timeout(60)
def test_rate_cap_holds_across_threads(monkeypatch):
    rate = 20.0
    # the limiter's own clock, read under its lock, says when each request was let through (the server's arrival
    # times add each thread's scheduling delay after the grant: on a loaded machine they bunch up)
    local = threading.local()

    def clock():
        local.t = time.monotonic()
        return local.t

    limiter = cc.RateLimiter(rate, burst=2, clock=clock)
    grants, glock = [], threading.Lock()
    acquire = limiter.acquire

    def recording_acquire():
        waited = acquire()
        with glock:
            grants.append(local.t)  # this thread's last clock reading: the one its token was taken at
        return waited

    monkeypatch.setattr(limiter, "acquire", recording_acquire)
    monkeypatch.setattr(cc, "_LIMITER", limiter)
    small = b"x" * 1000
    with FaultServer(small) as srv:
        def worker():
            for _ in range(8):
                with cc.open_stream(srv.url) as s:
                    assert s.read() == small

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
        arrived = len(srv.log)
    assert arrived == 32 and len(grants) == 32
    t = sorted(grants)
    # token bucket: n requests need at least (n - burst) / rate seconds, in every window
    for i in range(len(t)):
        for j in range(i + 3, len(t)):
            assert t[j] - t[i] >= (j - i + 1 - 2) / rate - 1e-6, (i, j, t[j] - t[i])
    assert t[-1] - t[0] >= (32 - 2) / rate - 1e-6


def test_rate_limiter_env(monkeypatch):
    monkeypatch.setattr(cc, "_LIMITER", None)
    monkeypatch.setenv("OBELICS_CC_MAX_RPS", "3.5")
    assert cc.rate_limiter().rate == 3.5
    monkeypatch.setattr(cc, "_LIMITER", None)
    monkeypatch.setenv("OBELICS_CC_MAX_RPS", "0")
    assert cc.rate_limiter().rate == 0.0
    monkeypatch.setattr(cc, "_LIMITER", None)
    monkeypatch.delenv("OBELICS_CC_MAX_RPS")
    assert cc.rate_limiter().rate == cc.DEFAULT_MAX_RPS
    cc.set_max_rps(7)
    assert cc.rate_limiter().rate == 7.0


def _records(url_or_path):
    ctx = StageContext("read")
    (ref,) = cc.warc_refs_from_paths([str(url_or_path)])
    recs = [(r["url"], r["warc_record_offset"], r["body"]) for r in iter_html_records(ref, ctx)]
    return recs, ctx


@pytest.mark.timeout(60)
def test_reader_over_faulty_server_matches_local_file():
    local, _ = _records(WARC)
    assert len(local) > 10
    with FaultServer() as srv:
        srv.script = ["slowdown", "cut:77777", "reset", "short:200000", "norange", "cut:400000"]
        remote, ctx = _records(srv.url)
    assert remote == local
    assert ctx.stats.balance_problems() == []
    assert ctx.stats.stage("read")["errors"] == {}


@pytest.mark.timeout(60)
def test_reader_raises_on_network_failure_instead_of_counting():
    """A WARC whose stream dies for good must not look complete-with-an-error (it would be marked done)."""
    with FaultServer() as srv:
        # half the file, then the connection ends (a clean close, so no delivered byte is lost to a reset and some
        # records are read first), and every resume is refused: the cut must lie inside the file (the WARC is
        # ~136 kB; a cut past its end delivered the whole file and the test then depended on timing)
        srv.script = [f"short:{len(DATA) // 2}"] + ["503"] * 50
        ctx = StageContext("read")
        (ref,) = cc.warc_refs_from_paths([srv.url])
        got = []
        with pytest.raises(cc.SourceUnavailable):
            for r in iter_html_records(ref, ctx):
                got.append(r["url"])
        assert 0 < len(got)
        assert ctx.stats.stage("read")["errors"] == {}  # nothing swallowed as a counted error
        # the same when the server is unreachable from the start
        srv.script = ["503"] * 50
        with pytest.raises(cc.SourceUnavailable):
            list(iter_html_records(ref, StageContext("read")))
        # a missing file (404) is a property of the input: counted, not raised
        ctx = StageContext("read")
        (missing,) = cc.warc_refs_from_paths([srv.url.rsplit("/", 1)[0] + "/missing"])
        assert list(iter_html_records(missing, ctx)) == []
        assert ctx.stats.stage("read")["errors"] == {"unreadable_file": 1}
    # the server is stopped now: a refused connection is a network failure
    with pytest.raises(cc.SourceUnavailable):
        list(iter_html_records(ref, StageContext("read")))


def test_fsspec_read_failure_is_source_unavailable():
    class Broken:
        def read(self, n=-1):
            raise ConnectionResetError("peer reset")

        def seekable(self):
            return False

        def close(self):
            pass

    import io

    fh = io.BufferedReader(cc._GuardedFile(Broken(), "s3://bucket/key"))
    with pytest.raises(cc.SourceUnavailable, match="s3://bucket/key"):
        fh.read(10)
