"""sources.warc_members (the image archive's fast reader) gives what warcio gives, and hands warcio what it does
not read exactly like it."""
from __future__ import annotations

import gzip
import io

import pytest

from obelics_builder.sources import archive as archive_mod
from obelics_builder.sources.archive import ImageArchive
from obelics_builder.sources.commoncrawl import image_archive_refs, warc_refs_from_paths
from obelics_builder.sources.warc_members import NotFast, parse_record, read_member, scan_members


def _warcio_only(monkeypatch, arch: ImageArchive) -> dict:
    """The index of ``arch``'s files as warcio alone builds it (the reference)."""
    def slow(uri):
        raise NotFast("reference run")

    with monkeypatch.context() as m:
        m.setattr(archive_mod, "_records_fast", slow)
        ref = ImageArchive(arch.refs, max_bytes=arch.max_bytes)
        return ref.index


def _same_index(fast: dict, slow: dict) -> None:
    assert fast.keys() == slow.keys()
    for k, e in fast.items():
        s = slow[k]
        assert (e.ref, e.offset, e.status, e.kind) == (s.ref, s.offset, s.status, s.kind), k
        assert (e.target[:2] if e.target else None) == (s.target[:2] if s.target else None), k


def _lookups_agree(arch: ImageArchive, urls) -> int:
    slow = ImageArchive(arch.refs, max_bytes=arch.max_bytes)
    slow._index = {k: archive_mod._Entry(e.ref, e.offset, e.status, e.kind, e.target[:2] if e.target else None)
                   for k, e in arch.index.items()}  # no member lengths: every read by warcio
    n = 0
    for url in urls:
        a, b = arch.lookup(url), slow.lookup(url)
        assert (a.status, a.headers, a.body) == (b.status, b.headers, b.body), url
        n += 1
    return n


def test_sample_mirror_index_and_every_lookup_match_warcio(monkeypatch):
    arch = ImageArchive(image_archive_refs("2023-06", "sample"))
    _same_index(arch.index, _warcio_only(monkeypatch, arch))
    # the substitutes' archive is read fast; the two archive.org captures (WARC/0.17, uncompressed) by warcio
    fast = {arch.refs[e.ref].name.rsplit("/", 1)[-1] for e in arch.index.values() if e.length is not None}
    assert fast == {"image-archive-00000.warc.gz"}
    assert _lookups_agree(arch, arch.urls()) == len(arch)


def test_real_warcs_match_warcio(monkeypatch, shared_data):
    paths = [shared_data / "warc/archive-org-2008/issue-493.warc",  # uncompressed: warcio reads it
             shared_data / "warc/archive-org-2008/example.warc.gz"]
    arch = ImageArchive(warc_refs_from_paths(paths))
    _same_index(arch.index, _warcio_only(monkeypatch, arch))
    assert _lookups_agree(arch, arch.urls()) == len(arch)


def _record(rtype: str, uri: str, block: bytes, extra: str = "") -> bytes:
    head = (f"WARC/1.0\r\nWARC-Type: {rtype}\r\nWARC-Target-URI: {uri}\r\nWARC-Date: 2024-01-01T00:00:00Z\r\n"
            f"WARC-Record-ID: <urn:uuid:{abs(hash((rtype, uri))):032d}>\r\n{extra}"
            f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(block)}\r\n\r\n").encode()
    return head + block + b"\r\n\r\n"


def _http(status: str, headers: list[str], body: bytes) -> bytes:
    return ("\r\n".join([f"HTTP/1.1 {status}", *headers]) + "\r\n\r\n").encode("utf-8") + body


def _cases() -> list[bytes]:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    chunked = b"5\r\nhello\r\n0\r\n\r\n"
    return [
        _record("response", "http://a.example/1.png", _http("200 OK", ["Content-Type: image/png"], png)),
        _record("response", "http://a.example/2.png", _http("200 OK", ["Content-Type:image/png", "X-A: 1",
                                                                         "x-a: 2", "Name : spaced  "], png[:99])),
        _record("response", "http://a.example/3.png", _http("404 Not Found", [], b"gone")),
        _record("response", "http://a.example/4.png", _http("200 OK", ["Transfer-Encoding: chunked"], chunked)),
        _record("response", "http://a.example/5.png",
                _http("200 OK", ["Content-Encoding: gzip"], gzip.compress(b"zipped body"))),
        _record("response", "http://a.example/6.png", _http("200 OK", ["Folded: a", " b"], b"x")),
        _record("response", "http://a.example/7.png", _http("200", [], b"no reason")),
        _record("response", "http://a.example/8.png", _http("200 OK", ["Caf\u00e9: cr\u00e8me"], b"utf8")),
        _record("response", "http://a.example/9.png", "HTTP/1.1 301 Moved\r\nLocation: /x\r\n\r\n".encode()),
        _record("revisit", "http://b.example/1.png", b"",
                "WARC-Refers-To-Target-URI: http://a.example/1.png\r\nWARC-Refers-To-Date: 2024-01-01T00:00:00Z\r\n"),
        _record("revisit", "http://b.example/2.png", _http("200 OK", ["Content-Type: image/x-own"], b""),
                "WARC-Refers-To-Target-URI: http://a.example/2.png\r\n"),
        _record("resource", "http://a.example/res", b"not indexed"),
    ]


def test_generated_records_and_their_fallbacks_match_warcio(monkeypatch, tmp_path):
    path = tmp_path / "cases.warc.gz"
    path.write_bytes(b"".join(gzip.compress(r) for r in _cases()))
    arch = ImageArchive(warc_refs_from_paths([path]), max_bytes=5000)
    _same_index(arch.index, _warcio_only(monkeypatch, arch))
    assert _lookups_agree(arch, arch.urls()) == 11
    assert arch.lookup("http://a.example/4.png").body == b"hello"  # warcio decoded the chunks
    assert arch.lookup("http://a.example/5.png").body == b"zipped body"
    assert len(arch.lookup("http://a.example/1.png").body) == 5001  # the cap, as before


@pytest.mark.parametrize("damage", ["cut", "trailing", "one_stream"])
def test_files_it_cannot_read_whole_go_to_warcio(monkeypatch, tmp_path, damage):
    members = [gzip.compress(r) for r in _cases()]
    data = {"cut": b"".join(members)[:-40], "trailing": b"".join(members) + b"\0" * 10,
            "one_stream": gzip.compress(b"".join(_cases()))}[damage]
    path = tmp_path / "d.warc.gz"
    path.write_bytes(data)
    with pytest.raises(NotFast):
        archive_mod._records_fast(str(path))
    arch = ImageArchive(warc_refs_from_paths([path]))
    ref = _warcio_only(monkeypatch, arch)
    _same_index(arch.index, ref)
    assert all(e.length is None for e in arch.index.values())


def test_members_offsets_lengths_and_reads(tmp_path):
    recs = _cases()
    members = [gzip.compress(r) for r in recs]
    big = _record("response", "http://a.example/big", _http("200 OK", [], bytes(3_000_000)))  # > one read step
    members.append(gzip.compress(big))
    recs.append(big)
    found = list(scan_members(io.BytesIO(b"".join(members))))
    offsets = [sum(len(m) for m in members[:i]) for i in range(len(members))]
    assert [m.offset for m in found] == offsets and [m.length for m in found] == [len(m) for m in members]
    assert [m.size for m in found] == [len(r) for r in recs]
    rec, body = read_member(io.BytesIO(b"".join(members)), offsets[-1], len(members[-1]), 1001, True)
    assert rec.status == 200 and body == bytes(1001)
    rec = parse_record(found[0].head, found[0].size)
    assert rec.rec_type == "response" and rec.http == [("Content-Type", "image/png")]
    with pytest.raises(NotFast):
        parse_record(b"WARC/1.0\r\nWARC-Type: response\r\nContent-Length: 5\r\n\r\nab", 60)  # not one record
