"""sources.commoncrawl: dump names, mirrors, path lists, and streaming (retry + Range resume) against a local server."""
from __future__ import annotations

import gzip
import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from obelics_builder.resources import SAMPLE_MIRROR
from obelics_builder.sources import commoncrawl as cc


def test_normalize_dump():
    assert cc.normalize_dump("2023-06") == "CC-MAIN-2023-06"
    assert cc.normalize_dump("CC-MAIN-2023-06") == "CC-MAIN-2023-06"
    assert cc.normalize_dump(" CC-MAIN-2020-34 ") == "CC-MAIN-2020-34"
    for bad in ("", "2023", "CC-MAIN-2023-6", "cc-main-2023-06x", "2023-99", "CC-NEWS-2023-06", None):
        with pytest.raises(ValueError, match="Common Crawl dump"):
            cc.normalize_dump(bad)


def test_resolve_mirror(tmp_path, monkeypatch):
    assert cc.resolve_mirror(None) == "https://data.commoncrawl.org"
    assert cc.resolve_mirror("") == "https://data.commoncrawl.org"
    assert cc.resolve_mirror("sample") == str(SAMPLE_MIRROR)
    assert cc.resolve_mirror("s3://commoncrawl") == "s3://commoncrawl"
    assert cc.resolve_mirror("https://example.org/cc/") == "https://example.org/cc"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m").mkdir()
    assert cc.resolve_mirror("m") == str((tmp_path / "m").resolve())


def _make_mirror(root: Path, n: int) -> list[str]:
    paths = [f"crawl-data/CC-MAIN-2021-04/segments/s/warc/f{i:03d}.warc.gz" for i in range(n)]
    d = root / "crawl-data/CC-MAIN-2021-04"
    d.mkdir(parents=True)
    (d / "warc.paths.gz").write_bytes(gzip.compress(("\n".join(paths) + "\n").encode()))
    return paths


def test_list_warcs_shard_then_limit(tmp_path):
    paths = _make_mirror(tmp_path, 10)
    refs = cc.list_warcs("2021-04", str(tmp_path))
    assert [r.name for r in refs] == paths
    assert refs[0].uri == str(tmp_path / paths[0])
    assert [r.name for r in cc.list_warcs("2021-04", str(tmp_path), limit=3)] == paths[:3]
    assert [r.name for r in cc.list_warcs("2021-04", str(tmp_path), shard=(1, 3))] == [paths[1], paths[4], paths[7]]
    # shard first, then limit
    assert [r.name for r in cc.list_warcs("2021-04", str(tmp_path), shard=(1, 3), limit=2)] == [paths[1], paths[4]]
    with pytest.raises(ValueError):
        cc.list_warcs("2021-04", str(tmp_path), shard=(3, 3))
    assert cc.image_archive_refs("2021-04", str(tmp_path)) == []
    assert cc.image_archive_refs(None, str(tmp_path)) == []


def test_list_warcs_sample_and_refs_hashable():
    refs = cc.list_warcs("2023-06", "sample")
    assert len(refs) >= 8
    for r in refs:
        assert r.name.startswith("crawl-data/CC-MAIN-2023-06/segments/sample/warc/")
        assert Path(r.uri).is_file()
    assert len(set(refs)) == len(refs)  # frozen dataclass: hashable (used as cache keys)
    arch = cc.image_archive_refs("CC-MAIN-2023-06", "sample")
    assert any(r.name.endswith("image-archive-00000.warc.gz") for r in arch)
    assert all(Path(r.uri).is_file() for r in arch)


def test_warc_refs_from_paths(tmp_path):
    f = tmp_path / "a.warc.gz"
    f.write_bytes(b"")
    (ref,) = cc.warc_refs_from_paths([str(f)])
    assert ref.name == str(f) and ref.uri == str(f.resolve())
    (ref,) = cc.warc_refs_from_paths(["https://data.commoncrawl.org/x.warc.gz"])
    assert ref.uri == ref.name == "https://data.commoncrawl.org/x.warc.gz"


def test_open_stream_fsspec_memory_and_missing_driver():
    import fsspec

    with fsspec.open("memory://obelics-test/x.bin", "wb") as f:
        f.write(b"hello world")
    with cc.open_stream("memory://obelics-test/x.bin") as s:
        assert s.read() == b"hello world"
    with pytest.raises((ImportError, ValueError)):
        cc.open_stream("nosuchscheme-xyz://bucket/key")


# ---- HTTP: retries and resume ---------------------------------------------------------------------------------

PAYLOAD = hashlib.sha256(b"seed").digest() * 40_000  # 1.28 MB


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mode = "ok"
    failures_left = 0
    seen: list = []

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        cls = type(self)
        cls.seen.append({"path": self.path, "range": self.headers.get("Range"), "ua": self.headers.get("User-Agent")})
        if self.path == "/missing":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if cls.failures_left > 0:
            cls.failures_left -= 1
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=", 1)[1].split("-", 1)[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if cls.mode == "cut" and not rng:
            self.wfile.write(body[: len(body) // 3])  # then drop the connection mid-body
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    handler = type("H", (_Handler,), {"seen": [], "failures_left": 0, "mode": "ok"})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield handler, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        t.join(5)


@pytest.mark.timeout(60)
def test_open_stream_retries_503(server):
    handler, base = server
    handler.failures_left = 2
    with cc.open_stream(f"{base}/file.warc.gz", retries=5, backoff=0.01) as s:
        data = s.read()
    assert data == PAYLOAD
    assert len(handler.seen) == 3
    assert all(r["ua"] == cc.USER_AGENT for r in handler.seen)


@pytest.mark.timeout(60)
def test_open_stream_gives_up(server):
    handler, base = server
    handler.failures_left = 100
    with pytest.raises(OSError, match="giving up"):
        cc.open_stream(f"{base}/file.warc.gz", retries=2, backoff=0.01)
    assert len(handler.seen) == 3
    with pytest.raises(FileNotFoundError):
        cc.open_stream(f"{base}/missing", retries=2, backoff=0.01)


@pytest.mark.timeout(60)
def test_open_stream_resumes_with_range(server):
    handler, base = server
    handler.mode = "cut"
    chunks = []
    with cc.open_stream(f"{base}/file.warc.gz", retries=3, backoff=0.01) as s:
        while True:
            b = s.read(7919)  # odd read size: the resume point is not aligned
            if not b:
                break
            chunks.append(b)
    assert b"".join(chunks) == PAYLOAD
    ranges = [r["range"] for r in handler.seen]
    assert ranges[0] is None
    assert len(ranges) == 2 and ranges[1] == f"bytes={len(PAYLOAD) // 3}-"
