"""robots.txt: parse (RFC 9309 rules) and cache one verdict source per host.

* :func:`parse_robots` -> :class:`RobotsRules`: the groups whose ``User-agent`` names our product token are used;
  if none does, the ``*`` groups; if none either, everything is allowed.  Matching groups are merged.
* :meth:`RobotsRules.allowed` applies the longest-match rule over ``Allow``/``Disallow`` patterns (``*`` wildcards,
  ``$`` end anchor; on a tie ``Allow`` wins; an empty ``Disallow`` allows everything); ``/robots.txt`` is always
  allowed.
* :class:`RobotsStore` keeps the answers in OUT (one request per host per run, resumes included).
* :class:`RobotsCache` fetches ``robots.txt`` once per ``scheme://host:port`` (concurrent callers wait for the same
  fetch) through a caller-given coroutine ``fetch(robots_url) -> (status | None, body | None)``:

  - 2xx: the rules of the body (at most :data:`MAX_ROBOTS_BYTES` are parsed);
  - 4xx (404, 403, 401, 410...): no robots.txt -> allow all;
  - 5xx, a timeout, a network error or no answer -> **disallow the whole host for this run** (RFC 9309 §2.3.1.4:
    an unreachable robots.txt means "complete disallow"); the next run (or ``--retry-failed``) tries again.  The
    host's images then carry the robots.txt fetch's own error class (``timeout``, ``connection``, ``http_503``...)
    rather than ``consent:robots-txt``: nobody said no, we could not ask, so the ledger marks them retryable.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable
from urllib.parse import unquote, urlsplit

from .consent import UA_TOKEN

MAX_ROBOTS_BYTES = 500_000


def _norm_path(path: str) -> str:
    # compare on decoded paths, keeping %2F (an encoded slash) distinct from "/"
    return unquote(path.replace("%2F", "%252F").replace("%2f", "%252F"))


@dataclass
class _Rule:
    allow: bool
    pattern: str
    regex: re.Pattern = field(repr=False, default=None)

    def __post_init__(self) -> None:
        pat = _norm_path(self.pattern)
        anchored = pat.endswith("$")
        if anchored:
            pat = pat[:-1]
        body = ".*".join(re.escape(part) for part in pat.split("*"))
        self.regex = re.compile(body + ("$" if anchored else ""), re.DOTALL)

    @property
    def length(self) -> int:
        return len(self.pattern)


@dataclass
class RobotsRules:
    rules: list[_Rule] = field(default_factory=list)
    allow_all: bool = False
    disallow_all: bool = False
    source: str = "parsed"  # parsed | missing | unreachable
    error: str | None = None  # for "unreachable": why (timeout, connection, http_503...)

    def allowed(self, url: str) -> bool:
        if self.disallow_all:
            return False
        if self.allow_all or not self.rules:
            return True
        try:
            parts = urlsplit(url)
        except ValueError:
            return True
        path = parts.path or "/"
        if path == "/robots.txt":
            return True
        target = _norm_path(path + (f"?{parts.query}" if parts.query else ""))
        best: _Rule | None = None
        for rule in self.rules:
            if rule.regex.match(target):
                if best is None or rule.length > best.length or (rule.length == best.length and rule.allow):
                    best = rule
        return True if best is None else best.allow


def parse_robots(text: str | bytes, ua_token: str = UA_TOKEN) -> RobotsRules:
    if isinstance(text, bytes):
        text = text[:MAX_ROBOTS_BYTES].decode("utf-8", errors="replace")
    token = ua_token.lower()
    groups: list[tuple[list[str], list[_Rule]]] = []
    agents: list[str] = []
    rules: list[_Rule] = []
    in_rules = False
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if ":" not in line:
            continue
        key, value = (s.strip() for s in line.split(":", 1))
        key = key.lower()
        if key in ("user-agent", "useragent"):
            if in_rules:  # a user-agent line after rules starts a new group
                groups.append((agents, rules))
                agents, rules, in_rules = [], [], False
            agents.append(value.lower())
        elif key in ("allow", "disallow"):
            if not agents:
                continue  # rules before any user-agent line are ignored
            in_rules = True
            if key == "disallow" and not value:
                continue  # "Disallow:" (empty) = allow everything
            if not value:
                continue
            rules.append(_Rule(allow=(key == "allow"), pattern=value))
        # other keys (sitemap, crawl-delay, ...) do not end a group
    if agents:
        groups.append((agents, rules))
    ours = [r for a, r in groups if any(x.split("/", 1)[0] == token for x in a)]
    chosen = ours if ours else [r for a, r in groups if "*" in a]
    merged = [rule for r in chosen for rule in r]
    return RobotsRules(rules=merged)


def robots_url(url: str) -> str | None:
    try:
        p = urlsplit(url)
        host = p.hostname
        port = p.port
    except ValueError:
        return None
    if not host or p.scheme.lower() not in ("http", "https"):
        return None
    netloc = f"[{host}]" if ":" in host else host
    if port:
        netloc += f":{port}"
    return f"{p.scheme.lower()}://{netloc}/robots.txt"


def rules_from_response(status: int | None, body: bytes | None, ua_token: str = UA_TOKEN,
                        error: str | None = None) -> RobotsRules:
    if status is not None and 200 <= status < 300 and error is None:
        return parse_robots(body or b"", ua_token)
    if status is not None and 400 <= status < 500:
        return RobotsRules(allow_all=True, source="missing")
    if error is None:
        error = f"http_{status}" if status is not None else "unreachable"
    return RobotsRules(disallow_all=True, source="unreachable", error=error)


#: ``fetch(robots_url) -> (status | None, body | None, error_class | None)``
RobotsFetch = Callable[[str], Awaitable[tuple[int | None, bytes | None, str | None]]]


class RobotsCache:
    """Per-host robots verdicts; one fetch per host, shared by concurrent callers (one event loop)."""

    def __init__(self, fetch: RobotsFetch, ua_token: str = UA_TOKEN, store: "RobotsStore | None" = None) -> None:
        self._fetch = fetch
        self.ua_token = ua_token
        self.store = store
        self._rules: dict[str, RobotsRules] = {}
        self._inflight: dict[str, asyncio.Future] = {}
        self.fetches = 0

    async def rules_for(self, url: str) -> RobotsRules | None:
        key = robots_url(url)
        if key is None:
            return None
        if key in self._rules:
            return self._rules[key]
        fut = self._inflight.get(key)
        if fut is not None:
            return await asyncio.shield(fut)
        fut = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            try:
                if self.store is not None:
                    status, body, error = await self.store.fetch(key, self._counted)
                else:
                    status, body, error = await self._counted(key)
                rules = rules_from_response(status, body, self.ua_token, error)
            except Exception:
                rules = RobotsRules(disallow_all=True, source="unreachable", error="fetch_error")
            self._rules[key] = rules
            fut.set_result(rules)
            return rules
        finally:
            self._inflight.pop(key, None)

    async def _counted(self, key: str):
        self.fetches += 1
        return await self._fetch(key)

    async def allowed(self, url: str) -> bool:
        rules = await self.rules_for(url)
        return True if rules is None else rules.allowed(url)


class RobotsStore:
    """robots.txt answers kept in OUT (``OUT/images/robots/<hash of the robots URL>.json``: url, status, body
    (base64), fetched_at), so a host's robots.txt is asked once per run: by the one task that owns the host, and
    not again by a resumed run or by the other tasks of a split host.  Only answers (2xx, 4xx) are kept: an
    unreachable robots.txt disallows the host for this task and is asked again next time (see the module
    docstring).  Concurrent tasks of one host: the first takes ``<hash>.lock`` and fetches, the others wait for its
    answer (at most ``wait_s``, then they ask themselves)."""

    def __init__(self, folder: str | Path, wait_s: float = 30.0) -> None:
        self.folder = Path(folder)
        self.wait_s = float(wait_s)

    def _path(self, url: str, suffix: str = ".json") -> Path:
        return self.folder / (hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:24] + suffix)

    def load(self, url: str) -> tuple[int | None, bytes | None, str | None] | None:
        try:
            data = json.loads(self._path(url).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        if data.get("url") != url:
            return None
        body = base64.b64decode(data["body"]) if data.get("body") is not None else None
        return data.get("status"), body, None

    def save(self, url: str, status: int | None, body: bytes | None, error: str | None) -> None:
        if error is not None or status is None or not (200 <= status < 500):
            return
        from ..io.markers import write_json_atomic

        write_json_atomic(self._path(url), {"url": url, "status": status, "fetched_at": round(time.time(), 3),
                                            "body": base64.b64encode(body).decode() if body is not None else None})

    async def fetch(self, url: str, fetch: RobotsFetch) -> tuple[int | None, bytes | None, str | None]:
        """The stored answer, or ``fetch(url)``'s (stored), one fetch among concurrent tasks."""
        hit = self.load(url)
        if hit is not None:
            return hit
        self.folder.mkdir(parents=True, exist_ok=True)
        lock = self._path(url, ".lock")
        try:
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            start = time.monotonic()
            while time.monotonic() - start < self.wait_s and lock.exists():
                await asyncio.sleep(0.05)
                hit = self.load(url)
                if hit is not None:
                    return hit
            hit = self.load(url)
            if hit is not None:
                return hit
            answer = await fetch(url)  # the other task could not answer (unreachable, or it died)
            self.save(url, *answer)
            return answer
        try:
            hit = self.load(url)  # another task may have stored its answer and let go of the lock since we looked
            if hit is not None:
                return hit
            answer = await fetch(url)
            self.save(url, *answer)
            return answer
        finally:
            lock.unlink(missing_ok=True)
