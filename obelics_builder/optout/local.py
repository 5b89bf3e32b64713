"""A local opt-out list: a text file of URLs or domains, one per line.

* Blank lines and lines starting with ``#`` are ignored; surrounding whitespace is stripped.
* A line starting with ``http://`` or ``https://`` is a URL: it matches that exact URL (the fragment is ignored,
  scheme and host compared case-insensitively).
* Any other line is a domain (``example.com``, ``*.example.com`` or ``domain:example.com``): it matches URLs whose
  host is that domain or one of its subdomains (``www.example.com``, ``img.example.com``), any port, any scheme.
* Lines that are neither (spaces inside, no dot) are rejected and counted in ``invalid`` (never a crash).
"""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

_DOMAIN = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)+\.?$")


def normalize_url(url: str) -> str | None:
    try:
        p = urlsplit(url.strip())
        host = p.hostname or ""
        netloc = host + (f":{p.port}" if p.port else "")
        if p.username or p.password:
            netloc = p.netloc.rsplit("@", 1)[0] + "@" + netloc
    except ValueError:
        return None
    return urlunsplit((p.scheme.lower(), netloc, p.path, p.query, ""))


def host_of(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return ""


class LocalOptOut:
    def __init__(self, urls: set[str] | None = None, domains: set[str] | None = None, invalid: list[str] | None = None) -> None:
        self.urls = set(urls or ())
        self.domains = set(domains or ())
        self.invalid = list(invalid or ())

    @classmethod
    def from_lines(cls, lines) -> "LocalOptOut":
        urls, domains, invalid = set(), set(), []
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.lower().startswith(("http://", "https://")):
                n = normalize_url(line)
                if n and host_of(n):
                    urls.add(n)
                else:
                    invalid.append(line)
                continue
            d = line.lower()
            if d.startswith("domain:"):
                d = d[len("domain:"):].strip()
            if d.startswith("*."):
                d = d[2:]
            d = d.rstrip(".")
            try:
                d = d.encode("idna").decode("ascii") if d and not d.isascii() else d
            except UnicodeError:
                invalid.append(line)
                continue
            if _DOMAIN.match(d):
                domains.add(d)
            else:
                invalid.append(line)
        return cls(urls, domains, invalid)

    @classmethod
    def from_file(cls, path: str | Path) -> "LocalOptOut":
        with open(path, encoding="utf-8", errors="replace") as f:
            return cls.from_lines(f)

    def __len__(self) -> int:
        return len(self.urls) + len(self.domains)

    def match(self, url: str) -> str | None:
        """``"url"`` or ``"domain"`` when ``url`` is opted out by this list, else None."""
        if not url:
            return None
        n = normalize_url(url)
        if n is not None and n in self.urls:
            return "url"
        if self.domains:
            host = host_of(url)
            while host:
                if host in self.domains:
                    return "domain"
                dot = host.find(".")
                if dot < 0:
                    break
                host = host[dot + 1:]
        return None


def check_list_file(path: str | Path, option: str = "--optout-list") -> Path:
    """Before any work: ``path`` is a readable text file holding at least one valid line.  Returns it resolved; a
    :class:`obelics_builder.errors.UsageError` otherwise (the opt-out stage is the last one: a late failure would
    waste the whole run)."""
    from ..errors import UsageError

    p = Path(path).expanduser()
    if not p.exists():
        raise UsageError(f"{option} {path}: no such file (one URL or domain per line)")
    if not p.is_file():
        raise UsageError(f"{option} {path}: not a file (give a text file: one URL or domain per line)")
    try:
        with open(p, "rb") as f:
            head = f.read(1 << 16)
        with open(p, encoding="utf-8", errors="replace") as f:
            listed = LocalOptOut.from_lines(f)
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot read it ({exc.strerror or exc})") from None
    if b"\0" in head:
        raise UsageError(f"{option} {path}: a binary file, not a text list of URLs or domains")
    if len(listed) == 0 and listed.invalid:
        raise UsageError(f"{option} {path}: no valid line ({len(listed.invalid)} invalid, e.g. "
                         f"{listed.invalid[0][:80]!r}); lines are URLs (https://...) or domains (example.com)")
    return p.resolve()
