"""URL replay from WARC files: the image stage asks the archive before (or instead of) the live web.

:class:`ImageArchive` indexes, once and lazily, the ``response`` records (any status) and the ``revisit`` records
of a list of WARCs by normalised URL, and answers :meth:`ImageArchive.lookup` with an :class:`ArchiveHit` (status,
lowercased HTTP headers, decoded payload) read by seeking to the record.  A revisit is resolved to the payload of the
response it refers to (by ``WARC-Refers-To``, else ``WARC-Refers-To-Target-URI`` + ``WARC-Refers-To-Date``, else the
target URI alone, else an identical ``WARC-Payload-Digest``); its own HTTP status and headers win when it has them.

Per-record gzip WARCs (WARC/1.0, 1.1) are indexed and read by :mod:`.warc_members` (zlib member by member: the
index keeps each record's gzip member length, a lookup inflates exactly that member); any other file, and any
record that reader does not parse exactly like warcio (encoded payloads, folded headers...), goes through warcio.

Thread-safe: the index is built under a lock and every lookup opens its own file handle.  Picklable: the index
travels with the object once built.
"""
from __future__ import annotations

import io
import json
import logging
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from warcio.archiveiterator import ArchiveIterator

from .commoncrawl import HTTPStream, WarcRef, open_stream
from .warc_members import NotFast, parse_record, read_member, scan_members

log = logging.getLogger("obelics_builder.sources")

_DEFAULT_PORTS = {"http": 80, "https": 443}
#: the WARC headers the index reads (lowercased), besides the type and target URI
_FIELDS = frozenset({"warc-record-id", "warc-date", "warc-payload-digest", "warc-refers-to",
                     "warc-refers-to-target-uri", "warc-refers-to-date"})


#: a URL that is its own index key: a lowercase http(s) scheme and host (no port, user info or IPv6 literal), a path
#: from the host on, no fragment, no control character or space (urlsplit removes tabs and newlines), not ending in
#: an empty query ("x?": urlunsplit drops the "?") nor in "<" or ">" (stripped)
_KEY_AS_IS = re.compile(r"https?://[a-z0-9._~!$&'()*+,;=%-]+/[^\x00-\x20\x7f#]*(?<![?<>])")


def normalize_url(url: str) -> str:
    """Index key: fragment dropped, scheme and host lowercased, default port dropped, surrounding <> removed."""
    if url and not url[-1].isspace() and _KEY_AS_IS.fullmatch(url):  # most URLs; ~14x cheaper than the parse
        return url
    return _normalize_url_parsed(url)


def _normalize_url_parsed(url: str) -> str:
    """:func:`normalize_url` by parsing (every URL; the tests hold the fast path to it)."""
    url = (url or "").strip().strip("<>").strip()
    try:
        p = urlsplit(url)
        scheme = p.scheme.lower()
        netloc = p.netloc
        host = (p.hostname or "").lower()
        port = p.port
    except ValueError:
        return url.split("#", 1)[0]
    if host:
        userinfo = netloc.rsplit("@", 1)[0] + "@" if "@" in netloc else ""
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        netloc = userinfo + host + (f":{port}" if port and _DEFAULT_PORTS.get(scheme) != port else "")
    return urlunsplit((scheme, netloc, p.path or ("/" if host else ""), p.query, ""))


@dataclass
class ArchiveHit:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class _Entry:
    ref: int  # index into refs
    offset: int
    status: int
    kind: str  # "response" | "revisit"
    target: tuple | None = None  # (ref, offset[, length]) of the response holding the payload, for revisits
    length: int | None = None  # the record's gzip member length (None: read it with warcio)


class ImageArchive:
    def __init__(self, refs: list[WarcRef], max_bytes: int = 20_000_000) -> None:
        self.refs = [r if isinstance(r, WarcRef) else WarcRef(uri=r["uri"], name=r["name"]) for r in refs]
        self.max_bytes = int(max_bytes)
        self._index: dict[str, _Entry] | None = None
        self._lock = threading.Lock()
        self.index_errors = 0

    # ---- pickling ---------------------------------------------------------------------------------------------
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # ---- index ------------------------------------------------------------------------------------------------
    @property
    def index(self) -> dict[str, _Entry]:
        if self._index is None:
            with self._lock:
                if self._index is None:
                    self._index = self._build()
        return self._index

    def _build(self) -> dict[str, _Entry]:
        index: dict[str, _Entry] = {}
        by_id: dict[str, tuple] = {}
        by_url_date: dict[tuple[str, str], tuple] = {}
        by_url: dict[str, tuple] = {}
        by_digest: dict[str, tuple] = {}
        revisits: list[tuple[str, int, int, int, dict, int | None]] = []
        for i, ref in enumerate(self.refs):
            for rec_type, key, offset, length, status, h in self._records(ref):
                if rec_type == "response":
                    loc = (i, offset, length)
                    for rid in filter(None, [h.get("warc-record-id")]):
                        by_id.setdefault(rid.strip(), loc)
                    by_url_date.setdefault((key, (h.get("warc-date") or "").strip()), loc)
                    by_url.setdefault(key, loc)
                    digest = h.get("warc-payload-digest")
                    if digest and status == 200:
                        by_digest.setdefault(digest.strip(), loc)
                    old = index.get(key)
                    # first capture wins, except that a 200 replaces an earlier non-200
                    if old is None or (old.status != 200 and status == 200):
                        index[key] = _Entry(i, offset, status, "response", length=length)
                else:
                    revisits.append((key, i, offset, status, {
                        "id": (h.get("warc-refers-to") or "").strip(),
                        "uri": normalize_url(h.get("warc-refers-to-target-uri") or ""),
                        "date": (h.get("warc-refers-to-date") or "").strip(),
                        "digest": (h.get("warc-payload-digest") or "").strip(),
                    }, length))
        for key, i, offset, status, refs, length in revisits:
            if key in index and index[key].status == 200:
                continue
            target = (by_id.get(refs["id"]) if refs["id"] else None) \
                or by_url_date.get((refs["uri"], refs["date"])) \
                or by_url.get(refs["uri"]) \
                or (by_digest.get(refs["digest"]) if refs["digest"] else None)
            if target is None:
                continue
            if key not in index or index[key].status != 200:
                index[key] = _Entry(i, offset, status, "revisit", target, length=length)
        return index

    def _records(self, ref: WarcRef) -> list[tuple[str, str, int, int | None, int, dict]]:
        """``(type, key, offset, member length or None, HTTP status, the :data:`_FIELDS` headers)`` of the
        response and revisit records of one file: :mod:`.warc_members` when it reads the whole file, else warcio
        (which says why a file is damaged)."""
        if not ref.uri.startswith(("http://", "https://")):
            try:
                return _records_fast(ref.uri)
            except NotFast:
                pass
            except OSError:
                pass  # (warcio's pass below reports it)
        out = []
        try:
            stream = open_stream(ref.uri)
        except Exception as exc:
            self.index_errors += 1
            log.warning("image archive: cannot open %s: %s", ref.uri, exc)
            return out
        try:
            it = ArchiveIterator(stream, arc2warc=True)
            for record in it:
                rec_type = record.rec_type
                if rec_type not in ("response", "revisit"):
                    continue
                h = record.rec_headers
                key = normalize_url(h.get_header("WARC-Target-URI") or "")
                if not key:
                    continue
                status = 0
                if record.http_headers is not None and getattr(record.http_headers, "statusline", None):
                    try:
                        status = int(record.http_headers.get_statuscode())
                    except (TypeError, ValueError):
                        status = 0
                heads = {}
                for name, value in h.headers:
                    if name.lower() in _FIELDS:
                        heads.setdefault(name.lower(), value)
                out.append((rec_type, key, it.get_record_offset(), None, status, heads))
        except Exception as exc:  # a damaged archive file keeps what was indexed before the damage
            self.index_errors += 1
            log.warning("image archive: %s", _index_failure(ref.name, stream, exc))
        finally:
            stream.close()
        return out

    # ---- queries ------------------------------------------------------------------------------------------------
    def __contains__(self, url: object) -> bool:
        return isinstance(url, str) and normalize_url(url) in self.index

    def __len__(self) -> int:
        return len(self.index)

    def urls(self) -> list[str]:
        return sorted(self.index)

    def lookup(self, url: str) -> ArchiveHit | None:
        entry = self.index.get(normalize_url(url))
        if entry is None:
            return None
        status, headers, body = self._read(entry.ref, entry.offset, entry.kind == "response", entry.length)
        if entry.kind == "revisit":
            t = entry.target
            t_status, t_headers, body = self._read(t[0], t[1], True, t[2] if len(t) > 2 else None)
            if not status:
                status, headers = t_status, t_headers
            elif not headers:
                headers = t_headers
        return ArchiveHit(status=status, headers=headers, body=body)

    def _read(self, ref_i: int, offset: int, want_body: bool,
              length: int | None = None) -> tuple[int, dict[str, str], bytes]:
        ref = self.refs[ref_i]
        if length is not None:
            try:
                return self._read_fast(ref.uri, offset, length, want_body)
            except NotFast:
                pass
        fh = _open_at(ref.uri, offset)
        try:
            record = next(iter(ArchiveIterator(fh, arc2warc=True)))
            status, headers = 0, {}
            http = record.http_headers
            if http is not None and getattr(http, "statusline", None):
                try:
                    status = int(http.get_statuscode())
                except (TypeError, ValueError):
                    status = 0
                for name, value in http.headers:
                    key = name.strip().lower()
                    headers[key] = f"{headers[key]}, {value}" if key in headers else value
            body = b""
            if want_body:
                stream = record.content_stream()
                chunks, size = [], 0
                while size <= self.max_bytes:
                    chunk = stream.read(min(1 << 16, self.max_bytes + 1 - size))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    size += len(chunk)
                body = b"".join(chunks)  # at most max_bytes + 1 bytes: callers can tell it was too large
            return status, headers, body
        finally:
            fh.close()

    def _read_fast(self, uri: str, offset: int, length: int, want_body: bool) -> tuple[int, dict[str, str], bytes]:
        """What :meth:`_read` gives, by inflating the record's gzip member at once (:mod:`.warc_members`)."""
        with open_stream(uri) as fh:
            record, body = read_member(fh, offset, length, self.max_bytes + 1, want_body)
        headers: dict[str, str] = {}
        for name, value in record.http or ():
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        return record.status, headers, body

    # ---- persistence ------------------------------------------------------------------------------------------
    def save_index(self, path: str | Path) -> None:
        data = {
            "refs": [{"uri": r.uri, "name": r.name} for r in self.refs],
            "index": {k: [e.ref, e.offset, e.status, e.kind, list(e.target) if e.target else None, e.length]
                      for k, e in sorted(self.index.items())},
        }
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load_index(cls, path: str | Path, max_bytes: int = 20_000_000) -> "ImageArchive":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        arch = cls([WarcRef(uri=r["uri"], name=r["name"]) for r in data["refs"]], max_bytes=max_bytes)
        arch._index = {k: _Entry(v[0], v[1], v[2], v[3], tuple(v[4]) if v[4] else None, *v[5:6])
                       for k, v in data["index"].items()}
        return arch


def _records_fast(uri: str) -> list[tuple[str, str, int, int | None, int, dict]]:
    """:meth:`ImageArchive._records` of a per-record gzip WARC by :func:`.warc_members.scan_members`; raises
    :class:`.warc_members.NotFast` for any other file (warcio reads it then)."""
    out = []
    with open_stream(uri) as fh:
        for m in scan_members(fh):
            rec = parse_record(m.head, m.size)
            if rec.rec_type not in ("response", "revisit"):
                continue
            key = normalize_url(rec.warc.get("warc-target-uri") or "")
            if key:
                heads = {k: v for k, v in rec.warc.items() if k in _FIELDS}
                out.append((rec.rec_type, key, m.offset, m.length, rec.status, heads))
    return out


def _index_failure(name: str, stream, exc: Exception) -> str:
    """Why an image archive could not be indexed (to the end), in one printable line."""
    from .containers import sniff
    from .warc import clean_message

    if "non-chunked gzip" in str(exc):
        return (f"{name} is compressed as one gzip stream: images are served by offset, so only its first record "
                f"is indexed; recompress it per record (one gzip member per record)")
    try:
        stream.seek(0)
        kind = sniff(stream.read(16))
    except Exception:
        kind = ""
    if kind == "zstd":
        return (f"{name} is zstd-compressed: the image archive reads per-record gzip, ARC and uncompressed WARCs "
                f"only; not indexed")
    return clean_message(f"{name} is damaged ({type(exc).__name__}: {exc}); indexed what came before", 300)


def _open_at(uri: str, offset: int):
    """A handle positioned at ``offset``: seek for files and fsspec URLs, a Range request for http(s)."""
    if uri.startswith(("http://", "https://")):
        return io.BufferedReader(HTTPStream(uri, start=offset), buffer_size=1 << 16)
    fh = open_stream(uri)
    fh.seek(offset)
    return fh
