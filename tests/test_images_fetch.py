"""Fetcher and SSRF tests against a throw-away aiohttp server on 127.0.0.1 (started and stopped here)."""
from __future__ import annotations

import asyncio
import io
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from PIL import Image

from obelics_builder.images.fetch import fetch_many, parse_retry_after, summarize
from obelics_builder.images.safety import SafeResolver, UnsafeURL, check_url, resolve_and_check

LOCAL = {"allow_addresses": ["127.0.0.1"]}  # opens exactly the test server's address, nothing else
FAST = {"retries": 2, "backoff_base_s": 0.05, "backoff_max_s": 0.2, "timeout_s": 5, "connect_timeout_s": 2}


def png_bytes(w: int = 300, h: int = 200, fmt: str = "PNG", mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (w, h), 128).save(buf, fmt)
    return buf.getvalue()


class ImageServer:
    def __init__(self) -> None:
        self.hits: Counter = Counter()
        self.state: Counter = Counter()
        self.stop_event: asyncio.Event | None = None
        self.img = png_bytes()

    def app(self) -> web.Application:
        app = web.Application()
        r = app.router
        r.add_get("/img.png", self.img_h)
        r.add_get("/missing", self.missing)
        r.add_get("/flaky", self.flaky)
        r.add_get("/limited", self.limited)
        r.add_get("/redir/{n}", self.redir)
        r.add_get("/big", self.big)
        r.add_get("/big-declared", self.big_declared)
        r.add_get("/stall", self.stall)
        r.add_get("/to-metadata", self.to_metadata)
        r.add_get("/to-file", self.to_file)
        r.add_get("/always500", self.always500)
        r.add_get("/reset", self.reset)
        return app

    async def _count(self, request):
        self.hits[request.path] += 1

    async def img_h(self, request):
        await self._count(request)
        return web.Response(body=self.img, content_type="image/png")

    async def missing(self, request):
        await self._count(request)
        return web.Response(status=404, text="nope")

    async def flaky(self, request):
        await self._count(request)
        key = "flaky:" + request.query.get("k", "")
        self.state[key] += 1
        if self.state[key] == 1:
            return web.Response(status=500, text="boom")
        return web.Response(body=self.img, content_type="image/png")

    async def reset(self, request):  # drops the first two connections without an answer
        await self._count(request)
        self.state["reset"] += 1
        if self.state["reset"] <= 2:
            request.transport.abort()
            await asyncio.sleep(0.05)
        return web.Response(body=self.img, content_type="image/png")

    async def always500(self, request):
        await self._count(request)
        return web.Response(status=503, text="down")

    async def limited(self, request):
        await self._count(request)
        key = "limited:" + request.query.get("k", "")
        self.state[key] += 1
        if self.state[key] == 1:
            return web.Response(status=429, headers={"Retry-After": "1"}, text="slow down")
        return web.Response(body=self.img, content_type="image/png")

    async def redir(self, request):
        await self._count(request)
        n = int(request.match_info["n"])
        if n <= 0:
            return web.Response(body=self.img, content_type="image/png")
        raise web.HTTPFound(f"/redir/{n - 1}")

    async def big(self, request):  # chunked, no Content-Length: must be cut while streaming
        await self._count(request)
        resp = web.StreamResponse()
        resp.content_type = "image/png"
        await resp.prepare(request)
        try:
            for _ in range(64):
                await resp.write(b"\0" * 65536)
        except (ConnectionResetError, RuntimeError):
            pass
        return resp

    async def big_declared(self, request):
        await self._count(request)
        return web.Response(body=b"\0" * 3_000_000, content_type="image/png")

    async def stall(self, request):
        await self._count(request)
        resp = web.StreamResponse()
        resp.content_type = "image/png"
        resp.content_length = 1000
        await resp.prepare(request)
        await resp.write(b"\x89PNG")
        try:
            await asyncio.wait_for(self.stop_event.wait(), 10)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            pass
        return resp

    async def to_metadata(self, request):
        await self._count(request)
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")

    async def to_file(self, request):
        await self._count(request)
        raise web.HTTPFound("file:///etc/passwd")


@pytest.fixture(scope="module")
def server():
    srv = ImageServer()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    box = {}

    async def start():
        srv.stop_event = asyncio.Event()
        runner = web.AppRunner(srv.app(), shutdown_timeout=1, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        box["runner"] = runner
        box["port"] = site._server.sockets[0].getsockname()[1]

    def run():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        started.set()
        loop.run_forever()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert started.wait(10)
    srv.base = f"http://127.0.0.1:{box['port']}"
    srv.port = box["port"]
    yield srv

    async def stop():
        srv.stop_event.set()
        await box["runner"].cleanup()

    asyncio.run_coroutine_threadsafe(stop(), loop).result(15)
    loop.call_soon_threadsafe(loop.stop)
    t.join(10)
    loop.close()


def fetch1(url, cfg=None, archive=None, **kw):
    [r] = fetch_many([url], archive=archive, cfg={**FAST, **LOCAL, **(cfg or {})}, **kw)
    return r


# ---------------------------------------------------------------------------------------------------------------
# network fetches
# ---------------------------------------------------------------------------------------------------------------

def test_fetch_ok(server):
    r = fetch1(server.base + "/img.png")
    assert r.ok and r.error is None and r.status == 200
    assert r.body == server.img and r.bytes == len(server.img)
    assert r.source == "network" and r.attempts == 1 and r.content_type == "image/png"
    assert r.final_url == server.base + "/img.png"


def test_404_not_retried(server):
    before = server.hits["/missing"]
    r = fetch1(server.base + "/missing")
    assert not r.ok and r.error == "http_404" and r.status == 404 and r.body is None
    assert r.attempts == 1 and server.hits["/missing"] - before == 1


def test_500_then_200_is_retried(server):
    r = fetch1(server.base + "/flaky")
    assert r.ok and r.attempts == 2 and r.body == server.img


def test_dropped_connection_is_retried(server):
    # (aiohttp itself may retry a dropped request once on a new connection, so two drops in a row)
    r = fetch1(server.base + "/reset")
    assert r.ok and r.attempts >= 2 and server.hits["/reset"] == 3


def test_5xx_gives_up_after_retries(server):
    before = server.hits["/always500"]
    r = fetch1(server.base + "/always500", {"retries": 1})
    assert r.error == "http_503" and r.attempts == 2 and server.hits["/always500"] - before == 2


def test_429_honours_retry_after(server):
    t0 = time.perf_counter()
    r = fetch1(server.base + "/limited")
    assert r.ok and r.attempts == 2
    assert time.perf_counter() - t0 >= 0.9  # waited the server's Retry-After: 1


def test_retry_after_parsing():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert 9 <= parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) <= 11


def test_redirects_followed_and_capped(server):
    r = fetch1(server.base + "/redir/3")
    assert r.ok and r.final_url == server.base + "/redir/0"
    r = fetch1(server.base + "/redir/7")
    assert not r.ok and r.error == "too_many_redirects"
    r = fetch1(server.base + "/redir/2", {"redirects": 1})
    assert r.error == "too_many_redirects"


def test_oversize_body_aborted(server):
    r = fetch1(server.base + "/big", {"max_bytes": 1_000_000})
    assert r.error == "too_large" and r.body is None and not r.ok
    r = fetch1(server.base + "/big-declared", {"max_bytes": 1_000_000})
    assert r.error == "too_large" and r.body is None


def test_stalling_server_times_out(server):
    t0 = time.perf_counter()
    r = fetch1(server.base + "/stall", {"timeout_s": 1.0, "retries": 2})
    assert r.error == "timeout" and not r.ok and r.attempts == 1
    assert time.perf_counter() - t0 < 4


def test_url_deadline_covers_retries(server):
    t0 = time.perf_counter()
    r = fetch1(server.base + "/limited?k=deadline", {"deadline_s": 0.5})  # the 429 asks for 1 s: the deadline wins
    assert r.error == "timeout" and time.perf_counter() - t0 < 2


def test_image_table_over_network(server):
    from obelics_builder.images.table import build_image_table

    rows = build_image_table([server.base + "/img.png", server.base + "/missing", server.base + "/img.png"], None,
                             {**FAST, **LOCAL}, {"image": {"min_size": 150}})
    assert len(rows) == 2
    ok, missing = rows
    assert ok["reason"] is None and ok["source"] == "network" and ok["data"] == server.img
    assert (ok["width"], ok["height"], ok["format"]) == (300, 200, "png")
    assert missing["reason"] == "http_404" and missing["data"] is None


def test_connection_refused():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    r = fetch1(f"http://127.0.0.1:{port}/x.png", {"retries": 0})
    assert r.error == "connection" and not r.ok


def test_invalid_urls():
    for url in ("data:image/png;base64,AAAA", "ftp://example.com/a.png", "not a url", ""):
        r = fetch1(url)
        assert r.error == "invalid_url", url
    assert fetch1("http://user:pw@example.com/a.png").error == "invalid_url"


# ---------------------------------------------------------------------------------------------------------------
# SSRF
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "http://127.0.0.1/a.png", "http://10.1.2.3/a.png", "http://192.168.0.1/a.png", "http://172.16.5.4/a.png",
    "http://169.254.169.254/latest/meta-data/", "http://100.64.0.1/", "http://[::1]/", "http://[fe80::1]/",
    "http://[::ffff:10.0.0.1]/", "http://224.0.0.1/", "http://0.0.0.0/", "http://240.0.0.1/",
    "http://localhost/a.png", "http://LOCALHOST./a.png", "http://foo.localhost/a.png", "http://2130706433/",
    "http://0x7f.0.0.1/", "http://[2002:a00:1::]/",
])
def test_check_url_refuses_local_destinations(url):
    with pytest.raises(UnsafeURL) as exc:
        check_url(url)
    assert exc.value.kind == "unsafe_address"


def test_check_url_accepts_public_and_allow_list():
    assert check_url("https://example.com/a.jpg") == "example.com"
    assert check_url("http://8.8.8.8/x") == "8.8.8.8"
    assert check_url("http://[2606:4700::1]/x") == "2606:4700::1"
    import ipaddress

    assert check_url("http://127.0.0.1/x", allow_addresses=[ipaddress.ip_network("127.0.0.1/32")])
    with pytest.raises(UnsafeURL):  # the allow-list opens exactly what it names
        check_url("http://127.0.0.2/x", allow_addresses=[ipaddress.ip_network("127.0.0.1/32")])
    with pytest.raises(UnsafeURL) as exc:
        check_url("gopher://example.com/")
    assert exc.value.kind == "invalid_url"


def test_private_literal_and_localhost_refused_without_traffic(server):
    before = sum(server.hits.values())
    r = fetch1(f"http://127.0.0.1:{server.port}/img.png", {"allow_addresses": []})
    assert r.error == "unsafe_address" and not r.ok
    r = fetch1(f"http://localhost:{server.port}/img.png", {"allow_addresses": []})
    assert r.error == "unsafe_address"
    r = fetch1(f"http://localhost:{server.port}/img.png", {"allow_addresses": ["127.0.0.1"]})
    assert r.error == "unsafe_address"  # the name itself is refused unless allow_private_addresses
    assert sum(server.hits.values()) == before
    r = fetch1(f"http://localhost:{server.port}/img.png", {"allow_addresses": [], "allow_private_addresses": True})
    assert r.ok  # the explicit opt-out works


def _fake_dns(mapping, calls):
    async def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        calls.append(host)
        if host not in mapping:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port or 0)) for ip in mapping[host]]

    return getaddrinfo


def test_hostname_resolving_to_loopback_is_refused(server):
    calls: list = []
    dns = _fake_dns({"images.example": ["127.0.0.1"], "mixed.example": ["93.184.216.34", "127.0.0.1"]}, calls)
    before = sum(server.hits.values())
    url = f"http://images.example:{server.port}/img.png"
    r = fetch1(url, {"allow_addresses": []}, getaddrinfo=dns)
    assert r.error == "unsafe_address"
    # one unsafe address among several is enough to refuse the name
    r = fetch1(f"http://mixed.example:{server.port}/img.png", {"allow_addresses": []}, getaddrinfo=dns)
    assert r.error == "unsafe_address"
    assert sum(server.hits.values()) == before  # nothing reached the server
    # positive control: the same name is fetched once its resolved address is allowed -> the check is on the
    # address aiohttp connects to; two URLs on one host resolve once (DNS cache)
    calls.clear()
    rs = fetch_many([url, url.replace("img.png", "redir/0")], cfg={**FAST, **LOCAL}, getaddrinfo=dns)
    assert all(r.ok for r in rs) and calls == ["images.example"]
    r = fetch1(f"http://nowhere.example:{server.port}/img.png", getaddrinfo=dns)
    assert r.error == "dns"


def test_resolve_and_check_real_resolver():
    with pytest.raises(UnsafeURL):
        asyncio.run(resolve_and_check("localhost", 80))
    assert asyncio.run(resolve_and_check("127.0.0.1", 80, allow_addresses=["127.0.0.1/32"])) == [
        (socket.AF_INET, "127.0.0.1")
    ]


def test_resolver_caches_failures_and_answers():
    calls: list = []
    res = SafeResolver(getaddrinfo=_fake_dns({"a.example": ["93.184.216.34"]}, calls), ttl_s=60)

    async def go():
        for _ in range(3):
            assert await res.resolve_checked("a.example") == [(socket.AF_INET, "93.184.216.34")]
            with pytest.raises(OSError):
                await res.resolve_checked("gone.example")

    asyncio.run(go())
    assert calls == ["a.example", "gone.example"]


def test_resolver_coalesces_concurrent_lookups():
    calls: list = []
    fast = _fake_dns({"b.example": ["93.184.216.34"]}, calls)

    async def slow(*args, **kw):
        await asyncio.sleep(0.05)
        return await fast(*args, **kw)

    res = SafeResolver(getaddrinfo=slow)

    async def go():
        return await asyncio.gather(*(res.resolve("b.example", 443) for _ in range(20)))

    answers = asyncio.run(go())
    assert calls == ["b.example"] and all(a[0]["host"] == "93.184.216.34" and a[0]["port"] == 443 for a in answers)


def test_redirect_to_metadata_endpoint_refused(server):
    r = fetch1(server.base + "/to-metadata")
    assert r.error == "unsafe_address" and not r.ok
    assert r.final_url == "http://169.254.169.254/latest/meta-data/"
    r = fetch1(server.base + "/to-file")
    assert r.error == "invalid_url"


# ---------------------------------------------------------------------------------------------------------------
# archive first
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class Hit:
    status: int
    headers: dict = field(default_factory=dict)
    body: bytes = b""


class FakeArchive:
    def __init__(self, records: dict) -> None:
        self.records = records
        self.lookups: list = []

    def lookup(self, url):
        self.lookups.append(url)
        return self.records.get(url)


def test_archive_first_makes_no_network_call(server):
    img = png_bytes(200, 200)
    url = server.base + "/img.png"
    archive = FakeArchive({
        url: Hit(200, {"content-type": "image/png"}, img),
        "https://a.example/old": Hit(301, {"location": "/new"}),
        "https://a.example/new": Hit(200, {"content-type": "image/png"}, img),
        "https://a.example/gone": Hit(404, {}, b""),
    })
    before = sum(server.hits.values())
    rs = fetch_many([url, "https://a.example/old", "https://a.example/gone", url], archive=archive,
                    cfg={**FAST, **LOCAL})
    assert sum(server.hits.values()) == before
    assert rs[0].ok and rs[0].source == "archive" and rs[0].body == img and rs[0].attempts == 0
    assert rs[0] is rs[3] and archive.lookups.count(url) == 1  # a repeated URL is fetched once
    assert rs[1].ok and rs[1].final_url == "https://a.example/new"
    assert rs[2].error == "http_404" and rs[2].source == "archive"
    # a miss goes to the network when allowed...
    r = fetch1(server.base + "/redir/0", archive=archive)
    assert r.ok and r.source == "network"
    # ...and is reported as not_in_archive when not
    r = fetch1(server.base + "/redir/0", {"network": False}, archive=archive)
    assert r.error == "not_in_archive" and r.source is None


def test_summarize(server):
    rs = fetch_many([server.base + "/img.png", server.base + "/missing", "http://10.0.0.1/x"],
                    cfg={**FAST, **LOCAL})
    s = summarize(rs)
    assert s["urls"] == 3 and s["ok"] == 1
    assert s["errors"] == {"http_404": 1, "unsafe_address": 1}
    assert {h["host"] for h in s["hosts_with_most_errors"]} == {"127.0.0.1", "10.0.0.1"}
