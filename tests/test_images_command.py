"""`crawl` against a flaky image server, then `obelics-build images OUT --retry-failed` refetches only what failed."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow.parquet as pq
import pytest
from PIL import Image
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

pytestmark = pytest.mark.slow


def png(w=320, h=240, color=(30, 120, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, "PNG")
    return buf.getvalue()


class FlakyServer:
    """/ok.png always works, /flaky.png answers 503 while ``failing`` is set, /missing.png is a 404."""

    def __init__(self) -> None:
        self.hits: Counter = Counter()
        self.failing = True
        srv = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                srv.hits[self.path] += 1
                if self.path == "/robots.txt" or self.path == "/missing.png":
                    self.send_response(404)
                    self.end_headers()
                    return
                if self.path == "/flaky.png" and srv.failing:
                    self.send_response(503)
                    self.end_headers()
                    return
                body = png(color=(200, 30, 30) if self.path == "/flaky.png" else (30, 120, 200))
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server():
    s = FlakyServer()
    yield s
    s.close()


def write_warc(path, base: str) -> None:
    text = "The quiet river carried small boats past the old mill while children watched from the bank."
    more = "In the afternoon we walked to the bridge, and the water was so clear that we could see the fish."
    html = (f"<html><body><article><h1>A day by the river</h1><p>{text}</p>"
            f"<img src='{base}/ok.png' width='320' height='240' alt='ok'><p>{more} Then evening came.</p>"
            f"<img src='{base}/flaky.png' width='320' height='240' alt='flaky'><p>More words about the day.</p>"
            f"<img src='{base}/missing.png' width='320' height='240' alt='missing'></article></body></html>").encode()
    with open(path, "wb") as f:
        w = WARCWriter(f, gzip=True)
        headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
        w.write_record(w.create_warc_record("http://river.example/day.html", "response",
                                            payload=io.BytesIO(html), http_headers=headers))


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "obelics_builder.cli", *args], capture_output=True, text=True,
                          timeout=600)


def table_rows(out) -> dict:
    rows = {}
    for f in sorted((out / "images" / "table").glob("part-*.parquet")):
        for r in pq.read_table(f, columns=["url", "status", "error", "reason", "attempts"]).to_pylist():
            rows[r["url"].rsplit("/", 1)[-1]] = r
    return rows


def test_retry_failed_refetches_only_failures(tmp_path, server):
    warc = tmp_path / "river.warc.gz"
    write_warc(warc, f"http://127.0.0.1:{server.port}")
    out = tmp_path / "out"
    r = cli("crawl", "--warc", str(warc), "--out", str(out), "--mode", "default", "--scheduler", "sync",
            "--allow-private-addresses", "--no-dataset", "--quiet")
    assert r.returncode == 0, r.stderr
    rows = table_rows(out)
    assert rows["ok.png"]["status"] == 200 and not rows["ok.png"]["reason"]
    assert rows["flaky.png"]["error"] == "http_503"
    assert rows["missing.png"]["error"] == "http_404"
    before = dict(server.hits)
    assert before["/flaky.png"] >= 2  # retried with backoff within the crawl

    server.failing = False
    r = cli("images", str(out), "--retry-failed", "--allow-private-addresses", "--scheduler", "sync", "--quiet")
    assert r.returncode == 0, r.stderr
    rows = table_rows(out)
    assert rows["flaky.png"]["status"] == 200 and not rows["flaky.png"]["reason"]
    assert rows["missing.png"]["error"] == "http_404"
    # only the retryable failure went back to the network
    assert server.hits["/flaky.png"] == before["/flaky.png"] + 1
    assert server.hits["/ok.png"] == before["/ok.png"]
    assert server.hits["/missing.png"] == before["/missing.png"]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["stages"]["image_fetch"]["removed"].get("http_503", 0) == 0


def test_private_addresses_are_refused_by_default(tmp_path, server):
    warc = tmp_path / "river.warc.gz"
    write_warc(warc, f"http://127.0.0.1:{server.port}")
    out = tmp_path / "out"
    r = cli("crawl", "--warc", str(warc), "--out", str(out), "--mode", "default", "--scheduler", "sync",
            "--no-dataset", "--quiet")
    assert r.returncode == 0, r.stderr
    assert sum(server.hits.values()) == 0, "the fetcher must never connect to a loopback address by default"
    rows = table_rows(out)
    assert {r["error"] for r in rows.values()} == {"unsafe_address"}
