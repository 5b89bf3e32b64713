"""Client of Spawning's Do-Not-Train API (reference §5.7), hardened.

Request: ``POST <endpoint>`` with the URLs joined by ``\\n`` as the body and the header
``Authorization: API <key>``; response ``{"urls": [{"url": ..., "optOut": bool}, ...]}``.

* Endpoint: the ``url`` argument, else env ``SPAWNING_API_URL``, else :data:`DEFAULT_URL`.
* Key: the ``key`` argument, else env ``SPAWNING_OPTS_KEY``.  It is only ever put in the request header: never
  logged, never in an exception message, never in ``repr``.
* Batches of at most ``batch_size`` (<= 10,000) URLs.  A batch of one URL is padded with an empty line (the API
  wants more than one line); results are always matched **by URL**, never by position, so padding, reordering,
  extra or missing entries cannot shift flags onto the wrong URL (the reference's latent bug).
* URLs missing from a response (partial answers) are asked again in a later request, up to ``retries`` times.
* HTTP 429/5xx, timeouts, connection errors and malformed JSON are retried with exponential backoff
  (``backoff_s * 2**attempt``, capped at ``max_backoff_s``; a ``Retry-After`` header is honoured up to that cap);
  other 4xx (e.g. 401 bad key) are not retried.
* A requests/second cap (``requests_per_second``) spaces request starts in this process.
* URLs that still have no answer are returned as ``unchecked`` with a reason; the caller decides (never silent).
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

log = logging.getLogger("obelics_builder")

DEFAULT_URL = "https://opts-api.spawningaiapi.com/api/v2/query/urls"
MAX_BATCH = 10_000


@dataclass
class SpawningResult:
    opted_out: set[str] = field(default_factory=set)
    checked: set[str] = field(default_factory=set)
    unchecked: dict[str, str] = field(default_factory=dict)  # url -> reason
    requests: int = 0
    retries: int = 0

    def merge(self, other: "SpawningResult") -> "SpawningResult":
        self.opted_out |= other.opted_out
        self.checked |= other.checked
        for u, r in other.unchecked.items():
            if u not in self.checked:
                self.unchecked[u] = r
        self.requests += other.requests
        self.retries += other.retries
        return self


class RateLimiter:
    """At most ``rate`` call starts per second (evenly spaced); thread-safe."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 1.0 / rate if rate and rate > 0 else 0.0
        self.clock, self.sleep = clock, sleep
        self.next = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = self.clock()
            start = max(now, self.next)
            self.next = start + self.interval
        if start > now:
            self.sleep(start - now)


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


class _Fatal(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def api_key_from_env() -> str | None:
    key = os.environ.get("SPAWNING_OPTS_KEY", "").strip()
    return key or None


class SpawningClient:
    def __init__(self, url: str | None = None, key: str | None = None, batch_size: int = MAX_BATCH,
                 requests_per_second: float = 5.0, retries: int = 5, backoff_s: float = 1.0,
                 max_backoff_s: float = 60.0, timeout_s: float = 60.0, session=None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.url = url or os.environ.get("SPAWNING_API_URL") or DEFAULT_URL
        self._key = key if key is not None else api_key_from_env()
        if not 1 <= int(batch_size) <= MAX_BATCH:
            raise ValueError(f"batch_size must be in 1..{MAX_BATCH}")
        self.batch_size = int(batch_size)
        self.retries = int(retries)
        self.backoff_s, self.max_backoff_s = float(backoff_s), float(max_backoff_s)
        self.timeout_s = float(timeout_s)
        self.sleep = sleep
        self.limiter = RateLimiter(requests_per_second, sleep=sleep)
        self._session = session

    @property
    def session(self):
        """The HTTP session, made on the first request (``requests``' import, ~0.1 CPU-s, is not paid by a run
        without a key, which never asks)."""
        if self._session is None:
            import requests

            self._session = requests.Session()
        return self._session

    def __repr__(self) -> str:  # never show the key
        return f"SpawningClient(url={self.url!r}, key={'set' if self._key else 'missing'}, batch_size={self.batch_size})"

    @property
    def has_key(self) -> bool:
        return bool(self._key)

    # ---- one HTTP request ------------------------------------------------------------------------------------
    def _post(self, urls: list[str]) -> dict[str, bool]:
        import requests

        lines = list(urls)
        if len(lines) == 1:
            lines.append("")  # the API needs more than one line; results are matched by URL
        self.limiter.wait()
        try:
            resp = self.session.post(self.url, data="\n".join(lines).encode("utf-8"),
                                     headers={"Authorization": f"API {self._key}",
                                              "Content-Type": "text/plain; charset=utf-8"},
                                     timeout=self.timeout_s)
        except requests.Timeout:
            raise _Retryable("timeout") from None
        except requests.RequestException as e:
            raise _Retryable(f"connection:{type(e).__name__}") from None
        status = resp.status_code
        if status == 429 or status >= 500:
            ra = resp.headers.get("Retry-After")
            try:
                retry_after = float(ra) if ra is not None else None
            except ValueError:
                retry_after = None
            raise _Retryable(f"http_{status}", retry_after)
        if status >= 400:
            raise _Fatal(f"http_{status}")
        try:
            data = resp.json() if hasattr(resp, "json") else json.loads(resp.text)
        except ValueError:
            raise _Retryable("malformed_json") from None
        if not isinstance(data, dict) or not isinstance(data.get("urls"), list):
            raise _Retryable("malformed_json")
        found: dict[str, bool] = {}
        for entry in data["urls"]:
            if isinstance(entry, dict) and isinstance(entry.get("url"), str) and isinstance(entry.get("optOut"), bool):
                found[entry["url"]] = entry["optOut"]
        return found

    # ---- one batch with retries --------------------------------------------------------------------------------
    def _query_batch(self, batch: list[str]) -> SpawningResult:
        res = SpawningResult()
        pending = list(dict.fromkeys(batch))
        last_reason = "no_answer"
        attempt = 0
        while pending:
            try:
                res.requests += 1
                found = self._post(pending)
            except _Fatal as e:
                for u in pending:
                    res.unchecked[u] = e.reason
                log.warning("spawning: request refused (%s); %d URLs unchecked", e.reason, len(pending))
                return res
            except _Retryable as e:
                last_reason = e.reason
                found = None
                delay = e.retry_after
            if found is not None:
                answered = [u for u in pending if u in found]
                for u in answered:
                    res.checked.add(u)
                    if found[u]:
                        res.opted_out.add(u)
                before = len(pending)
                pending = [u for u in pending if u not in found]
                if not pending:
                    break
                last_reason = "missing_from_response"
                delay = None
                if len(pending) < before:  # progress: a partial answer is not a failure, ask for the rest
                    continue
            if attempt >= self.retries:
                for u in pending:
                    res.unchecked[u] = last_reason
                log.warning("spawning: %d URLs unchecked after %d retries (%s)", len(pending), attempt, last_reason)
                return res
            wait = min(self.max_backoff_s, self.backoff_s * (2 ** attempt))
            if delay is not None:
                wait = min(self.max_backoff_s, max(wait, delay))
            attempt += 1
            res.retries += 1
            self.sleep(wait)
        return res

    def query(self, urls: Iterable[str]) -> SpawningResult:
        """Opt-out flags of ``urls`` (duplicates and empty strings ignored; URLs with a newline are unchecked)."""
        res = SpawningResult()
        clean: list[str] = []
        for u in dict.fromkeys(urls):
            if not u:
                continue
            if "\n" in u or "\r" in u:
                res.unchecked[u] = "url_has_newline"
            else:
                clean.append(u)
        if not self._key:
            for u in clean:
                res.unchecked[u] = "no_api_key"
            return res
        for i in range(0, len(clean), self.batch_size):
            res.merge(self._query_batch(clean[i:i + self.batch_size]))
        return res


def client_from_config(cfg: dict | None) -> SpawningClient:
    """Build a client from the ``optout.spawning`` config section (``url``, ``batch_size``, ``requests_per_second``,
    ``retries``, ``backoff_s``, ``max_backoff_s``, ``timeout_s``); the key always comes from the environment."""
    c = dict(cfg or {})
    return SpawningClient(url=c.get("url"), batch_size=int(c.get("batch_size", MAX_BATCH)),
                          requests_per_second=float(c.get("requests_per_second", 5.0)),
                          retries=int(c.get("retries", 5)), backoff_s=float(c.get("backoff_s", 1.0)),
                          max_backoff_s=float(c.get("max_backoff_s", 60.0)), timeout_s=float(c.get("timeout_s", 60.0)))
