"""sources.warc: HTML records out of real and damaged WARCs, every record counted."""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from obelics_builder.sources.commoncrawl import list_warcs, warc_refs_from_paths
from obelics_builder.sources.warc import _BadPayload, decode_content, dechunk, iter_html_records, sniff_html
from obelics_builder.stats import StageContext


def read_all(path, **kw):
    ctx = StageContext("read")
    (ref,) = warc_refs_from_paths([str(path)])
    recs = list(iter_html_records(ref, ctx, dump="CC-MAIN-2023-06", **kw))
    return recs, ctx.stats.to_dict()["read"], ctx


def assert_balanced(ctx):
    assert ctx.stats.balance_problems() == []


EDGE = [
    "block-sized-records.warc.gz", "clipped.warc.gz", "clueweb-quirk.warc.gz",
    "warcio/bad.arc", "warcio/example-bad-non-chunked.warc.gz", "warcio/example-bad.warc.gz.bad",
    "warcio/example-digest.warc", "warcio/example-iana.org-chunked.warc", "warcio/example-resource.warc.gz",
    "warcio/example-space-in-target-uri.warc.gz", "warcio/example-space-in-url.arc", "warcio/example-trunc.warc",
    "warcio/example-wget-bad-target-uri.warc.gz", "warcio/example-wrong-chunks.warc.gz", "warcio/example.arc",
    "warcio/example.arc.gz", "warcio/example.warc", "warcio/example.warc.gz", "warcio/post-test.warc.gz",
    "webarchive-commons/webarchive-commons-IAH-urls-wget.warc.gz",
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", EDGE)
def test_edge_cases_never_crash_and_balance(shared_data, name):
    recs, s, ctx = read_all(shared_data / "warc/edge-cases" / name)
    assert_balanced(ctx)
    assert s["documents_in"] >= 1
    for r in recs:
        assert r["url"].startswith(("http://", "https://")) and "<" not in r["url"]
        assert isinstance(r["body"], bytes) and r["body"]
        assert r["warc_record_length"] > 0 and r["warc_record_offset"] >= 0


def test_edge_case_outcomes(shared_data):
    e = shared_data / "warc/edge-cases"
    recs, s, _ = read_all(e / "clipped.warc.gz")
    assert recs == [] and s["errors"] == {"truncated_record": 1}
    recs, s, _ = read_all(e / "warcio/example-bad-non-chunked.warc.gz")  # one gzip member for the whole file
    plain, s_plain, _ = read_all(e / "warcio/example.warc")  # the same records, uncompressed
    assert s["errors"] == {} and s["removed"] == s_plain["removed"] and len(recs) == len(plain) == 1
    recs, s, _ = read_all(e / "clueweb-quirk.warc.gz")
    assert len(recs) == 29  # malformed dates are kept as they are
    recs, s, _ = read_all(e / "warcio/example-iana.org-chunked.warc")
    (r,) = recs
    assert r["url"] == "http://www.iana.org/" and b"</html>" in r["body"].lower() and b"\r\n0\r\n" not in r["body"]
    recs, _, _ = read_all(e / "warcio/example-wget-bad-target-uri.warc.gz")
    assert recs and all(not r["url"].startswith("<") for r in recs)
    recs, s, _ = read_all(e / "warcio/example.warc.gz")
    assert len(recs) == 1 and s["removed"]["not_response:revisit"] == 1 and s["removed"]["not_response:request"] == 2
    recs, _, _ = read_all(e / "warcio/example.arc.gz")  # ARC converted on the fly
    assert [r["url"] for r in recs] == ["http://example.com/"]
    recs, s, _ = read_all(e / "warcio/example-wrong-chunks.warc.gz")
    assert sum(s["errors"].values()) >= 1


def test_real_warcs(shared_data):
    w = shared_data / "warc"
    recs, s, ctx = read_all(w / "commoncrawl-2020-34-excerpt/warcfile.warc.gz")
    assert_balanced(ctx)
    assert len(recs) == 16 and s["documents_in"] == 50
    r = recs[0]
    assert r["warc_filename"].endswith("warcfile.warc.gz") and r["dump"] == "CC-MAIN-2023-06"
    assert r["fetch_date"].startswith("2020-08-")
    assert r["http_headers"]["content-type"].lower().startswith("text/html")
    assert "WARC-Identified-Payload-Type" in r["warc_headers"] or r["warc_headers"] == {}
    # offsets/lengths point at the record: re-reading there gives the same URL
    with open(w / "commoncrawl-2020-34-excerpt/warcfile.warc.gz", "rb") as fh:
        for r in recs[:5]:
            fh.seek(r["warc_record_offset"])
            member = fh.read(r["warc_record_length"])
            rec = next(iter(ArchiveIterator(__import__("io").BytesIO(member))))
            assert rec.rec_headers.get_header("WARC-Target-URI") == r["url"]
    recs, s, ctx = read_all(w / "archive-org-2008/example.warc.gz")
    assert_balanced(ctx)
    assert s["documents_in"] == 822 and len(recs) == 94 and s["removed"]["http_status:404"] == 40
    recs, s, ctx = read_all(w / "wget-2024-samples/sample-0000.warc.gz")
    assert len(recs) == 22 and all(not r["url"].startswith("<") for r in recs)


def test_too_large(shared_data):
    recs, s, ctx = read_all(shared_data / "warc/commoncrawl-2020-34-excerpt/warcfile.warc.gz", max_record_bytes=20_000)
    assert_balanced(ctx)
    assert s["removed"].get("too_large", 0) > 0 and len(recs) + s["removed"]["too_large"] == 16
    assert all(len(r["body"]) <= 20_000 for r in recs)


def _members(path: Path) -> list[tuple[int, int]]:
    with open(path, "rb") as fh:
        it = ArchiveIterator(fh)
        out = []
        for _ in it:
            out.append((it.get_record_offset(), it.get_record_length()))
    return out


def test_corrupt_member_in_the_middle_resyncs(shared_data, tmp_path):
    src = shared_data / "warc/wget-2024-samples/sample-0000.warc.gz"
    good, s0, _ = read_all(src)
    data = bytearray(src.read_bytes())
    members = _members(src)
    # damage the deflate stream of a record in the middle (a response: find one that was yielded)
    target = good[len(good) // 2]
    off, length = target["warc_record_offset"], target["warc_record_length"]
    for i in range(off + 30, off + min(length - 10, 400)):
        data[i] ^= 0x5A
    bad = tmp_path / "damaged.warc.gz"
    bad.write_bytes(bytes(data))
    recs, s, ctx = read_all(bad)
    assert_balanced(ctx)
    assert sum(s["errors"].values()) >= 1
    urls = [r["url"] for r in recs]
    before = [r["url"] for r in good if r["warc_record_offset"] < off]
    after = [r["url"] for r in good if r["warc_record_offset"] > off]
    assert urls[: len(before)] == before  # everything before the damage
    assert set(after) <= set(urls)  # and everything after it (re-synchronised on the next gzip member)
    assert target["url"] not in urls
    assert len(members) == s0["documents_in"]


def test_truncated_file_keeps_records_before(shared_data, tmp_path):
    src = shared_data / "warc/commoncrawl-2020-34-excerpt/warcfile.warc.gz"
    good, _, _ = read_all(src)
    cut = good[10]["warc_record_offset"] + good[10]["warc_record_length"] // 2
    bad = tmp_path / "cut.warc.gz"
    bad.write_bytes(src.read_bytes()[:cut])
    recs, s, ctx = read_all(bad)
    assert_balanced(ctx)
    assert [r["url"] for r in recs] == [r["url"] for r in good[:10]]
    assert sum(s["errors"].values()) >= 1


def test_garbage_and_missing_files(tmp_path):
    g = tmp_path / "garbage.warc.gz"
    g.write_bytes(b"\x1f\x8b\x08" + bytes(range(256)) * 20)
    recs, s, ctx = read_all(g)
    assert recs == [] and sum(s["errors"].values()) >= 1
    assert_balanced(ctx)
    t = tmp_path / "text.warc"
    t.write_bytes(b"this is not a warc\n" * 100)
    recs, s, ctx = read_all(t)
    assert recs == [] and sum(s["errors"].values()) >= 1
    assert_balanced(ctx)
    recs, s, ctx = read_all(tmp_path / "nope.warc.gz")
    assert recs == [] and s["errors"] == {"unreadable_file": 1}
    assert_balanced(ctx)


def _warc(records: list[bytes]) -> bytes:
    out = b""
    for i, block in enumerate(records):
        head = (f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: http://example.com/{i}\r\n"
                f"WARC-Date: 2023-01-01T00:00:00Z\r\nWARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-{i:012d}>\r\n"
                f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(block)}\r\n\r\n").encode()
        out += gzip.compress(head + block + b"\r\n\r\n", mtime=0)
    return out


def _http(headers: str, body: bytes) -> bytes:
    return f"HTTP/1.1 200 OK\r\n{headers}\r\n".encode() + body


def test_payload_decoding_and_bad_payloads(tmp_path):
    html = b"<!doctype html><html><body><p>hello</p></body></html>"
    gz = gzip.compress(html, mtime=0)
    chunked = b"10\r\n" + html[:16] + b"\r\n" + f"{len(html) - 16:x}".encode() + b"\r\n" + html[16:] + b"\r\n0\r\n\r\n"
    f = tmp_path / "synthetic.warc.gz"
    f.write_bytes(_warc([
        _http("Content-Type: text/html\r\nContent-Encoding: gzip\r\n", gz),                       # 0 ok
        _http("Content-Type: text/html\r\nTransfer-Encoding: chunked\r\n", chunked),              # 1 ok
        _http("", html),                                                                          # 2 sniffed
        _http("", b"\x89PNG\r\n\x1a\n" + b"\0" * 50),                                             # 3 not_html
        _http("Content-Type: text/html\r\nContent-Encoding: gzip\r\n", gz[:12] + b"xxxx" + gz[16:]),  # 4 decode error
        _http("Content-Type: text/html\r\nTransfer-Encoding: chunked\r\n",
              b"5\r\nhello\r\nZZ\r\nbroken\r\n0\r\n\r\n"),                                         # 5 bad chunks
        _http("Content-Type: image/png\r\n", b"x"),                                               # 6 not_html
        b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\n\r\n" + html,                      # 7 http_status
    ]))
    recs, s, ctx = read_all(f)
    assert_balanced(ctx)
    assert [r["url"] for r in recs] == ["http://example.com/0", "http://example.com/1", "http://example.com/2"]
    assert all(r["body"] == html for r in recs)
    assert s["removed"] == {"not_html": 2, "http_status:404": 1}
    assert s["errors"] == {"content_decoding_error": 1, "bad_chunked_encoding": 1}


def test_helpers():
    assert dechunk(b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n") == b"abcde"
    assert dechunk(b"<html>not chunked</html>") == b"<html>not chunked</html>"
    assert dechunk(b"3\r\nabc\r\n5\r\nde") == b"abcde"  # cut inside the last chunk: keep what is there
    with pytest.raises(_BadPayload):
        dechunk(b"3\r\nabc\r\nxyz\r\n")
    assert decode_content(zlib.compress(b"abc"), "deflate", 100) == b"abc"
    assert decode_content(b"<html>", "gzip", 100) == b"<html>"  # stored decoded under the original header
    assert sniff_html(b"\xef\xbb\xbf  <!DOCTYPE html><p>") and sniff_html(b"<HTML>") and not sniff_html(b"%PDF-1.4")


@pytest.mark.timeout(120)
def test_sample_mirror_has_html():
    total, ctx = 0, StageContext("read")
    for ref in list_warcs("2023-06", "sample"):
        for r in iter_html_records(ref, ctx, dump="CC-MAIN-2023-06"):
            assert r["warc_filename"] == ref.name
            total += 1
    assert total >= 300
    assert ctx.stats.balance_problems() == []
    assert ctx.stats.stage("read")["errors"] == {}


@pytest.mark.timeout(60)
def test_reading_over_http_matches_local(shared_data):
    """The same WARC served by a local HTTP server gives the same records and offsets as the local file."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    folder = shared_data / "warc/commoncrawl-2020-34-excerpt"

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/warcfile.warc.gz"
        ctx = StageContext("read")
        remote = list(iter_html_records(warc_refs_from_paths([url])[0], ctx))
    finally:
        httpd.shutdown()
        httpd.server_close()
        t.join(5)
    local, _, _ = read_all(folder / "warcfile.warc.gz")
    assert_balanced(ctx)
    assert [(r["url"], r["warc_record_offset"], r["warc_record_length"], r["body"]) for r in remote] == \
        [(r["url"], r["warc_record_offset"], r["warc_record_length"], r["body"]) for r in local]
    assert remote[0]["warc_filename"] == url
