"""SSRF protection for image fetching: only public http(s) addresses, on by default.

Two layers:

* :func:`check_url` — a cheap syntactic check of every URL we are about to request (the first one and every
  redirect ``Location``): scheme http/https only, no credentials, no ``localhost``-style names, and when the host is
  an IP literal it must be a public (global unicast) address.
* :class:`SafeResolver` — an :class:`aiohttp.abc.AbstractResolver` used by the fetcher's connector.  aiohttp
  connects to exactly the addresses this resolver returns, so checking them here closes the gap between "the name
  looked fine" and "the socket went to 127.0.0.1" (DNS rebinding, names in /etc/hosts, internal zones).  If *any*
  resolved address is unsafe the whole name is refused.  Results (and failures) are cached per host with a TTL.

Exceptions (both reach the fetcher as ``unsafe_address``):

* a *public* address is always allowed;
* ``allow_private=True`` turns the address-class check off entirely (scheme/credential checks stay);
* ``allow_addresses`` is an explicit allow-list of addresses / networks (e.g. ``["127.0.0.1/32"]`` for a test
  server) that are accepted although not public.  Everything else stays refused, including on redirect hops —
  which is how tests prove that a redirect from an allowed server to ``169.254.169.254`` is refused.

The default (``allow_private=False``, no allow-list) is the safe one.
"""
from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from typing import Any, Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_SCHEMES = ("http", "https")

#: Host names refused without resolving them (compared lowercase, trailing dot removed).
BLOCKED_HOSTNAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
#: Host-name suffixes refused without resolving them.
BLOCKED_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")

#: Networks refused on top of what :mod:`ipaddress` already calls non-global.
_EXTRA_BLOCKED: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "100.64.0.0/10",  # carrier-grade NAT (shared address space)
        "169.254.0.0/16",  # link-local, cloud metadata endpoints
        "192.0.0.0/24",  # IETF protocol assignments
        "198.18.0.0/15",  # benchmarking
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "fc00::/7",  # unique local
        "ff00::/8",  # multicast
        "100::/64",  # discard-only
        "2001:db8::/32",  # documentation
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeURL(Exception):
    """A URL (or the address it resolves to) that must not be fetched.

    ``reason`` is a short human explanation; ``kind`` the error class the fetcher reports: ``invalid_url`` (bad
    syntax, scheme, credentials) or ``unsafe_address`` (a local / private / reserved destination).
    """

    def __init__(self, reason: str, kind: str = "unsafe_address") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


class UnsafeAddress(UnsafeURL, OSError):
    """Raised by the resolver: an OSError so that aiohttp passes it through as the connection's cause."""

    def __init__(self, reason: str) -> None:
        UnsafeURL.__init__(self, reason, "unsafe_address")


def parse_allow_list(values: Iterable[str] | None) -> tuple[IPNetwork, ...]:
    """``["127.0.0.1", "10.0.0.0/8"]`` -> networks (a bare address is a /32 or /128)."""
    return tuple(ipaddress.ip_network(str(v), strict=False) for v in (values or ()))


def address_problem(ip: IPAddress | str) -> str | None:
    """Why an address is not a public unicast address (``None`` when it is)."""
    if isinstance(ip, str):
        ip = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv6 forms that embed an IPv4 address: judge the embedded address.
        if ip.ipv4_mapped is not None:
            inner = address_problem(ip.ipv4_mapped)
            return f"ipv4-mapped {inner}" if inner else None
        if ip.sixtofour is not None:
            inner = address_problem(ip.sixtofour)
            if inner:
                return f"6to4 {inner}"
        if ip.teredo is not None:
            return "teredo"
        if ip in _NAT64:
            inner = address_problem(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
            if inner:
                return f"nat64 {inner}"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    for net in _EXTRA_BLOCKED:
        if ip.version == net.version and ip in net:
            return f"in blocked network {net}"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "not global"
    return None


def is_address_allowed(
    ip: IPAddress | str, allow_private: bool = False, allow_addresses: Iterable[IPNetwork] = ()
) -> str | None:
    """``None`` if we may connect to ``ip``, else the reason we may not."""
    if isinstance(ip, str):
        ip = ipaddress.ip_address(ip.split("%", 1)[0])
    if allow_private:
        return None
    for net in allow_addresses:
        if isinstance(net, str):
            net = ipaddress.ip_network(net, strict=False)
        if ip.version == net.version and ip in net:
            return None
    problem = address_problem(ip)
    return f"address {ip} is {problem}" if problem else None


def _ip_literal(host: str) -> IPAddress | None:
    h = host.strip("[]")
    try:
        return ipaddress.ip_address(h.split("%", 1)[0])
    except ValueError:
        pass
    # Legacy numeric IPv4 forms that the C library would still accept: 2130706433, 0x7f.1, 127.1
    if h and all(c in "0123456789abcdefx." for c in h.lower()):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(h))
        except OSError:
            return None
    return None


def check_url(url: str, allow_private: bool = False, allow_addresses: Iterable[IPNetwork | str] = ()) -> str:
    """Raise :class:`UnsafeURL` if ``url`` must not be fetched; return the host (lowercase, no trailing dot)."""
    if not isinstance(url, str) or not url:
        raise UnsafeURL("empty URL", "invalid_url")
    try:
        parts = urlsplit(url)
        port = parts.port  # noqa: F841  (raises ValueError on a bad port)
    except ValueError as exc:
        raise UnsafeURL(f"unparsable URL: {exc}", "invalid_url") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise UnsafeURL(f"scheme {scheme or '(none)'!r} not allowed", "invalid_url")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UnsafeURL("credentials in URL", "invalid_url")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise UnsafeURL("no host", "invalid_url")
    if not allow_private:
        if host in BLOCKED_HOSTNAMES or host.endswith(BLOCKED_SUFFIXES):
            raise UnsafeURL(f"host {host!r} is local")
    ip = _ip_literal(host)
    if ip is not None:
        problem = is_address_allowed(ip, allow_private, allow_addresses)
        if problem:
            raise UnsafeURL(problem)
    return host


# ---------------------------------------------------------------------------------------------------------------
# Resolution
# ---------------------------------------------------------------------------------------------------------------

GetAddrInfo = Callable[..., Awaitable[list]]


class SafeResolver(AbstractResolver):
    """An aiohttp resolver that refuses names resolving to any non-public address and caches answers.

    ``getaddrinfo`` defaults to the running loop's; tests may pass a coroutine function with the same signature
    to map names without touching real DNS.
    """

    def __init__(
        self,
        allow_private: bool = False,
        allow_addresses: Iterable[str | IPNetwork] = (),
        ttl_s: float = 300.0,
        negative_ttl_s: float = 30.0,
        getaddrinfo: GetAddrInfo | None = None,
        timeout_s: float | None = 10.0,
    ) -> None:
        self.allow_private = allow_private
        self.allow_addresses = tuple(
            a if isinstance(a, (ipaddress.IPv4Network, ipaddress.IPv6Network)) else ipaddress.ip_network(a, strict=False)
            for a in allow_addresses
        )
        self.ttl_s = ttl_s
        self.negative_ttl_s = negative_ttl_s
        self.timeout_s = timeout_s
        self._getaddrinfo = getaddrinfo
        # (host, family) -> (expires_at, [(family, ip)] | exception)
        self._cache: dict[tuple[str, int], tuple[float, Any]] = {}
        self._inflight: dict[tuple[str, int, int], asyncio.Future] = {}
        self.lookups = 0  # real lookups made (cache misses), for tests and stats

    async def _lookup(self, host: str, family: int) -> list[tuple[int, str]]:
        gai = self._getaddrinfo or asyncio.get_running_loop().getaddrinfo
        self.lookups += 1
        coro = gai(host, None, family=family, type=socket.SOCK_STREAM)
        infos = await (asyncio.wait_for(coro, self.timeout_s) if self.timeout_s else coro)
        out: list[tuple[int, str]] = []
        for fam, _type, _proto, _canon, sockaddr in infos:
            if fam not in (socket.AF_INET, socket.AF_INET6):
                continue
            ip = sockaddr[0]
            if (fam, ip) not in out:
                out.append((fam, ip))
        if not out:
            raise socket.gaierror(socket.EAI_NONAME, f"no address for {host}")
        return out

    async def resolve_checked(self, host: str, family: int = socket.AF_UNSPEC) -> list[tuple[int, str]]:
        """Resolved ``[(family, ip)]`` for ``host``, every one of them allowed; raises UnsafeAddress / OSError."""
        name = host.rstrip(".").lower()
        ip = _ip_literal(name)
        if ip is not None:
            problem = is_address_allowed(ip, self.allow_private, self.allow_addresses)
            if problem:
                raise UnsafeAddress(problem)
            return [(socket.AF_INET6 if ip.version == 6 else socket.AF_INET, str(ip))]
        if not self.allow_private and (name in BLOCKED_HOSTNAMES or name.endswith(BLOCKED_SUFFIXES)):
            raise UnsafeAddress(f"host {name!r} is local")
        key = (name, int(family))
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            value = cached[1]
        else:
            loop = asyncio.get_running_loop()
            flight = (name, int(family), id(loop))  # futures belong to one loop
            fut = self._inflight.get(flight)
            if fut is None:
                fut = loop.create_future()
                self._inflight[flight] = fut
                try:
                    value = await self._lookup(host, family)
                    self._cache[key] = (time.monotonic() + self.ttl_s, value)
                except (OSError, asyncio.TimeoutError) as exc:
                    value = exc if isinstance(exc, OSError) else OSError(f"DNS timeout for {host}")
                    self._cache[key] = (time.monotonic() + self.negative_ttl_s, value)
                finally:
                    self._inflight.pop(flight, None)
                fut.set_result(value)
            else:
                value = await asyncio.shield(fut)
        if isinstance(value, BaseException):
            raise value
        for _fam, ip_s in value:
            problem = is_address_allowed(ip_s, self.allow_private, self.allow_addresses)
            if problem:
                raise UnsafeAddress(f"{name}: {problem}")
        return list(value)

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[dict]:
        addrs = await self.resolve_checked(host, family)
        return [
            {"hostname": host, "host": ip, "port": port, "family": fam, "proto": 0, "flags": socket.AI_NUMERICHOST}
            for fam, ip in addrs
        ]

    async def close(self) -> None:
        self._cache.clear()


_DEFAULT_RESOLVERS: dict[tuple, SafeResolver] = {}


async def resolve_and_check(
    host: str,
    port: int = 0,
    allow_private: bool = False,
    allow_addresses: Iterable[str | IPNetwork] = (),
    resolver: SafeResolver | None = None,
) -> list[tuple[int, str]]:
    """Resolve ``host`` (cached per host with a TTL) and return ``[(family, ip)]`` to connect to.

    Raises :class:`UnsafeAddress` if ANY resolved address is not allowed, ``OSError`` if resolution fails.
    ``port`` is accepted for symmetry with getaddrinfo; the check does not depend on it.
    """
    if resolver is None:
        key = (bool(allow_private), tuple(str(a) for a in allow_addresses))
        resolver = _DEFAULT_RESOLVERS.get(key)
        if resolver is None:
            resolver = _DEFAULT_RESOLVERS[key] = SafeResolver(allow_private, allow_addresses)
    return await resolver.resolve_checked(host)
