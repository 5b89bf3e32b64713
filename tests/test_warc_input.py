"""Input files (issue 17): WARC containers and malformed WARCs, read by sources.warc with exact accounting.

Every malformed file is built here (tmp_path).  Per case: what is read, what is counted (once, at its own offset),
and that ``documents_in == documents_out + removed + errors`` still holds.
"""
from __future__ import annotations

import functools
import gzip
import io
import struct
import threading
import tracemalloc
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import zstandard
from warcio.archiveiterator import ArchiveIterator

from obelics_builder.sources.commoncrawl import warc_refs_from_paths
from obelics_builder.sources.containers import excerpt, sniff
from obelics_builder.sources.warc import clean_message, iter_html_records, unreadable_report
from obelics_builder.stats import StageContext, Stats


def html_page(i: int) -> bytes:
    words = " ".join(f"word{i}x{j}" for j in range(40))
    return f"<!doctype html><html><head><title>Page {i}</title></head><body><p>{words}</p></body></html>".encode()


def warc_record(rtype: str, i: int, block: bytes, content_length: int | None = None, uri: str | None = None) -> bytes:
    msgtype = {"response": "application/http; msgtype=response", "request": "application/http; msgtype=request"}
    head = (f"WARC/1.0\r\nWARC-Type: {rtype}\r\nWARC-Target-URI: {uri or f'http://example.com/{i}'}\r\n"
            f"WARC-Date: 2024-01-01T00:00:00Z\r\nWARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-{i:012d}>\r\n"
            f"Content-Type: {msgtype.get(rtype, 'application/warc-fields')}\r\n"
            f"Content-Length: {len(block) if content_length is None else content_length}\r\n\r\n").encode()
    return head + block + b"\r\n\r\n"


def response(i: int, body: bytes | None = None, headers: str = "Content-Type: text/html\r\n", **kw) -> bytes:
    body = html_page(i) if body is None else body
    return warc_record("response", i, f"HTTP/1.1 200 OK\r\n{headers}\r\n".encode() + body, **kw)


def request(i: int) -> bytes:
    return warc_record("request", i, f"GET /{i} HTTP/1.1\r\nHost: example.com\r\n\r\n".encode())


def corpus(n: int = 6) -> list[bytes]:
    """warcinfo, then a request and an HTML response per page: 1 + 2n records, n documents."""
    recs = [warc_record("warcinfo", 999, b"software: test\r\nformat: WARC File Format 1.0\r\n")]
    for i in range(n):
        recs += [request(i), response(i)]
    return recs


def read(path, **kw):
    ctx = StageContext("read")
    (ref,) = warc_refs_from_paths([str(path)])
    recs = list(iter_html_records(ref, ctx, **kw))
    assert ctx.stats.balance_problems() == [], ctx.stats.balance_problems()
    return recs, ctx.stats.to_dict()["read"]


def urls(recs):
    return [r["url"] for r in recs]


def errors_at(s):
    return sorted((e["reason"], e.get("offset")) for e in s["examples"])


@pytest.fixture
def served(tmp_path):
    """Serve tmp_path over HTTP on 127.0.0.1 (a stream that cannot seek); yields the URL of a file name."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path)))
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield lambda name: f"http://127.0.0.1:{httpd.server_address[1]}/{name}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        t.join(5)


# ---------------------------------------------------------------------------------------------------------------
# A WARC compressed as one gzip stream
# ---------------------------------------------------------------------------------------------------------------

def test_whole_file_gzip_is_read_like_the_plain_file(tmp_path, served):
    data = b"".join(corpus(8))
    (tmp_path / "plain.warc").write_bytes(data)
    (tmp_path / "whole.warc.gz").write_bytes(gzip.compress(data))
    (tmp_path / "members.warc.gz").write_bytes(b"".join(gzip.compress(r) for r in corpus(8)))
    plain, s_plain = read(tmp_path / "plain.warc")
    whole, s_whole = read(tmp_path / "whole.warc.gz")
    members, _ = read(tmp_path / "members.warc.gz")
    assert len(plain) == 8 and s_plain["documents_in"] == 17 and s_plain["errors"] == {}
    assert [(r["url"], r["body"]) for r in whole] == [(r["url"], r["body"]) for r in plain] \
        == [(r["url"], r["body"]) for r in members]
    assert s_whole["documents_in"] == 17 and s_whole["errors"] == {} and s_whole["removed"] == s_plain["removed"]
    assert "inputs_unreadable" not in s_whole and s_whole["inputs"] == 1
    # over HTTP (no seeking: the stream is opened again for the decompressing pass) the same records
    remote, s_remote = read(served("whole.warc.gz"))
    assert [(r["url"], r["body"]) for r in remote] == [(r["url"], r["body"]) for r in plain]
    assert s_remote["documents_in"] == 17 and s_remote["errors"] == {}


def test_whole_file_gzip_of_a_real_warc(shared_data, tmp_path):
    src = shared_data / "warc/wget-2024-samples/sample-0000.warc.gz"
    (tmp_path / "whole.warc.gz").write_bytes(gzip.compress(gzip.decompress(src.read_bytes())))
    good, s_good = read(src)
    whole, s_whole = read(tmp_path / "whole.warc.gz")
    assert len(good) == 22 and [(r["url"], r["body"]) for r in whole] == [(r["url"], r["body"]) for r in good]
    assert s_whole["documents_in"] == s_good["documents_in"] == 48 and s_whole["errors"] == {}


def test_whole_file_gzip_is_streamed(tmp_path):
    """Memory does not grow with the file: a 30 MB (decompressed) whole-file gzip is read in a few MB."""
    recs = [warc_record("warcinfo", 999, b"software: test\r\n")]
    filler = b"<!doctype html><html><body>" + b"<p>" + b"lorem ipsum dolor sit amet " * 2000 + b"</p></body></html>"
    for i in range(600):
        recs.append(response(i, body=filler + str(i).encode()))
    data = b"".join(recs)
    assert len(data) > 30_000_000
    (tmp_path / "big.warc.gz").write_bytes(gzip.compress(data, compresslevel=1))
    (tmp_path / "big.warc.zst").write_bytes(zstandard.ZstdCompressor(level=1).compress(data))
    del data, recs
    for name in ("big.warc.gz", "big.warc.zst"):
        ctx = StageContext("read")
        (ref,) = warc_refs_from_paths([str(tmp_path / name)])
        tracemalloc.start()
        n = 0
        for _ in iter_html_records(ref, ctx):
            n += 1
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert n == 600 and ctx.stats.stage("read")["documents_in"] == 601
        assert peak < 8_000_000, (name, peak)


def test_damaged_whole_file_gzip_counts_one_error_and_keeps_what_came_before(tmp_path):
    recs = corpus(8)
    data = bytearray(gzip.compress(b"".join(recs), compresslevel=1))
    cut = bytes(data[: len(data) * 2 // 3])
    (tmp_path / "cut.warc.gz").write_bytes(cut)
    got, s = read(tmp_path / "cut.warc.gz")
    assert 0 < len(got) < 8 and urls(got) == [f"http://example.com/{i}" for i in range(len(got))]
    assert s["errors"] == {"truncated_record": 1}
    for i in range(len(data) // 2, len(data) // 2 + 200):
        data[i] ^= 0x55
    (tmp_path / "bad.warc.gz").write_bytes(bytes(data))
    got, s = read(tmp_path / "bad.warc.gz")
    assert len(got) < 8 and sum(s["errors"].values()) == 1 and set(s["errors"]) <= {"corrupt_gzip", "invalid_record",
                                                                                     "bad_record_length"}


# ---------------------------------------------------------------------------------------------------------------
# Content-Length that lies, junk, bad headers
# ---------------------------------------------------------------------------------------------------------------

def _offsets(recs: list[bytes]) -> list[int]:
    out, pos = [], 0
    for r in recs:
        out.append(pos)
        pos += len(r)
    return out


@pytest.mark.parametrize("victim", [3, 4])  # 3: a request, 4: a response (page 1)
@pytest.mark.parametrize("extra", [5, 700, 10**9])
def test_content_length_too_large_resyncs_and_counts_once(tmp_path, served, victim, extra):
    recs = corpus(6)
    real = len(recs[victim].split(b"\r\n\r\n", 1)[1]) - 4
    recs[victim] = recs[victim].replace(f"Content-Length: {real}\r\n".encode(),
                                        f"Content-Length: {real + extra}\r\n".encode())
    data = b"".join(recs)
    (tmp_path / "long.warc").write_bytes(data)
    (tmp_path / "long.warc.gz").write_bytes(gzip.compress(data))
    lost_page = {4: "http://example.com/1"}.get(victim)
    expect = [f"http://example.com/{i}" for i in range(6) if f"http://example.com/{i}" != lost_page]
    for where in (tmp_path / "long.warc", served("long.warc"), tmp_path / "long.warc.gz"):
        got, s = read(where)
        assert urls(got) == expect, where
        assert s["documents_in"] == 13 and s["errors"] == {"bad_record_length": 1}
        # at its own offset (for the whole-file gzip: in the decompressed stream, which is the same here)
        assert errors_at(s) == [("bad_record_length", _offsets(recs)[victim])]


def test_content_length_too_small_keeps_the_record_and_the_next(tmp_path):
    recs = corpus(4)
    real = len(recs[4].split(b"\r\n\r\n", 1)[1]) - 4
    recs[4] = recs[4].replace(f"Content-Length: {real}\r\n".encode(), f"Content-Length: {real - 20}\r\n".encode())
    (tmp_path / "short.warc").write_bytes(b"".join(recs))
    got, s = read(tmp_path / "short.warc")
    assert urls(got) == [f"http://example.com/{i}" for i in range(4)]
    assert got[1]["body"] == html_page(1)[:-20]  # read as declared
    assert s["documents_in"] == 9 and s["errors"] == {} and s["records_short_length"] == 1


def test_junk_bad_headers_and_truncation_are_counted_once_each(tmp_path):
    recs = corpus(6)
    junk = b"\x00\xff garbage between records \x1b[31m\r\n" * 20
    bad_len = recs[6].replace(b"Content-Length: ", b"Content-Length: 12abc", 1)  # not a number
    parts = recs[:3] + [junk] + recs[3:6] + [bad_len] + recs[7:]
    data = b"".join(parts)
    (tmp_path / "junk.warc").write_bytes(data)
    offs = _offsets(parts)
    got, s = read(tmp_path / "junk.warc")
    assert urls(got) == [f"http://example.com/{i}" for i in range(6) if i != 2]  # page 2 is recs[6]
    assert errors_at(s) == [("invalid_record", offs[3]), ("invalid_record", offs[7])]
    assert s["documents_in"] == 13 + 1  # 13 records + the stretch of junk
    # a file cut inside its last record
    (tmp_path / "cut.warc").write_bytes(data[:-200])
    got, s = read(tmp_path / "cut.warc")
    assert len(got) == 4 and errors_at(s)[-1] == ("truncated_record", offs[-1]) and s["errors"]["truncated_record"] == 1


def test_offsets_of_an_uncompressed_warc_allow_random_access(tmp_path):
    (tmp_path / "plain.warc").write_bytes(b"".join(corpus(5)))
    got, _ = read(tmp_path / "plain.warc")
    with open(tmp_path / "plain.warc", "rb") as fh:
        for r in got:
            fh.seek(r["warc_record_offset"])
            rec = next(iter(ArchiveIterator(io.BytesIO(fh.read(r["warc_record_length"])))))
            assert rec.rec_headers.get_header("WARC-Target-URI") == r["url"]


# ---------------------------------------------------------------------------------------------------------------
# zstd: .warc.zst files and Content-Encoding bodies; brotli bodies
# ---------------------------------------------------------------------------------------------------------------

def test_warc_zst_files(tmp_path):
    recs = corpus(6)
    data = b"".join(recs)
    plain_recs = [(r["url"], r["body"]) for r in read_bytes(tmp_path, "plain.warc", data)[0]]
    assert len(plain_recs) == 6
    # one frame for the whole file
    assert [(r["url"], r["body"]) for r in read_bytes(tmp_path, "a.warc.zst",
                                                      zstandard.ZstdCompressor().compress(data))[0]] == plain_recs
    # one frame per record, with the dictionary in a leading skippable frame (compressed and not)
    d = zstandard.train_dictionary(2048, recs * 20)
    cctx = zstandard.ZstdCompressor(dict_data=d)
    frames = b"".join(cctx.compress(r) for r in recs)
    for blob in (d.as_bytes(), zstandard.ZstdCompressor().compress(d.as_bytes())):
        f = struct.pack("<II", 0x184D2A5D, len(blob)) + blob + frames
        got, s = read_bytes(tmp_path, "d.warc.zst", f)
        assert [(r["url"], r["body"]) for r in got] == plain_recs and s["errors"] == {}
    # other skippable frames between records are passed over
    f = b"".join(zstandard.ZstdCompressor().compress(r) + struct.pack("<II", 0x184D2A50, 4) + b"skip" for r in recs)
    assert [(r["url"], r["body"]) for r in read_bytes(tmp_path, "s.warc.zst", f)[0]] == plain_recs
    # damage in a frame: one error, the records before are kept
    per = [zstandard.ZstdCompressor(write_checksum=True).compress(r) for r in recs]
    bad = bytearray(per[7])
    for i in range(12, len(bad) - 4):
        bad[i] ^= 0x3C
    got, s = read_bytes(tmp_path, "bad.warc.zst", b"".join(per[:7]) + bytes(bad) + b"".join(per[8:]))
    assert urls(got) == [f"http://example.com/{i}" for i in range(6)]  # only the request in frame 7 is lost
    assert errors_at(s) == [("corrupt_zstd", sum(len(p) for p in per[:7]))] and s["documents_in"] == 13
    # per-record frames: offsets and lengths are those of the frames (random access)
    plain = zstandard.ZstdDecompressor()
    data = (tmp_path / "bad.warc.zst").read_bytes()
    for r in got:
        rec = next(iter(ArchiveIterator(io.BytesIO(plain.decompress(
            data[r["warc_record_offset"]:r["warc_record_offset"] + r["warc_record_length"]])))))
        assert rec.rec_headers.get_header("WARC-Target-URI") == r["url"]
    # a file cut inside a frame: the records before it, one error
    got, s = read_bytes(tmp_path, "cut.warc.zst", b"".join(per[:7]) + per[7][:20])
    assert len(got) == 3 and s["errors"] == {"truncated_record": 1} and s["documents_in"] == 8


def read_bytes(tmp_path, name, data):
    (tmp_path / name).write_bytes(data)
    return read(tmp_path / name)


def test_br_and_zstd_bodies(tmp_path):
    import brotli

    page = html_page(1)
    bomb = b"<!doctype html><html><body>" + b"a" * 5_000_000
    recs = [
        response(0, brotli.compress(page), "Content-Type: text/html\r\nContent-Encoding: br\r\n"),
        response(1, zstandard.ZstdCompressor().compress(page), "Content-Type: text/html\r\nContent-Encoding: zstd\r\n"),
        response(2, gzip.compress(zstandard.ZstdCompressor().compress(page)),
                 "Content-Type: text/html\r\nContent-Encoding: zstd, gzip\r\n"),
        response(3, brotli.compress(bomb), "Content-Type: text/html\r\nContent-Encoding: br\r\n"),
        response(4, zstandard.ZstdCompressor().compress(bomb), "Content-Type: text/html\r\nContent-Encoding: zstd\r\n"),
        response(5, brotli.compress(page)[:-8], "Content-Type: text/html\r\nContent-Encoding: br\r\n"),
        response(6, b"\x28\xb5\x2f\xfd" + b"\x00" * 40, "Content-Type: text/html\r\nContent-Encoding: zstd\r\n"),
    ]
    (tmp_path / "enc.warc").write_bytes(b"".join(recs))
    got, s = read(tmp_path / "enc.warc", max_record_bytes=1_000_000)
    assert urls(got) == [f"http://example.com/{i}" for i in range(3)] and all(r["body"] == page for r in got)
    assert s["removed"] == {"too_large": 2}
    assert s["errors"] == {"content_decoding_error": 2}


# ---------------------------------------------------------------------------------------------------------------
# Files that are no WARC, messages
# ---------------------------------------------------------------------------------------------------------------

def test_files_that_are_no_warc_are_named_and_counted(tmp_path):
    import random

    rng = random.Random(7)
    cases = {
        "random.warc": rng.randbytes(5000),
        "page.warc": b"<!DOCTYPE html><html><body><p>not a warc</p></body></html>\n" * 30,
        "empty.warc": b"",
        "random.warc.gz": b"\x1f\x8b\x08\x00" + rng.randbytes(3000),
        "random.warc.zst": b"\x28\xb5\x2f\xfd" + rng.randbytes(3000),
        "page.warc.gz": gzip.compress(b"<!DOCTYPE html><html><body><p>a page</p></body></html>\n" * 30),
    }
    stats = Stats()
    ctx = StageContext("read", {}, stats)
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    for name in [*cases, "missing.warc"]:
        (ref,) = warc_refs_from_paths([str(tmp_path / name)])
        assert list(iter_html_records(ref, ctx)) == []
    s = stats.to_dict()["read"]
    assert stats.balance_problems() == []
    assert s["inputs"] == s["inputs_unreadable"] == 7 and s["documents_in"] == 7 and sum(s["errors"].values()) == 7
    named = {u["file"].rsplit("/", 1)[-1]: u["reason"] for u in s["unreadable_inputs"]}
    assert named["random.warc"] == named["page.warc"] == named["empty.warc"] == "not_a_warc"
    assert named["missing.warc"] == "unreadable_file" and named["random.warc.gz"] == "corrupt_gzip"
    assert named["random.warc.zst"] == "corrupt_zstd" and named["page.warc.gz"] == "not_a_warc"
    for u in s["unreadable_inputs"]:
        assert all(" " <= c <= "~" for c in u["message"]) and len(u["message"]) <= 300
    lines, none_read = unreadable_report(s)
    assert none_read and len(lines) == 7 and all(line.startswith("cannot read ") for line in lines)
    # a readable WARC among them: the run read something
    (tmp_path / "good.warc").write_bytes(b"".join(corpus(2)))
    (ref,) = warc_refs_from_paths([str(tmp_path / "good.warc")])
    assert len(list(iter_html_records(ref, ctx))) == 2
    assert unreadable_report(stats.to_dict()["read"])[1] is False


@pytest.mark.parametrize("seed", [20, 27, 39, 42, 71, 0, 1, 2])
def test_a_gzip_member_that_does_not_inflate_is_damage_not_a_record(tmp_path, seed):
    """warcio reads a gzip member it cannot inflate as raw bytes; random bytes whose first line has five fields then
    look like an ARC header (seeds 20, 27, ... do). Such a member is one corrupt_gzip, never a record, and the
    records after it are read."""
    import random

    junk = b"\x1f\x8b\x08\x00" + random.Random(seed).randbytes(3000)
    (tmp_path / "junk.warc.gz").write_bytes(junk)
    stats = Stats()
    ctx = StageContext("read", {}, stats)
    (ref,) = warc_refs_from_paths([str(tmp_path / "junk.warc.gz")])
    assert list(iter_html_records(ref, ctx)) == []
    s = stats.to_dict()["read"]
    assert stats.balance_problems() == [] and s["inputs_unreadable"] == 1
    assert s["unreadable_inputs"][0]["reason"] == "corrupt_gzip"
    # the same member between good ones costs one error and no record
    recs = corpus(4)
    (tmp_path / "mixed.warc.gz").write_bytes(b"".join(gzip.compress(r) for r in recs[:2]) + junk
                                             + b"".join(gzip.compress(r) for r in recs[2:]))
    stats = Stats()
    ctx = StageContext("read", {}, stats)
    (ref,) = warc_refs_from_paths([str(tmp_path / "mixed.warc.gz")])
    got = list(iter_html_records(ref, ctx))
    s = stats.to_dict()["read"]
    assert stats.balance_problems() == [] and len(got) == 4 and not s.get("inputs_unreadable")
    assert s["errors"] == {"corrupt_gzip": 1}, s["errors"]


def test_messages_are_short_and_escaped():
    raw = bytes(range(256))
    assert excerpt(raw).startswith("b'\\x00\\x01") and len(excerpt(raw)) < 160
    text = clean_message("bad \x1b[31mred\x00 \u00e9t\u00e9\nnext line", 200)
    assert all(" " <= c <= "~" for c in text) and "\\x1b" in text and "\\xe9" in text
    assert len(clean_message("x" * 1000, 100)) == 100
    assert sniff(b"") == "empty" and sniff(b"\x1f\x8b\x08") == "gzip" and sniff(b"\r\nWARC/1.1\r\n") == "warc"
    assert sniff(b"\x5d\x2a\x4d\x18\x00\x00") == "zstd" and sniff(b"filedesc://x") == "arc"
    assert sniff(b"<html>") == "unknown"


# ---------------------------------------------------------------------------------------------------------------
# The mistakes as command lines: exit code, message, no traceback; stats.json stays exact
# ---------------------------------------------------------------------------------------------------------------

def _cli(*args: str, timeout: int = 300):
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": repo + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "obelics_builder.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=repo)


def _bad_inputs(tmp_path) -> dict[str, str]:
    import os

    files = {"random.warc": os.urandom(4000),
             "page.warc": b"<!DOCTYPE html><html><body><p>a page, not a WARC</p></body></html>\n",
             "empty.warc.gz": b""}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return {name: str(tmp_path / name) for name in files}


def test_a_missing_input_is_a_usage_error_before_any_work(tmp_path):
    missing = str(tmp_path / "missing.warc")
    for args in (("extract", missing), ("crawl", "--warc", missing, "--out", str(tmp_path / "out"),
                                        "--scheduler", "sync", "--no-network")):
        r = _cli(*args)
        assert r.returncode == 2 and f"{missing}: no such file" in r.stderr, r.stderr
        _clean_stderr(r.stderr)
    assert not (tmp_path / "out" / "stats.json").exists()


def _clean_stderr(err: str) -> None:
    assert "Traceback" not in err
    assert all(c == "\n" or " " <= c <= "~" for c in err), "raw bytes on stderr"


@pytest.mark.timeout(120)
def test_extract_of_files_that_are_no_warc(tmp_path):
    bad = _bad_inputs(tmp_path)
    for name, path in bad.items():
        r = _cli("extract", path)
        assert r.returncode == 1 and r.stdout == "", (name, r.stderr)
        assert f"extract: cannot read {path}: " in r.stderr, r.stderr
        _clean_stderr(r.stderr)
    # a readable WARC among them: its documents, the others named, exit 0
    (tmp_path / "good.warc.gz").write_bytes(gzip.compress(b"".join(corpus(3))))  # one gzip stream
    r = _cli("extract", str(tmp_path / "good.warc.gz"), bad["page.warc"])
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 3
    assert f"cannot read {bad['page.warc']}: not_a_warc" in r.stderr
    _clean_stderr(r.stderr)


@pytest.mark.timeout(300)
def test_crawl_of_files_that_are_no_warc(tmp_path):
    bad = _bad_inputs(tmp_path)
    out = tmp_path / "out"
    r = _cli("crawl", "--warc", *bad.values(), "--out", str(out), "--scheduler", "sync", "--no-network")
    assert r.returncode == 1, r.stderr
    for path in bad.values():
        assert f"crawl: cannot read {path}: " in r.stderr
    assert "crawl: no input could be read (3 WARC(s) given)" in r.stderr
    _clean_stderr(r.stderr)
    import json

    stats = json.loads((out / "stats.json").read_text())
    read_stage = stats["stages"]["read"]
    assert stats["summary"]["accounted"] is True
    assert read_stage["inputs"] == read_stage["inputs_unreadable"] == 3 and read_stage["documents_in"] == 3
    assert read_stage["errors"] == {"not_a_warc": 3}


@pytest.mark.timeout(300)
def test_crawl_accounting_on_malformed_warcs(tmp_path):
    """One crawl over every malformed WARC: the good records are read, each fault is one error, and stats.json
    says every record is accounted."""
    recs = corpus(5)  # 11 records, 5 pages
    data = b"".join(recs)
    (tmp_path / "whole.warc.gz").write_bytes(gzip.compress(data))  # 11 records, 5 pages
    long = list(recs)
    real = len(long[4].split(b"\r\n\r\n", 1)[1]) - 4
    long[4] = long[4].replace(f"Content-Length: {real}\r\n".encode(), f"Content-Length: {real + 900}\r\n".encode())
    (tmp_path / "long.warc").write_bytes(b"".join(long))  # 11 records, page 1 lost to bad_record_length
    (tmp_path / "junk.warc").write_bytes(b"".join(recs[:3]) + b"\x00\x01junk\xff\r\n" * 9 + b"".join(recs[3:]))
    (tmp_path / "frames.warc.zst").write_bytes(b"".join(zstandard.ZstdCompressor().compress(x) for x in recs))
    (tmp_path / "cut.warc").write_bytes(data[:-100])  # the last response cut
    (tmp_path / "random.warc").write_bytes(bytes(range(256)) * 8)
    names = ["whole.warc.gz", "long.warc", "junk.warc", "frames.warc.zst", "cut.warc", "random.warc"]
    out = tmp_path / "out"
    r = _cli("crawl", "--warc", *[str(tmp_path / n) for n in names], "--out", str(out), "--scheduler", "sync",
             "--no-network", "--no-dataset")
    assert r.returncode == 0, r.stderr
    assert f"crawl: cannot read {tmp_path / 'random.warc'}: not_a_warc" in r.stderr
    _clean_stderr(r.stderr)
    import json

    stats = json.loads((out / "stats.json").read_text())
    s = stats["stages"]["read"]
    assert stats["summary"]["accounted"] is True and stats["summary"]["accounting_problems"] == []
    assert s["errors"] == {"bad_record_length": 1, "invalid_record": 1, "truncated_record": 1, "not_a_warc": 1}
    assert s["documents_out"] == 5 + 4 + 5 + 5 + 4
    assert s["documents_in"] == 11 + 11 + 12 + 11 + 11 + 1
    assert s["inputs"] == 6 and s["inputs_unreadable"] == 1


def test_image_archive_says_why_a_stream_compressed_warc_is_not_indexed(tmp_path, caplog):
    from obelics_builder.sources.archive import ImageArchive

    data = b"".join(corpus(3))
    (tmp_path / "whole.warc.gz").write_bytes(gzip.compress(data))
    (tmp_path / "a.warc.zst").write_bytes(zstandard.ZstdCompressor().compress(data))
    (tmp_path / "members.warc.gz").write_bytes(b"".join(gzip.compress(r) for r in corpus(3)))
    with caplog.at_level("WARNING", logger="obelics_builder.sources"):
        for name, errors in (("whole.warc.gz", 1), ("a.warc.zst", 1), ("members.warc.gz", 0)):
            arch = ImageArchive(warc_refs_from_paths([str(tmp_path / name)]))
            assert len(arch) >= 0 and arch.index_errors == errors, name
    text = caplog.text
    assert "compressed as one gzip stream" in text and "zstd-compressed" in text
    arch = ImageArchive(warc_refs_from_paths([str(tmp_path / "members.warc.gz")]))
    hit = arch.lookup("http://example.com/2")
    assert hit is not None and hit.status == 200 and hit.body == html_page(2)


@pytest.mark.timeout(120)
def test_random_damage_never_crashes_hangs_or_unbalances(tmp_path):
    """Flipped, cut, inserted, deleted and duplicated bytes in every container: no exception, no hang, exact
    accounting, and no more records counted than the file could hold (plus a few stretches of damage)."""
    import random

    rnd = random.Random(17)
    recs = corpus(5)
    bases = {"warc": b"".join(recs), "warc.gz": gzip.compress(b"".join(recs)),
             "members.warc.gz": b"".join(gzip.compress(r) for r in recs),
             "warc.zst": b"".join(zstandard.ZstdCompressor(write_checksum=True).compress(r) for r in recs),
             "whole.warc.zst": zstandard.ZstdCompressor().compress(b"".join(recs))}
    for n in range(150):
        name = rnd.choice(sorted(bases))
        d = bytearray(bases[name])
        op = rnd.choice(["flip", "cut", "insert", "delete", "dup"])
        i = rnd.randrange(len(d))
        if op == "flip":
            for _ in range(rnd.randint(1, 8)):
                d[rnd.randrange(len(d))] ^= rnd.randint(1, 255)
        elif op == "cut":
            d = d[:i]
        elif op == "insert":
            d[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 200)))
        elif op == "delete":
            del d[i:i + rnd.randint(1, 200)]
        else:
            d[i:i] = d[i:i + rnd.randint(1, 1500)]
        path = tmp_path / f"{n}.{name}"
        path.write_bytes(bytes(d))
        got, s = read(path)  # read() asserts the balance
        most = 2 * len(recs) if op == "dup" else len(recs)  # a duplicated stretch may hold whole records
        assert s["documents_in"] <= most + 8, (path, s["documents_in"], s["errors"])
        assert len(got) <= (10 if op == "dup" else 5)
