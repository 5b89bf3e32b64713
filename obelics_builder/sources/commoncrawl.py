"""Common Crawl dumps and mirrors: which WARCs make up a dump, and how to stream one.

A *mirror* is the root under which Common Crawl's ``crawl-data/<dump>/...`` tree lives: the public HTTPS endpoint
(default), ``s3://commoncrawl``, any fsspec URL, a local folder, or ``"sample"`` (the small mirror bundled with the
package, see :data:`obelics_builder.resources.SAMPLE_MIRROR`).

Everything here streams: a WARC is never read whole into memory.  Over HTTP(S) a transient failure (429, 5xx, a
connection reset) is retried with exponential backoff and jitter, and a body that breaks mid-stream is resumed with a
``Range: bytes=N-`` request from the byte offset already delivered.
"""
from __future__ import annotations

import gzip
import io
import logging
import os
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable

log = logging.getLogger("obelics_builder.sources")

DEFAULT_MIRROR = "https://data.commoncrawl.org"
USER_AGENT = "obelics-builder/0.1 (+https://github.com/obelics-builder/obelics-builder)"

_DUMP_RE = re.compile(r"^(?:CC-MAIN-)?(\d{4})-(\d{2})$")
_RETRY_STATUS = {429, 500, 502, 503, 504, 520, 521, 522, 523, 524}
_MAX_SLEEP = 60.0


@dataclass(frozen=True)
class WarcRef:
    """One WARC to read: ``uri`` is what to open, ``name`` is how it is recorded (``warc_filename``)."""

    uri: str
    name: str


def normalize_dump(s: str) -> str:
    """``"2023-06"`` or ``"CC-MAIN-2023-06"`` -> ``"CC-MAIN-2023-06"``."""
    m = _DUMP_RE.match(str(s or "").strip())
    if not m or not (1 <= int(m.group(2)) <= 53):
        raise ValueError(
            f"not a Common Crawl dump name: {s!r} (expected YYYY-WW or CC-MAIN-YYYY-WW, e.g. 2023-06 or CC-MAIN-2023-06)"
        )
    return f"CC-MAIN-{m.group(1)}-{m.group(2)}"


def _is_url(s: str) -> bool:
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", s))


def resolve_mirror(mirror: str | None) -> str:
    """The mirror root as a URL or an absolute local path."""
    if mirror is None or str(mirror).strip() == "":
        return DEFAULT_MIRROR
    mirror = str(mirror).strip()
    if mirror == "sample":
        from ..resources import SAMPLE_MIRROR

        return str(SAMPLE_MIRROR)
    if _is_url(mirror):
        if mirror.startswith("file://"):
            return str(Path(mirror[len("file://"):]).resolve())
        return mirror if mirror.endswith("://") else mirror.rstrip("/")
    return str(Path(mirror).expanduser().resolve())


def _join(root: str, rel: str) -> str:
    rel = rel.strip()
    if _is_url(rel) or os.path.isabs(rel):
        return rel
    if _is_url(root):
        return root.rstrip("/") + "/" + rel.lstrip("/")
    return os.path.join(root, rel)


def _read_paths(uri: str) -> Iterable[str]:
    stream = open_stream(uri)
    try:
        with gzip.GzipFile(fileobj=stream) as gz:
            for raw in gz:
                line = raw.decode("utf-8", "replace").strip()
                if line and not line.startswith("#"):
                    yield line
    finally:
        stream.close()


def _exists(uri: str) -> bool:
    if not _is_url(uri):
        return os.path.isfile(uri)
    if uri.startswith(("http://", "https://")):
        import requests

        try:
            r = requests.head(uri, headers={"User-Agent": USER_AGENT}, timeout=30, allow_redirects=True)
            return r.status_code == 200
        except requests.RequestException:
            return False
    try:
        import fsspec

        fs, path = fsspec.core.url_to_fs(uri)
        return fs.exists(path)
    except Exception:  # missing filesystem driver, permission...: treat as absent
        return False


def list_warcs(dump: str, mirror: str | None, limit: int | None = None,
               shard: tuple[int, int] | None = None) -> list[WarcRef]:
    """The WARCs of ``dump`` listed in ``crawl-data/<dump>/warc.paths.gz`` under the mirror.

    ``shard=(i, n)`` keeps every n-th path starting at i (0-based); ``limit`` is applied after sharding.
    """
    dump = normalize_dump(dump)
    root = resolve_mirror(mirror)
    if shard is not None:
        i, n = shard
        if not (n > 0 and 0 <= i < n):
            raise ValueError(f"shard must be (i, n) with 0 <= i < n, got {shard!r}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    refs: list[WarcRef] = []
    for k, path in enumerate(_read_paths(_join(root, f"crawl-data/{dump}/warc.paths.gz"))):
        if shard is not None and k % shard[1] != shard[0]:
            continue
        if limit is not None and len(refs) >= limit:
            break
        refs.append(WarcRef(uri=_join(root, path), name=path))
    return refs


def warc_refs_from_paths(paths: Iterable[str | os.PathLike]) -> list[WarcRef]:
    """Explicit WARC files (local paths or URLs); ``name`` is the path as given."""
    refs = []
    for p in paths:
        p = str(p)
        uri = p if _is_url(p) else str(Path(p).expanduser().resolve())
        refs.append(WarcRef(uri=uri, name=p))
    return refs


def image_archive_refs(dump: str | None, mirror: str | None) -> list[WarcRef]:
    """WARCs listed in ``crawl-data/<dump>/image-archive.paths.gz`` under the mirror, or [] when there is none."""
    if not dump:
        return []
    dump = normalize_dump(dump)
    root = resolve_mirror(mirror)
    uri = _join(root, f"crawl-data/{dump}/image-archive.paths.gz")
    if not _exists(uri):
        return []
    try:
        return [WarcRef(uri=_join(root, p), name=p) for p in _read_paths(uri)]
    except (OSError, EOFError) as exc:
        log.warning("cannot read image archive list %s: %s", uri, exc)
        return []


# ---------------------------------------------------------------------------------------------------------------
# Streaming
# ---------------------------------------------------------------------------------------------------------------

def _sleep_for(attempt: int, backoff: float) -> float:
    return min(_MAX_SLEEP, backoff * (2 ** attempt)) * (0.5 + random.random() * 0.5)


class HTTPStream(io.RawIOBase):
    """A read-only, forward-only HTTP(S) body that retries and resumes with ``Range`` requests."""

    def __init__(self, url: str, retries: int = 5, backoff: float = 1.0, timeout: float = 60.0,
                 session=None, start: int = 0) -> None:
        super().__init__()
        import requests

        self.url = url
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.timeout = timeout
        self.session = session or requests.Session()
        self._own_session = session is None
        self.pos = int(start)  # bytes of the file delivered so far (a start > 0 opens with a Range request)
        self.size: int | None = None
        self.resumes = 0
        self.requests = 0
        self._resp = None
        self._eof = False
        self._open()

    # -- connection management ------------------------------------------------------------------------------
    def _open(self) -> None:
        import requests

        last_exc: BaseException | None = None
        for attempt in range(self.retries + 1):
            headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
            if self.pos > 0:
                headers["Range"] = f"bytes={self.pos}-"
            try:
                self.requests += 1
                resp = self.session.get(self.url, headers=headers, stream=True, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                last_exc = exc
            else:
                if resp.status_code in _RETRY_STATUS:
                    last_exc = OSError(f"HTTP {resp.status_code} for {self.url}")
                    resp.close()
                elif self.pos > 0 and resp.status_code == 416 and self.size is not None and self.pos >= self.size:
                    resp.close()
                    self._resp, self._eof = None, True
                    return
                elif resp.status_code not in (200, 206):
                    resp.close()
                    if resp.status_code == 404:
                        raise FileNotFoundError(f"HTTP 404 for {self.url}")
                    raise OSError(f"HTTP {resp.status_code} for {self.url}")
                else:
                    self._accept(resp)
                    return
            if attempt < self.retries:
                delay = _sleep_for(attempt, self.backoff)
                log.warning("%s: %s; retrying in %.1fs", self.url, last_exc, delay)
                time.sleep(delay)
        raise OSError(f"giving up on {self.url} after {self.retries + 1} attempts: {last_exc}")

    def _accept(self, resp) -> None:
        if self.pos > 0 and resp.status_code == 200:
            # the server ignored Range: skip what was already delivered
            to_skip = self.pos
            while to_skip > 0:
                chunk = resp.raw.read(min(to_skip, 1 << 20), decode_content=False)
                if not chunk:
                    resp.close()
                    raise OSError(f"{self.url}: body shorter than the offset already read ({self.pos})")
                to_skip -= len(chunk)
        if self.size is None:
            length = resp.headers.get("Content-Length")
            if resp.status_code == 206:
                m = re.search(r"/(\d+)\s*$", resp.headers.get("Content-Range", ""))
                if m:
                    self.size = int(m.group(1))
            elif length and length.isdigit():
                self.size = int(length)
        self._resp = resp

    # -- io.RawIOBase -----------------------------------------------------------------------------------------
    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = len(b)
        if n == 0 or self._eof:
            return 0
        import requests
        import urllib3

        resume_errors = (urllib3.exceptions.HTTPError, requests.RequestException, ConnectionError, TimeoutError,
                         OSError)
        for attempt in range(self.retries + 1):
            if self._resp is None:
                self._open()  # retries on its own; raises OSError when it gives up
                if self._eof:
                    return 0
            try:
                data = self._resp.raw.read(n, decode_content=False)
                if not data and self.size is not None and self.pos < self.size:
                    raise ConnectionError(f"body ended at {self.pos} of {self.size} bytes")
            except resume_errors as exc:
                self._drop()
                if attempt >= self.retries:
                    raise OSError(f"{self.url}: read failed at byte {self.pos}: {exc}") from exc
                self.resumes += 1
                delay = _sleep_for(attempt, self.backoff)
                log.warning("%s: read broke at byte %d (%s); resuming in %.1fs", self.url, self.pos, exc, delay)
                time.sleep(delay)
                continue
            if not data:
                self._eof = True
                self._drop()
                return 0
            b[: len(data)] = data
            self.pos += len(data)
            return len(data)
        return 0

    def tell(self) -> int:
        return self.pos

    def _drop(self) -> None:
        if self._resp is not None:
            try:
                self._resp.close()
            except Exception:
                pass
            self._resp = None

    def close(self) -> None:
        self._drop()
        if self._own_session:
            try:
                self.session.close()
            except Exception:
                pass
        super().close()


def open_stream(uri: str, retries: int = 5, backoff: float = 1.0) -> BinaryIO:
    """A binary, streaming file-like object for a local path, an http(s) URL or any fsspec URL (s3://...)."""
    uri = str(uri)
    if uri.startswith("file://"):
        uri = uri[len("file://"):]
    if not _is_url(uri):
        return open(uri, "rb")
    if uri.startswith(("http://", "https://")):
        return io.BufferedReader(HTTPStream(uri, retries=retries, backoff=backoff), buffer_size=1 << 16)
    try:
        import fsspec

        return fsspec.open(uri, "rb").open()
    except ImportError as exc:
        scheme = uri.split("://", 1)[0]
        hint = " (pip install 'obelics-builder[s3]' for s3fs)" if scheme in ("s3", "s3a") else ""
        raise ImportError(f"cannot open {uri}: no filesystem driver for {scheme}://{hint}: {exc}") from exc
