"""Common Crawl dumps and mirrors: which WARCs make up a dump, and how to stream one.

A *mirror* is the root under which Common Crawl's ``crawl-data/<dump>/...`` tree lives: the public HTTPS endpoint
(default), ``s3://commoncrawl``, any fsspec URL, a local folder, or ``"sample"`` (the small mirror bundled with the
package, see :data:`obelics_builder.resources.SAMPLE_MIRROR`).

Everything here streams: a WARC is never read whole into memory.  Over HTTP(S) a transient failure (429, 5xx, S3
``SlowDown``, a connection reset) is retried with exponential backoff and jitter (``Retry-After`` honoured, capped),
every request goes through a process-wide token bucket (:func:`rate_limiter`, ``OBELICS_CC_MAX_RPS``, default
:data:`DEFAULT_MAX_RPS` requests/s per process, so N worker processes send up to N x that), and a body that breaks
mid-stream is resumed with a ``Range: bytes=N-`` request from the byte offset already delivered.  When the retries
run out, :class:`SourceUnavailable` is raised: a network failure is never mistaken for damaged data.
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
#: Defaults of :func:`open_stream`: attempts after the first, and the first backoff step in seconds
#: (waits of ~1, 2, 4, 8, 16 s with jitter: about half a minute of patience per failure).
RETRIES = 5
BACKOFF = 1.0


@dataclass(frozen=True)
class WarcRef:
    """One WARC to read: ``uri`` is what to open, ``name`` is how it is recorded (``warc_filename``)."""

    uri: str
    name: str


def normalize_dump(s: str) -> str:
    """``"2023-06"`` or ``"CC-MAIN-2023-06"`` -> ``"CC-MAIN-2023-06"``."""
    m = _DUMP_RE.match(str(s or "").strip())
    if not m or not (1 <= int(m.group(2)) <= 53):
        short = re.match(r"^(?:CC-MAIN-)?(\d{4})-(\d)$", str(s or "").strip())
        if short and short.group(2) != "0":
            raise ValueError(f"not a Common Crawl dump name: {s!r} (weeks have two digits: did you mean "
                             f"{short.group(1)}-0{short.group(2)}, i.e. CC-MAIN-{short.group(1)}-0{short.group(2)}?)")
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
            rate_limiter().acquire()
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
# Politeness: errors, request-rate cap, backoff
# ---------------------------------------------------------------------------------------------------------------

class SourceUnavailable(OSError):
    """A remote WARC (or listing) could not be read to its end: the network or the server failed after every retry.

    This is *not* damaged data: the caller must not count it as a bad record and go on, because the rest of the
    file was never seen.  :func:`obelics_builder.sources.warc.iter_html_records` lets it propagate, so the per-WARC
    unit fails, is not marked complete, and a rerun retries it.
    """


#: Requests per second per process when neither ``OBELICS_CC_MAX_RPS`` nor :func:`set_max_rps` says otherwise.
DEFAULT_MAX_RPS = 10.0
#: Longest wait honoured from a ``Retry-After`` header (seconds).
MAX_RETRY_AFTER = 120.0


class RateLimiter:
    """A thread-safe token bucket: at most ``rate`` requests per second on average, bursts of up to ``burst``.

    One instance (:func:`rate_limiter`) is shared by every stream of the process.  ``rate <= 0`` means no limit.
    :meth:`pause` makes every caller wait until a moment (a server said ``Retry-After`` or ``SlowDown``: the whole
    process backs off, not only the stream that was told).
    """

    def __init__(self, rate: float, burst: float | None = None, clock=time.monotonic, sleep=time.sleep) -> None:
        import threading

        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep
        self.configure(rate, burst)
        self._paused_until = 0.0
        self.waited = 0.0  # total seconds callers spent waiting (diagnostics)

    def configure(self, rate: float, burst: float | None = None) -> None:
        rate = float(rate)
        self.rate = rate if rate > 0 else 0.0
        self.burst = max(1.0, float(burst) if burst else max(1.0, self.rate))
        self._tokens = self.burst
        self._last = self._clock()

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + max(0.0, seconds))

    def acquire(self) -> float:
        """Block until a request may be sent; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                delay = self._paused_until - now
                if delay <= 0 and self.rate <= 0:
                    break
                if delay <= 0:
                    self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                    self._last = now
                    if self._tokens >= 1.0:
                        self._tokens -= 1.0
                        break
                    delay = (1.0 - self._tokens) / self.rate
            self._sleep(delay)
            waited += delay
        self.waited += waited
        return waited


def _env_rps() -> float:
    raw = os.environ.get("OBELICS_CC_MAX_RPS", "").strip().lower()
    if not raw:
        return DEFAULT_MAX_RPS
    if raw in ("0", "none", "off", "unlimited", "inf"):
        return 0.0
    try:
        return max(0.0, float(raw))
    except ValueError:
        log.warning("OBELICS_CC_MAX_RPS=%r is not a number; using %s", raw, DEFAULT_MAX_RPS)
        return DEFAULT_MAX_RPS


_LIMITER: RateLimiter | None = None


def rate_limiter() -> RateLimiter:
    """The process-wide limiter for requests to Common Crawl mirrors over HTTP(S).

    The cap is per *process*: with N Dask worker processes the whole run sends up to N x the rate.  Set it with
    the ``OBELICS_CC_MAX_RPS`` environment variable (read when the first request is made; ``0`` = no cap) or
    :func:`set_max_rps`.
    """
    global _LIMITER
    if _LIMITER is None:
        _LIMITER = RateLimiter(_env_rps())
    return _LIMITER


def set_max_rps(rps: float, burst: float | None = None) -> None:
    """Change the process-wide request-rate cap (``0`` = no cap)."""
    rate_limiter().configure(rps, burst)


def _sleep_for(attempt: int, backoff: float) -> float:
    """Exponential backoff with jitter: a random delay in [0.5, 1] x backoff x 2**attempt, capped."""
    return min(_MAX_SLEEP, backoff * (2 ** attempt)) * (0.5 + random.random() * 0.5)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), capped; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        secs = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        secs = when.timestamp() - (time.time() if now is None else now)
    if secs != secs:  # NaN
        return None
    return min(MAX_RETRY_AFTER, max(0.0, secs))


def _is_slowdown(resp) -> bool:
    """S3's throttling answer: HTTP 503 (sometimes 429) with ``<Code>SlowDown</Code>`` in an XML body."""
    try:
        head = resp.raw.read(4096, decode_content=True) or b""
    except Exception:
        return False
    return b"SlowDown" in head or b"slow down" in head.lower()


# ---------------------------------------------------------------------------------------------------------------
# Streaming
# ---------------------------------------------------------------------------------------------------------------

class HTTPStream(io.RawIOBase):
    """A read-only, forward-only HTTP(S) body that retries and resumes with ``Range`` requests.

    Every request first takes a token from the process-wide :func:`rate_limiter`.  503, 429, S3 ``SlowDown``, other
    transient 5xx and connection errors are retried with exponential backoff and jitter (``Retry-After`` honoured up
    to :data:`MAX_RETRY_AFTER`; a throttling answer pauses every stream of the process).  A body that breaks (reset,
    timeout, fewer bytes than announced) is resumed from the byte offset reached with ``Range: bytes=N-``; a server
    that ignores the Range and answers 200 has the bytes already delivered skipped, so data is never duplicated, and
    an answer that does not fit (wrong ``Content-Range`` start, a different file size) fails loudly.  When the
    retries are exhausted :class:`SourceUnavailable` is raised.
    """

    def __init__(self, url: str, retries: int = 5, backoff: float = 1.0, timeout: float = 60.0,
                 session=None, start: int = 0, limiter: RateLimiter | None = None) -> None:
        super().__init__()
        import requests

        self.url = url
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.timeout = timeout
        self.session = session or requests.Session()
        self._own_session = session is None
        self.limiter = limiter
        self.pos = int(start)  # bytes of the file delivered so far (a start > 0 opens with a Range request)
        self.size: int | None = None
        self.resumes = 0
        self.requests = 0
        self.throttled = 0  # 429 / SlowDown answers received
        self._resp = None
        self._eof = False
        self._open()

    # -- connection management ------------------------------------------------------------------------------
    def _open(self) -> None:
        import requests

        limiter = self.limiter or rate_limiter()
        last_exc: BaseException | None = None
        for attempt in range(self.retries + 1):
            headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
            if self.pos > 0:
                headers["Range"] = f"bytes={self.pos}-"
            wait: float | None = None
            limiter.acquire()
            try:
                self.requests += 1
                resp = self.session.get(self.url, headers=headers, stream=True, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                last_exc = exc
            else:
                code = resp.status_code
                if code in _RETRY_STATUS:
                    slowdown = code in (429, 503) and _is_slowdown(resp)
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                    resp.close()
                    last_exc = OSError(f"HTTP {code}{' SlowDown' if slowdown else ''} for {self.url}")
                    if code == 429 or slowdown:
                        self.throttled += 1
                        # throttled: back off at least one step harder, and make the whole process wait
                        wait = max(_sleep_for(attempt + 1, self.backoff), retry_after or 0.0)
                        limiter.pause(wait)
                    elif retry_after is not None:
                        wait = max(_sleep_for(attempt, self.backoff), retry_after)
                elif self.pos > 0 and code == 416 and self.size is not None and self.pos >= self.size:
                    resp.close()
                    self._resp, self._eof = None, True
                    return
                elif code not in (200, 206):
                    resp.close()
                    if code == 404:
                        raise FileNotFoundError(f"HTTP 404 for {self.url}")
                    raise OSError(f"HTTP {code} for {self.url}")
                else:
                    try:
                        self._accept(resp)
                        return
                    except _Retry as exc:
                        last_exc = exc
            if attempt < self.retries:
                delay = wait if wait is not None else _sleep_for(attempt, self.backoff)
                log.warning("%s: %s; retrying in %.1fs", self.url, last_exc, delay)
                time.sleep(delay)
        raise SourceUnavailable(f"giving up on {self.url} after {self.retries + 1} attempts: {last_exc}")

    def _accept(self, resp) -> None:
        import requests
        import urllib3

        total = None
        if resp.status_code == 206:
            m = re.match(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != self.pos:
                resp.close()
                raise SourceUnavailable(f"{self.url}: asked for bytes {self.pos}- but got Content-Range "
                                        f"{resp.headers.get('Content-Range')!r}")
            if m.group(3) != "*":
                total = int(m.group(3))
        else:
            length = resp.headers.get("Content-Length", "")
            if length.isdigit():
                total = int(length)
        if total is not None and self.size is not None and total != self.size:
            resp.close()
            raise SourceUnavailable(f"{self.url}: the file changed size while being read ({self.size} -> {total})")
        if self.pos > 0 and resp.status_code == 200:
            # the server ignored Range: skip what was already delivered
            to_skip = self.pos
            try:
                while to_skip > 0:
                    chunk = resp.raw.read(min(to_skip, 1 << 20), decode_content=False)
                    if not chunk:
                        break
                    to_skip -= len(chunk)
            except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
                resp.close()
                raise _Retry(f"connection broke while skipping to byte {self.pos}: {exc}") from exc
            if to_skip > 0:
                resp.close()
                if total is not None and total < self.pos:
                    raise SourceUnavailable(f"{self.url}: body shorter than the offset already read ({self.pos})")
                raise _Retry(f"body ended {to_skip} bytes before the offset already read ({self.pos})")
        if self.size is None:
            self.size = total
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
                self._open()  # retries on its own; raises SourceUnavailable when it gives up
                if self._eof:
                    return 0
            try:
                data = self._resp.raw.read(n, decode_content=False)
                if not data and self.size is not None and self.pos < self.size:
                    raise ConnectionError(f"body ended at {self.pos} of {self.size} bytes")
            except SourceUnavailable:
                raise
            except resume_errors as exc:
                self._drop()
                if attempt >= self.retries:
                    raise SourceUnavailable(f"{self.url}: read failed at byte {self.pos} after {attempt + 1} "
                                            f"attempts: {exc}") from exc
                self.resumes += 1
                delay = _sleep_for(attempt, self.backoff)
                log.warning("%s: read broke at byte %d (%s); resuming in %.1fs", self.url, self.pos, exc, delay)
                time.sleep(delay)
                continue
            if not data:
                self._eof = True
                self._drop()
                return 0
            if self.size is not None and self.pos + len(data) > self.size:
                raise SourceUnavailable(f"{self.url}: more bytes than the announced size {self.size}")
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


class _Retry(OSError):
    """A response that cannot be used but may work when asked again (internal)."""


class _GuardedFile(io.RawIOBase):
    """An fsspec file whose read failures (network, credentials, throttling beyond the driver's own retries) raise
    :class:`SourceUnavailable` instead of looking like damaged data."""

    def __init__(self, fh, uri: str) -> None:
        super().__init__()
        self._fh = fh
        self.uri = uri

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        try:
            return bool(self._fh.seekable())
        except Exception:
            return False

    def readinto(self, b) -> int:
        try:
            data = self._fh.read(len(b))
        except Exception as exc:
            raise SourceUnavailable(f"{self.uri}: read failed at byte {self._safe_tell()}: "
                                    f"{type(exc).__name__}: {exc}") from exc
        b[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def _safe_tell(self):
        try:
            return self._fh.tell()
        except Exception:
            return "?"

    def close(self) -> None:
        try:
            self._fh.close()
        finally:
            super().close()


def open_stream(uri: str, retries: int | None = None, backoff: float | None = None) -> BinaryIO:
    """A binary, streaming file-like object for a local path, an http(s) URL or any fsspec URL (s3://...).

    Remote reads that fail after retries raise :class:`SourceUnavailable` (an ``OSError``); a missing file raises
    ``FileNotFoundError``.
    """
    uri = str(uri)
    if uri.startswith("file://"):
        uri = uri[len("file://"):]
    if not _is_url(uri):
        return open(uri, "rb")
    if uri.startswith(("http://", "https://")):
        return io.BufferedReader(HTTPStream(uri, retries=RETRIES if retries is None else retries,
                                            backoff=BACKOFF if backoff is None else backoff), buffer_size=1 << 16)
    try:
        import fsspec

        fh = fsspec.open(uri, "rb").open()
    except ImportError as exc:
        scheme = uri.split("://", 1)[0]
        hint = " (pip install 'obelics-builder[s3]' for s3fs)" if scheme in ("s3", "s3a") else ""
        raise ImportError(f"cannot open {uri}: no filesystem driver for {scheme}://{hint}: {exc}") from exc
    return io.BufferedReader(_GuardedFile(fh, uri), buffer_size=1 << 16)
