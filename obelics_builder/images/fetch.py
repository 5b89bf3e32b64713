"""Image fetching: archive first, then (optionally) the live web through a safe, bounded asyncio fetcher.

* Archive first: an object with ``lookup(url) -> hit | None`` (``hit.status``, ``hit.headers`` with lowercase
  names, ``hit.body``) answers before any network call; archived redirects are followed inside the archive.
* Network (``network: true``): aiohttp with a :class:`~obelics_builder.images.safety.SafeResolver`, redirects
  followed by hand (each ``Location`` re-checked, at most ``redirects`` hops), bodies streamed and cut at
  ``max_bytes``, a total and an idle (read) timeout per request, retries with exponential backoff and jitter only
  for 429 / 5xx / dropped connections, honouring ``Retry-After`` up to ``retry_after_max_s``.
* Every URL gets a :class:`FetchResult`; failures carry a short error class (``http_404``, ``timeout``, ``dns``,
  ``connection``, ``ssl``, ``too_large``, ``unsafe_address``, ``too_many_redirects``, ``not_in_archive``,
  ``invalid_url``, ``fetch_error``), never an exception.

Config keys (see :data:`DEFAULTS`); ``allow_private_addresses`` turns the address check off,
``allow_addresses`` (list of IPs/CIDRs) opens only those addresses — meant for tests against a local server.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import errno
import random
import socket
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from .consent import REASON_ROBOTS_TXT, header_consent, ua_token_from
from .hosts import BACKED_OFF, BackedOff, HostGate, HostPolicy, host_of
from .robots import MAX_ROBOTS_BYTES, RobotsCache, RobotsRules, RobotsStore, robots_url, rules_from_response
from .safety import SafeResolver, UnsafeAddress, UnsafeURL, check_url, parse_allow_list

DEFAULTS: dict[str, Any] = {
    "concurrency": 64,
    "per_host": 8,
    "connect_timeout_s": 10.0,
    "timeout_s": 20.0,  # total per request (one hop)
    "deadline_s": 90.0,  # whole URL: every hop, retry and backoff wait together
    "read_timeout_s": None,  # idle time between reads; None = timeout_s
    "max_bytes": 20_000_000,
    "redirects": 5,
    "retries": 2,
    "backoff_base_s": 0.5,
    "backoff_max_s": 8.0,
    "retry_after_max_s": 30.0,
    "allow_private_addresses": False,
    "allow_addresses": [],
    "network": True,
    "archive_first": True,
    "dns_ttl_s": 300.0,
    "dns_negative_ttl_s": 30.0,
    "user_agent": "obelics-builder/0.1 (+https://github.com/obelics-builder/obelics-builder)",
    "respect_robots": True,  # robots.txt once per host (see .robots); archive hits use the archived robots.txt
    "consent_headers": True,  # X-Robots-Tag noai/noimageai/noml and tdm-reservation: 1 drop the image
    "robots_timeout_s": 10.0,
    **asdict(HostPolicy()),  # host_max_urls, host_failures_max, per_host_delay_s, checkpoint_urls (see .hosts)
}

#: Error classes worth another try later (``obelics-build images OUT --retry-failed``): transient network trouble.
RETRYABLE_ERRORS = frozenset({"timeout", "connection", "dns", "fetch_error", "not_in_archive", "http_429",
                              BACKED_OFF})


def is_retryable(error: str | None) -> bool:
    """Whether a ledger error class may succeed on a later attempt (network errors, timeouts, 429, 5xx)."""
    if not error:
        return False
    if error in RETRYABLE_ERRORS:
        return True
    if error.startswith("http_"):
        try:
            return int(error[5:]) >= 500
        except ValueError:
            return False
    return False

#: aiohttp >= 3.11 tells DNS failures apart; older versions raise a plain ClientConnectorError
_DNS_ERROR = getattr(aiohttp, "ClientConnectorDNSError", None)

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


def fetch_config(cfg: dict | None) -> dict:
    """Defaults overlaid with ``cfg`` (unknown keys are kept, e.g. a recipe's whole ``images:`` section)."""
    out = dict(DEFAULTS)
    out.update({k: v for k, v in (cfg or {}).items() if v is not None})
    return out


@dataclass
class FetchResult:
    url: str
    status: int | None = None
    ok: bool = False
    error: str | None = None
    body: bytes | None = field(default=None, repr=False)
    content_type: str | None = None
    final_url: str | None = None
    source: str | None = None  # "archive" | "network" | None (never attempted)
    bytes: int = 0
    seconds: float = 0.0
    attempts: int = 0
    message: str | None = None  # a human detail for the error (not part of the table)
    requested: bool = False  # an HTTP request was sent for it (not part of the table)


class _Retry(Exception):
    """Internal: the attempt failed in a retryable way."""

    def __init__(self, result: FetchResult, retry_after: float | None = None) -> None:
        self.result = result
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent/unparsable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if dt is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, dt.timestamp() - now)


def classify_exception(exc: BaseException) -> tuple[str, bool]:
    """``(error_class, retryable)`` for an exception raised while fetching."""
    if isinstance(exc, UnsafeURL):
        return exc.kind, False
    if isinstance(exc, (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError)):
        return "ssl", False
    if isinstance(exc, aiohttp.ClientConnectorError):
        cause = exc.os_error if exc.os_error is not None else exc.__cause__
        if isinstance(cause, UnsafeAddress):
            return "unsafe_address", False
        if (_DNS_ERROR is not None and isinstance(exc, _DNS_ERROR)) or isinstance(cause, socket.gaierror):
            return "dns", False
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout", False
    if isinstance(exc, (aiohttp.InvalidURL, ValueError)):
        return "invalid_url", False
    if isinstance(exc, aiohttp.ClientConnectorError):
        # connection refused / unreachable: not a transient reset
        return "connection", exc.os_error is not None and getattr(exc.os_error, "errno", None) == errno.ECONNRESET
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientOSError)):
        return "connection", True
    if isinstance(exc, ConnectionResetError):
        return "connection", True
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        return "connection", False
    return "fetch_error", False


class Fetcher:
    """``async with Fetcher(cfg, archive) as f: result = await f.fetch(url)``.

    ``getaddrinfo`` (tests) replaces the event loop's name resolution inside the safe resolver; ``robots_store``
    (a folder, :class:`~.robots.RobotsStore`) keeps robots.txt answers across tasks and runs.  Per-host limits and
    back-off: :class:`~.hosts.HostGate` (``per_host``, ``per_host_delay_s``, ``host_failures_max``).
    """

    def __init__(self, cfg: dict | None = None, archive: Any = None, getaddrinfo=None,
                 robots_store: str | None = None) -> None:
        self.cfg = fetch_config(cfg)
        self.archive = archive if self.cfg.get("archive_first", True) else None
        self.allow_private = bool(self.cfg["allow_private_addresses"])
        self.allow_nets = parse_allow_list(self.cfg.get("allow_addresses"))
        self.max_bytes = int(self.cfg["max_bytes"])
        self.max_redirects = int(self.cfg["redirects"])
        self.retries = max(0, int(self.cfg["retries"]))
        self._getaddrinfo = getaddrinfo
        self.session: aiohttp.ClientSession | None = None
        self.resolver: SafeResolver | None = None
        self.network_requests = 0  # HTTP requests actually sent (tests: archive-first makes none)
        self.ua_token = ua_token_from(self.cfg.get("user_agent"))
        self.respect_robots = bool(self.cfg.get("respect_robots", True))
        self.consent_headers = bool(self.cfg.get("consent_headers", True))
        store = (RobotsStore(robots_store, wait_s=float(self.cfg.get("robots_timeout_s") or 10.0) + 5.0)
                 if robots_store else None)
        self.robots = RobotsCache(self._fetch_robots, self.ua_token, store=store)
        policy = HostPolicy.from_config(self.cfg)
        self.gate = HostGate(int(self.cfg["per_host"]), policy.per_host_delay_s, policy.host_failures_max,
                             classify=classify_exception)
        self._archive_robots: dict[str, RobotsRules | None] = {}

    async def __aenter__(self) -> "Fetcher":
        if self.cfg["network"]:
            c = self.cfg
            self.resolver = SafeResolver(
                allow_private=self.allow_private,
                allow_addresses=self.allow_nets,
                ttl_s=float(c["dns_ttl_s"]),
                negative_ttl_s=float(c["dns_negative_ttl_s"]),
                getaddrinfo=self._getaddrinfo,
                timeout_s=float(c["connect_timeout_s"]),
            )
            connector = aiohttp.TCPConnector(
                limit=int(c["concurrency"]),
                limit_per_host=int(c["per_host"]),
                resolver=self.resolver,
                use_dns_cache=False,  # the SafeResolver caches (checked) answers itself
                enable_cleanup_closed=False,
            )
            read_timeout = c.get("read_timeout_s") or c["timeout_s"]
            timeout = aiohttp.ClientTimeout(
                total=float(c["timeout_s"]),
                connect=float(c["connect_timeout_s"]),
                sock_connect=float(c["connect_timeout_s"]),
                sock_read=float(read_timeout),
            )
            self.session = aiohttp.ClientSession(
                connector=connector,
                timeout=timeout,
                headers={"User-Agent": str(c["user_agent"]), "Accept": "image/*,*/*;q=0.8"},
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,  # never route through environment proxies
            )
        return self

    async def __aexit__(self, *exc) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    # ---- one URL ---------------------------------------------------------------------------------------------
    async def fetch(self, url: str) -> FetchResult:
        t0 = time.perf_counter()
        try:
            result = await self._fetch(url)
        except Exception as exc:  # a last guard: a bad URL never escapes as an exception
            err, _ = classify_exception(exc)
            result = FetchResult(url=url, error=err, message=f"{type(exc).__name__}: {exc}"[:300])
        result.seconds = round(time.perf_counter() - t0, 4)
        if result.body is not None:
            result.bytes = len(result.body)
        return result

    async def _fetch(self, url: str) -> FetchResult:
        try:
            if not isinstance(url, str) or urlsplit(url).scheme.lower() not in ("http", "https"):
                raise UnsafeURL(f"not an http(s) URL: {str(url)[:100]!r}", "invalid_url")
        except ValueError as exc:
            return FetchResult(url=str(url), error="invalid_url", message=str(exc))
        except UnsafeURL as exc:
            return FetchResult(url=str(url), error=exc.kind, message=exc.reason)
        start, hops = url, 0
        if self.archive is not None:
            res, start, hops = self._from_archive(url)
            if res is not None:
                return res
        if self.session is None:
            return FetchResult(url=url, error="not_in_archive", final_url=start if start != url else None)
        host = host_of(start)
        if self.gate.backed_off(host):
            return FetchResult(url=url, error=BACKED_OFF, final_url=start if start != url else None,
                               message=f"{host}: {self.gate.failures_max} failures in a row, host backed off")
        return await self._network_deadline(url, start, hops)

    async def _network_deadline(self, url: str, start: str, hops: int) -> FetchResult:
        deadline = self.cfg.get("deadline_s")
        if not deadline:
            return await self._from_network(url, start, hops)
        try:
            return await asyncio.wait_for(self._from_network(url, start, hops), float(deadline))
        except asyncio.TimeoutError:
            return FetchResult(url=url, error="timeout", source="network", final_url=start, requested=True,
                               message=f"deadline of {deadline}s for the URL exceeded")

    def _from_archive(self, url: str) -> tuple[FetchResult | None, str, int]:
        """(result, url_to_continue_on_the_network, hops_used)."""
        current, hops = url, 0
        while True:
            try:
                hit = self.archive.lookup(current)
            except Exception:  # a broken archive record is a miss, not a crash
                hit = None
            if hit is None:
                return None, current, hops
            status = int(hit.status)
            headers = {k.lower(): v for k, v in (hit.headers or {}).items()}
            if status in REDIRECT_CODES and headers.get("location"):
                if hops >= self.max_redirects:
                    return FetchResult(url=url, status=status, error="too_many_redirects", source="archive",
                                       final_url=current, attempts=0), current, hops
                try:
                    current = str(URL(current).join(URL(headers["location"])))
                except (ValueError, TypeError):
                    return FetchResult(url=url, status=status, error="invalid_url", source="archive",
                                       final_url=current), current, hops
                hops += 1
                continue
            body = hit.body or b""
            res = FetchResult(url=url, status=status, source="archive", final_url=current,
                              content_type=headers.get("content-type"))
            consent = None
            if 200 <= status < 300:
                if self.respect_robots and not (self._archive_robots_allowed(url)
                                                and self._archive_robots_allowed(current)):
                    consent = REASON_ROBOTS_TXT
                elif self.consent_headers:
                    consent = header_consent(headers, self.ua_token)
            if not 200 <= status < 300:
                res.error = f"http_{status}"
            elif consent:
                res.error = consent
            elif len(body) > self.max_bytes:
                res.error = "too_large"
            else:
                res.ok, res.body = True, bytes(body)
            return res, current, hops

    def _archive_robots_allowed(self, url: str) -> bool:
        """robots.txt of an archived URL, looked up in the archive only (never the network); absent = allowed."""
        key = robots_url(url)
        if key is None:
            return True
        if key not in self._archive_robots:
            try:
                hit = self.archive.lookup(key)
            except Exception:
                hit = None
            self._archive_robots[key] = (None if hit is None else
                                         rules_from_response(int(hit.status), hit.body, self.ua_token))
        rules = self._archive_robots[key]
        return True if rules is None else rules.allowed(url)

    async def _fetch_robots(self, url: str) -> tuple[int | None, bytes | None, str | None]:
        """One robots.txt request through the same safe path (SSRF checks, redirects, size cut), no retries."""
        try:
            res = await asyncio.wait_for(self._attempt(url, url, 0, check_consent=False,
                                                       limit=MAX_ROBOTS_BYTES, truncate=True),
                                         float(self.cfg.get("robots_timeout_s") or self.cfg["timeout_s"]))
        except _Retry as r:
            return r.result.status, None, r.result.error or "fetch_error"
        except asyncio.TimeoutError:
            return None, None, "timeout"
        if res.ok:
            return res.status, res.body, None
        if res.status is not None and 400 <= res.status < 500:
            return res.status, None, None
        # unsafe address, DNS, connection, too many redirects...: unreachable -> disallow (see .robots)
        return res.status, None, res.error or "fetch_error"

    async def _from_network(self, url: str, start: str, hops: int) -> FetchResult:
        attempts = 0
        result: FetchResult | None = None
        for attempt in range(self.retries + 1):
            attempts += 1
            try:
                result = await self._attempt(url, start, hops)
                break
            except _Retry as r:
                result = r.result
                if attempt >= self.retries:
                    break
                await asyncio.sleep(self._backoff(attempt, r.retry_after))
        assert result is not None
        result.attempts = attempts
        return result

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        c = self.cfg
        delay = min(float(c["backoff_max_s"]), float(c["backoff_base_s"]) * (2**attempt))
        delay *= random.uniform(0.5, 1.5)
        if retry_after is not None:
            delay = max(min(retry_after, float(c["retry_after_max_s"])), 0.0)
        return delay

    async def _attempt(self, url: str, start: str, hops: int, check_consent: bool = True,
                       limit: int | None = None, truncate: bool = False) -> FetchResult:
        current = start
        last_status: int | None = None
        max_bytes = self.max_bytes if limit is None else int(limit)
        while True:
            res = FetchResult(url=url, source="network", final_url=current, status=last_status)
            try:
                check_url(current, self.allow_private, self.allow_nets)
                if check_consent and self.respect_robots:
                    rules = await self.robots.rules_for(current)
                    if rules is not None and not rules.allowed(current):
                        res.error = rules.error or REASON_ROBOTS_TXT  # unreachable robots.txt: its own error
                        if rules.error and is_retryable(rules.error):
                            res.message = f"robots.txt unreachable ({rules.error}): host disallowed this run"
                        return res
                self.network_requests += 1
                res.requested = True
                async with self.gate.request(host_of(current), check=check_consent) as slot, \
                        self.session.get(current, allow_redirects=False) as resp:
                    res.status = last_status = slot.status = resp.status
                    res.content_type = resp.headers.get("Content-Type")
                    if resp.status in REDIRECT_CODES:
                        location = resp.headers.get("Location")
                        if not location:
                            res.error = f"http_{resp.status}"
                            res.message = "redirect without Location"
                            return res
                        if hops >= self.max_redirects:
                            res.error = "too_many_redirects"
                            return res
                        current = str(resp.url.join(URL(location)))
                        hops += 1
                        continue
                    if not 200 <= resp.status < 300:
                        res.error = f"http_{resp.status}"
                        if resp.status == 429 or resp.status >= 500:
                            raise _Retry(res, parse_retry_after(resp.headers.get("Retry-After")))
                        return res
                    if check_consent and self.consent_headers:
                        consent = header_consent(resp.headers.items(), self.ua_token)
                        if consent:
                            res.error = consent  # the body is not read
                            return res
                    if (not truncate and resp.content_length is not None and resp.content_length > max_bytes):
                        res.error = "too_large"
                        res.message = f"Content-Length {resp.content_length} > {max_bytes}"
                        return res
                    buf = bytearray()
                    async for chunk in resp.content.iter_chunked(1 << 16):
                        buf += chunk
                        if len(buf) > max_bytes:
                            if truncate:
                                del buf[max_bytes:]
                                break
                            res.error = "too_large"
                            res.message = f"body exceeds {max_bytes} bytes"
                            res.bytes = len(buf)
                            return res
                    res.ok, res.body = True, bytes(buf)
                    return res
            except _Retry:
                raise
            except BackedOff as exc:  # the host failed too often while this URL waited for its turn
                self.network_requests -= 1
                res.requested, res.source, res.error, res.message = False, None, BACKED_OFF, str(exc)
                return res
            except Exception as exc:
                err, retryable = classify_exception(exc)
                res.error = err
                res.message = (getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}")[:300]
                if retryable:
                    raise _Retry(res) from None
                return res


# ---------------------------------------------------------------------------------------------------------------
# Many URLs
# ---------------------------------------------------------------------------------------------------------------

async def _run_pool(items: list, worker_fn, concurrency: int) -> None:
    queue: asyncio.Queue = asyncio.Queue()
    for it in items:
        queue.put_nowait(it)

    async def worker() -> None:
        while True:
            try:
                it = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await worker_fn(it)

    n = max(1, min(int(concurrency), len(items)))
    await asyncio.gather(*(worker() for _ in range(n)))


async def fetch_many_async(
    urls: Iterable[str],
    archive: Any = None,
    cfg: dict | None = None,
    *,
    getaddrinfo=None,
    on_result: Callable[[FetchResult], Any] | None = None,
    robots_store: str | None = None,
    gate: list | None = None,
) -> list[FetchResult]:
    """Fetch every unique URL once; results aligned with ``urls`` (a repeated URL shares one result).

    ``on_result`` (optional, may be a coroutine function) sees each result as it completes; its return value
    replaces the result in the output list (e.g. to keep a decoded summary and drop the body early).
    ``gate`` (a list) receives the fetcher's :class:`~.hosts.HostGate` and robots cache (what a task reports).
    """
    urls = list(urls)
    unique = list(dict.fromkeys(urls))
    out: dict[str, Any] = {}
    async with Fetcher(cfg, archive, getaddrinfo=getaddrinfo, robots_store=robots_store) as fetcher:
        if gate is not None:
            gate += [fetcher.gate, fetcher.robots]

        async def one(u: str) -> None:
            r = await fetcher.fetch(u)
            if on_result is not None:
                v = on_result(r)
                if asyncio.iscoroutine(v):
                    v = await v
                out[u] = v
            else:
                out[u] = r

        await _run_pool(unique, one, int(fetcher.cfg["concurrency"]))
    return [out[u] for u in urls]


def run_sync(coro):
    """Run a coroutine to completion from sync code, also when called inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        return ex.submit(asyncio.run, coro).result()


def fetch_many(urls: list[str], archive: Any = None, cfg: dict | None = None, **kwargs) -> list[FetchResult]:
    """Synchronous :func:`fetch_many_async`."""
    return run_sync(fetch_many_async(urls, archive, cfg, **kwargs))


def summarize(results: Iterable[FetchResult], top_hosts: int = 20) -> dict:
    """Counts by source and error class, plus the hosts with most failures (to diagnose DNS/host problems)."""
    by_error: Counter = Counter()
    by_source: Counter = Counter()
    host_errors: dict[str, Counter] = defaultdict(Counter)
    n = ok = 0
    for r in results:
        n += 1
        ok += bool(r.ok)
        by_source[r.source or "none"] += 1
        if not r.ok:
            by_error[r.error or "unknown"] += 1
            try:
                host = urlsplit(r.url).hostname or ""
            except ValueError:
                host = ""
            host_errors[host][r.error or "unknown"] += 1
    worst = sorted(host_errors.items(), key=lambda kv: -sum(kv[1].values()))[:top_hosts]
    return {
        "urls": n,
        "ok": ok,
        "success_rate": round(ok / n, 4) if n else None,
        "by_source": dict(by_source),
        "errors": dict(by_error.most_common()),
        "hosts_with_most_errors": [{"host": h, "errors": dict(c)} for h, c in worst],
    }
