"""Hosts: what the image-URL plan partitions by, and the per-host politeness a fetch task keeps.

* The host key (:func:`host_of`) is the URL's lowercased hostname (no port).  The issue asks for the registrable
  domain; no public-suffix list is among the package's dependencies (and none is in the code), so the key is the
  host: ``a.example.com`` and ``b.example.com`` are two hosts, each with its own limits.
* :class:`HostPolicy`: the settings (keys of the recipe's ``images:`` section, defaults here, in one place).
* :class:`HostGate` (one per fetch task, one event loop): per host, at most ``per_host`` requests at once and
  ``per_host_delay_s`` between the starts of two requests; a host whose requests fail ``host_failures_max`` times
  in a row (timeouts, connection errors, HTTP 5xx; each retry is a request) is backed off: its remaining URLs are not
  requested and get the reason :data:`BACKED_OFF`.  The image-URL plan gives each host to one task, so these hold
  run-wide; a host split over ``shares`` tasks (more than ``host_max_urls`` URLs) gets ``per_host // shares``
  (at least 1) and ``per_host_delay_s * shares`` in each.  A redirect to another host is limited by this task's
  gate only (the other host's own task does not see it).
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

#: the reason (and error class) of a URL not requested because its host was backed off
BACKED_OFF = "host_backed_off"


@dataclass(frozen=True)
class HostPolicy:
    #: a host with more unique URLs than this is split over several fetch tasks (by URL hash within the host)
    host_max_urls: int = 50_000
    #: failed requests in a row (timeout, connection, 5xx) after which a host is backed off; 0: never
    host_failures_max: int = 10
    #: seconds between the starts of two requests to one host (0: none)
    per_host_delay_s: float = 0.0
    #: finished rows of a fetch task are saved every this many URLs (a resumed task does not refetch them)
    checkpoint_urls: int = 1000

    @classmethod
    def from_config(cls, cfg: dict | None) -> "HostPolicy":
        cfg = cfg or {}
        d = asdict(cls())
        return cls(**{k: type(v)(cfg[k]) if cfg.get(k) is not None else v for k, v in d.items()})


#: fetch settings that schedule the work without changing any row (not in the image table's fingerprint)
SCHEDULING_KEYS = ("host_max_urls", "per_host_delay_s", "checkpoint_urls")


def host_of(url: str) -> str:
    """The host key of a URL: its lowercased hostname ('' when it has none)."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except (ValueError, TypeError, AttributeError):
        return ""


def host_failure(error: str | None) -> bool:
    """Whether a URL's final error counts against its host (timeouts, connection errors, HTTP 5xx)."""
    if error in ("timeout", "connection", "fetch_error"):
        return True
    if error and error.startswith("http_"):
        try:
            return int(error[5:]) >= 500
        except ValueError:
            return False
    return False


class _Host:
    __slots__ = ("sem", "next_start", "failures", "backed_off", "lock")

    def __init__(self, limit: int) -> None:
        self.sem = asyncio.Semaphore(limit)
        self.lock = asyncio.Lock()
        self.next_start = 0.0
        self.failures = 0
        self.backed_off = False


class HostGate:
    """Per-host limit, delay and back-off inside one fetch task (see module docstring)."""

    def __init__(self, per_host: int, delay_s: float = 0.0, failures_max: int = 0, classify=None) -> None:
        self.per_host = max(1, int(per_host))
        self.delay_s = max(0.0, float(delay_s))
        self.failures_max = max(0, int(failures_max))
        self.classify = classify  # exception -> (error class, retryable), e.g. .fetch.classify_exception
        self._hosts: dict[str, _Host] = {}
        self.active: dict[str, int] = {}
        self.peak: dict[str, int] = {}  # most requests at once per host (tests, diagnostics)

    def _host(self, host: str) -> _Host:
        h = self._hosts.get(host)
        if h is None:
            h = self._hosts[host] = _Host(self.per_host)
        return h

    def backed_off(self, host: str) -> bool:
        h = self._hosts.get(host)
        return h is not None and h.backed_off

    @property
    def backed_off_hosts(self) -> list[str]:
        return sorted(k for k, h in self._hosts.items() if h.backed_off)

    def outcome(self, host: str, error: str | None) -> None:
        """A URL of ``host`` finished on the network with ``error`` (None: answered)."""
        h = self._host(host)
        if host_failure(error):
            h.failures += 1
            if self.failures_max and h.failures >= self.failures_max:
                h.backed_off = True
        else:
            h.failures = 0

    def request(self, host: str, check: bool = True) -> "_Slot":
        """``async with gate.request(host):`` around one request; with ``check``, raises :class:`BackedOff` (after
        waiting for its turn) when the host has been backed off meanwhile."""
        return _Slot(self, host, check)


class BackedOff(Exception):
    """A request not sent: its host was backed off."""


class _Slot:
    def __init__(self, gate: HostGate, host: str, check: bool) -> None:
        self.gate, self.host, self.check = gate, host, check
        self.h = gate._host(host)
        self.status: int | None = None  # the answer's HTTP status (set by the caller)

    async def __aenter__(self) -> "_Slot":
        await self.h.sem.acquire()
        if self.check and self.h.backed_off:
            self.h.sem.release()
            raise BackedOff(f"{self.host}: {self.gate.failures_max} failures in a row, host backed off")
        if self.gate.delay_s:
            async with self.h.lock:
                wait = self.h.next_start - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                self.h.next_start = time.monotonic() + self.gate.delay_s
        n = self.gate.active.get(self.host, 0) + 1
        self.gate.active[self.host] = n
        self.gate.peak[self.host] = max(self.gate.peak.get(self.host, 0), n)
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        # the request's outcome, recorded before the next request of the host may start
        if self.status is not None:
            error = None if self.status < 500 else f"http_{self.status}"
        elif exc_type is not None:
            if issubclass(exc_type, (TimeoutError, asyncio.TimeoutError, asyncio.CancelledError)):
                error = "timeout"
            else:
                error = self.gate.classify(exc)[0] if self.gate.classify is not None else "connection"
        else:
            error = None
        self.gate.outcome(self.host, error)
        self.gate.active[self.host] -= 1
        self.h.sem.release()
