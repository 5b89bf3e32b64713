"""Consent (X-Robots-Tag, tdm-reservation, robots.txt), the ledger's --retry-failed, pHash grouping, resize.

Every server here is a ThreadingHTTPServer on 127.0.0.1 started and stopped by the test.
"""
from __future__ import annotations

import io
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from obelics_builder.images.consent import header_consent, x_robots_denies
from obelics_builder.images.fetch import fetch_many, is_retryable
from obelics_builder.images.ledger import failed_retryable, retry_failed
from obelics_builder.images.phash_groups import apply_phash_groups
from obelics_builder.images.phash import near_duplicate_groups
from obelics_builder.images.robots import parse_robots
from obelics_builder.images.table import build_image_table
from obelics_builder.io.markers import read_marker

LOCAL = {"allow_addresses": ["127.0.0.1"], "retries": 0, "timeout_s": 3, "connect_timeout_s": 2,
         "robots_timeout_s": 2}


def png(w=300, h=200, color=(120, 30, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, "PNG")
    return buf.getvalue()


class Server:
    """routes: path -> (status, headers, body) or callable(count) -> (status, headers, body)."""

    def __init__(self, routes: dict):
        self.routes = routes
        self.hits: Counter = Counter()
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.hits[self.path] += 1
                spec = outer.routes.get(self.path, (404, {}, b"not found"))
                if callable(spec):
                    spec = spec(outer.hits[self.path])
                status, headers, body = spec
                self.send_response(status)
                for k, v in (headers.items() if isinstance(headers, dict) else headers):
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


IMG = png()


def img(headers=None):
    return (200, {"Content-Type": "image/png", **(headers or {})}, IMG)


# ---- header consent ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value,denied", [
    ("noai", True), ("NoAI", True), ("noimageai", True), ("noml", True), ("noindex, noai", True),
    ("noindex,  NOIMAGEAI ", True), ("noindex, nofollow", False), ("", False),
    ("obelics-builder: noai", True), ("Obelics-Builder: noindex, noml", True), ("*: noai", True),
    ("googlebot: noai", False), ("googlebot: noindex, obelics-builder: noai", True),
    ("googlebot: noai, noml", False), ("max-image-preview: large", False), ("noai-not", False),
])
def test_x_robots_tag_forms(value, denied):
    assert x_robots_denies(value) is denied


def test_header_consent_names_case_insensitive_and_repeated():
    assert header_consent({"X-ROBOTS-TAG": "NOAI"}) == "consent:x-robots-tag"
    assert header_consent([("x-robots-tag", "noindex"), ("X-Robots-Tag", "noml")]) == "consent:x-robots-tag"
    assert header_consent({"TDM-Reservation": "1"}) == "consent:tdm-reservation"
    assert header_consent({"tdm-reservation": "0"}) is None
    assert header_consent({"content-type": "image/png"}) is None


def test_consent_headers_over_http_drop_with_reason():
    routes = {
        "/ok.png": img(),
        "/noai.png": img({"X-Robots-Tag": "noai"}),
        "/agent.png": img({"x-robots-tag": "obelics-builder: noimageai"}),
        "/other-agent.png": img({"X-Robots-Tag": "somebot: noai"}),
        "/tdm.png": img({"tdm-reservation": "1"}),
        "/tdm0.png": img({"tdm-reservation": "0"}),
    }
    with Server(routes) as srv:
        urls = [srv.base + p for p in routes]
        rows = {r["url"].rsplit("/", 1)[1]: r for r in build_image_table(urls, None, LOCAL, {})}
    assert rows["ok.png"]["reason"] is None and rows["ok.png"]["data"] == IMG
    assert rows["noai.png"]["reason"] == "consent:x-robots-tag" and rows["noai.png"]["data"] is None
    assert rows["agent.png"]["reason"] == "consent:x-robots-tag"
    assert rows["other-agent.png"]["reason"] is None
    assert rows["tdm.png"]["reason"] == "consent:tdm-reservation"
    assert rows["tdm0.png"]["reason"] is None
    assert not is_retryable("consent:x-robots-tag")


class _Archive:
    def __init__(self, entries):
        self.entries = entries

    def lookup(self, url):
        return self.entries.get(url)


class _Hit:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body


def test_archive_hits_apply_header_consent_and_archived_robots():
    arc = _Archive({
        "http://a.example/ok.png": _Hit(200, {"content-type": "image/png"}, IMG),
        "http://a.example/noai.png": _Hit(200, {"x-robots-tag": "noai"}, IMG),
        "http://b.example/robots.txt": _Hit(200, {}, b"User-agent: *\nDisallow: /private/\n"),
        "http://b.example/private/x.png": _Hit(200, {}, IMG),
        "http://b.example/public/x.png": _Hit(200, {}, IMG),
    })
    res = {r.url: r for r in fetch_many(list(arc.entries)[:2] + ["http://b.example/private/x.png",
                                                                  "http://b.example/public/x.png"],
                                        arc, {"network": False})}
    assert res["http://a.example/ok.png"].ok
    assert res["http://a.example/noai.png"].error == "consent:x-robots-tag"
    assert res["http://b.example/private/x.png"].error == "consent:robots-txt"
    assert res["http://b.example/public/x.png"].ok


# ---- robots.txt -------------------------------------------------------------------------------------------------

ROBOTS = b"""# comment
User-agent: *
Disallow: /
Allow: /open/

User-agent: obelics-builder
Disallow: /private/
Allow: /private/ok
Disallow: /*.gif$
"""


def test_robots_parser_longest_match_and_agent_choice():
    ours = parse_robots(ROBOTS)
    assert ours.allowed("http://h/anything.png")  # our group does not disallow "/"
    assert not ours.allowed("http://h/private/x.png")
    assert ours.allowed("http://h/private/ok.png")  # longer Allow wins
    assert not ours.allowed("http://h/a/b.gif") and ours.allowed("http://h/a/b.gif?x=1")
    other = parse_robots(ROBOTS, ua_token="otherbot")
    assert not other.allowed("http://h/anything.png") and other.allowed("http://h/open/x.png")
    assert other.allowed("http://h/robots.txt")
    assert parse_robots(b"User-agent: *\nDisallow:\n").allowed("http://h/x")


def test_robots_over_http_allow_deny_cached_once_per_host():
    routes = {"/robots.txt": (200, {"Content-Type": "text/plain"}, ROBOTS),
              "/private/a.png": img(), "/private/b.png": img(), "/public/c.png": img(), "/public/d.png": img()}
    with Server(routes) as srv:
        urls = [srv.base + p for p in routes if p != "/robots.txt"]
        rows = {r["url"].split(srv.base)[1]: r for r in build_image_table(urls, None, LOCAL, {})}
        assert srv.hits["/robots.txt"] == 1  # fetched once for the host
        assert srv.hits["/private/a.png"] == 0  # a disallowed image is never requested
        off = build_image_table([srv.base + "/private/a.png"], None, {**LOCAL, "respect_robots": False}, {})
    assert rows["/private/a.png"]["reason"] == "consent:robots-txt"
    assert rows["/private/b.png"]["reason"] == "consent:robots-txt"
    assert rows["/public/c.png"]["reason"] is None and rows["/public/d.png"]["reason"] is None
    assert off[0]["reason"] is None


@pytest.mark.parametrize("status,allowed", [(404, True), (403, True), (503, False)])
def test_robots_status_codes(status, allowed):
    routes = {"/robots.txt": (status, {}, b"User-agent: *\nDisallow: /\n"), "/x.png": img()}
    with Server(routes) as srv:
        row = build_image_table([srv.base + "/x.png"], None, LOCAL, {})[0]
    if allowed:
        assert row["reason"] is None
    else:
        assert row["reason"] == "http_503" and is_retryable(row["reason"])  # unreachable: disallowed this run


# ---- ledger: --retry-failed only refetches retryable failures ------------------------------------------------

def test_retry_failed_refetches_only_retryable(tmp_path):
    from obelics_builder.tasks import fetch_partition

    flaky = lambda n: (503, {}, b"busy") if n == 1 else img()  # noqa: E731
    routes = {"/ok.png": img(), "/flaky1.png": flaky, "/flaky2.png": flaky, "/gone.png": (404, {}, b"x"),
              "/noai.png": img({"X-Robots-Tag": "noai"}), "/tiny.png": (200, {}, png(20, 20))}
    recipe = {"images": dict(LOCAL), "filters_config": {"image": {"nsfw": {"enabled": False}}}}
    with Server(routes) as srv:
        urls = [srv.base + p for p in routes]
        fetch_partition(0, urls, recipe, str(tmp_path), (), {})
        folder = tmp_path / "images" / "table"
        m1 = read_marker(folder, "part-00000")
        rows = pq.read_table(folder / "part-00000.parquet").to_pylist()
        assert sorted(u.rsplit("/", 1)[1] for u in failed_retryable(rows)) == ["flaky1.png", "flaky2.png"]
        before = Counter(srv.hits)
        summary = retry_failed(tmp_path, recipe, None, dict(LOCAL))
        delta = Counter(srv.hits)
        delta.subtract(before)
        # only the failed-retryable URLs were requested again (plus robots.txt: a new fetcher asks again)
        assert {p for p, n in delta.items() if n > 0} <= {"/flaky1.png", "/flaky2.png", "/robots.txt"}
        assert delta["/flaky1.png"] == 1 and delta["/flaky2.png"] == 1 and delta["/ok.png"] == 0
        assert summary["retried"] == 2 and summary["recovered"] == 2
        # rerunning the partition is a no-op (input fingerprint kept) and does not undo the retry
        n_before = sum(srv.hits.values())
        fetch_partition(0, urls, recipe, str(tmp_path), (), {})
        assert sum(srv.hits.values()) == n_before
    m2 = read_marker(folder, "part-00000")
    assert m2["input_fingerprint"] == m1["input_fingerprint"]
    assert m2["fingerprint"] != m1["fingerprint"]  # the content changed: the final step reruns
    rows = {r["url"].rsplit("/", 1)[1]: r for r in pq.read_table(folder / "part-00000.parquet").to_pylist()}
    assert rows["flaky1.png"]["reason"] is None and rows["flaky1.png"]["attempts"] == 2
    assert rows["gone.png"]["reason"] == "http_404" and rows["noai.png"]["reason"] == "consent:x-robots-tag"
    assert rows["tiny.png"]["reason"] == "too_small"
    assert m2["stats"]["image_fetch"]["documents_out"] == 3


# ---- pHash near-duplicates --------------------------------------------------------------------------------------

def test_near_duplicate_groups_bands_match_bruteforce():
    import random

    rnd = random.Random(7)
    base = [rnd.getrandbits(64) for _ in range(60)]
    hashes = []
    for b in base:
        hashes.append(b)
        for _ in range(2):
            v = b
            for bit in rnd.sample(range(64), rnd.randint(0, 6)):
                v ^= 1 << bit
            hashes.append(v)
    rows = [(f"u{i}", f"s{i:04d}", f"{h:016x}") for i, h in enumerate(hashes)]
    got = near_duplicate_groups(rows, 4)
    # brute force: connected components of distance <= 4
    parent = list(range(len(hashes)))

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x
    for i in range(len(hashes)):
        for j in range(i):
            if (hashes[i] ^ hashes[j]).bit_count() <= 4:
                parent[find(i)] = find(j)
    comp = {}
    for i in range(len(hashes)):
        comp.setdefault(find(i), []).append(i)
    for members in comp.values():
        names = {got[f"u{i}"][0] for i in members}
        assert names == {min(f"s{i:04d}" for i in members)}
        assert sum(got[f"u{i}"][1] for i in members) == len(members) - 1


def test_phash_grouping_on_hash_pair(shared_data, tmp_path):
    hp = shared_data / "images" / "hash-pair"
    peppers = (hp / "peppers.png").read_bytes()
    other = (hp / "imagehash.png").read_bytes()
    im = Image.open(io.BytesIO(peppers)).convert("RGB")
    buf = io.BytesIO()
    im.resize((450, 450)).save(buf, "JPEG", quality=80)  # same picture: other size, format and bytes
    routes = {"/peppers.png": (200, {}, peppers), "/peppers-small.jpg": (200, {}, buf.getvalue()),
              "/imagehash.png": (200, {}, other)}
    recipe = {"images": dict(LOCAL), "filters_config": {"image": {"nsfw": {"enabled": False},
                                                                  "max_aspect_ratio": 2.0}}}
    from obelics_builder.tasks import fetch_partition

    with Server(routes) as srv:
        fetch_partition(0, [srv.base + "/peppers.png", srv.base + "/imagehash.png"], recipe, str(tmp_path), (), {})
        fetch_partition(1, [srv.base + "/peppers-small.jpg"], recipe, str(tmp_path), (), {})
    folder = tmp_path / "images" / "table"
    fp_before = read_marker(folder, "part-00001")["fingerprint"]
    info = apply_phash_groups(folder, ["part-00000", "part-00001"], 4)
    assert info["near_duplicates"] == 1 and info["parts_rewritten"] == 2
    rows = {r["url"].rsplit("/", 1)[1]: r for f in sorted(folder.glob("part-*.parquet"))
            for r in pq.read_table(f).to_pylist()}
    a, b, c = rows["peppers.png"], rows["peppers-small.jpg"], rows["imagehash.png"]
    assert len(a["phash"]) == 16 and a["phash"] != c["phash"]
    assert a["phash_group"] == b["phash_group"] == min(a["sha256"], b["sha256"])
    assert a["image_near_duplicate"] != b["image_near_duplicate"]  # exactly one representative
    assert c["phash_group"] == c["sha256"] and c["image_near_duplicate"] is False
    assert read_marker(folder, "part-00001")["fingerprint"] != fp_before
    assert apply_phash_groups(folder, ["part-00000", "part-00001"], 4)["parts_rewritten"] == 0  # stable


def test_resize_modes_keep_original_size(tmp_path):
    routes = {"/big.png": (200, {}, png(800, 600))}
    with Server(routes) as srv:
        for mode, expect in (("keep_ratio", (267, 200)), ("center_crop", (200, 200)), ("border", (200, 200))):
            row = build_image_table([srv.base + "/big.png"], None, {**LOCAL, "image_size": 200,
                                                                   "resize_mode": mode}, {})[0]
            assert (row["width"], row["height"]) == (800, 600)
            assert (row["stored_width"], row["stored_height"]) == expect
            assert Image.open(io.BytesIO(row["data"])).size == expect
