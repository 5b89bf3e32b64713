"""Opt-out: Spawning client against a stand-in server on 127.0.0.1, the local list, C2PA, the stage, the manifest."""
from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from obelics_builder import schema
from obelics_builder.optout import c2pa
from obelics_builder.optout.local import LocalOptOut
from obelics_builder.optout.manifest import manifest_name, merge_manifests, read_manifest, write_manifest_part
from obelics_builder.optout.spawning import RateLimiter, SpawningClient
from obelics_builder.optout.stage import SKIPPED_NOTE, collect_urls, optout_stage, spawning_lookup
from obelics_builder.stats import StageContext, Stats

KEY = "sekret-key-123"


class Server:
    """Stand-in for the Spawning API: same request and response format; behaviour chosen by the path."""

    def __init__(self):
        self.requests = []  # (path, auth, lines)
        self.fail_first = 0
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                lines = self.rfile.read(n).decode().split("\n")
                outer.requests.append((self.path, self.headers.get("Authorization"), lines))
                if self.headers.get("Authorization") != f"API {KEY}":
                    return self._send(401, b'{"error": "bad key"}')
                if self.path == "/fail500" and outer.fail_first > 0:
                    outer.fail_first -= 1
                    return self._send(500, b"oops")
                if self.path == "/malformed":
                    return self._send(200, b"{not json")
                if self.path == "/slow":
                    time.sleep(1.0)
                urls = [u for u in lines]
                if self.path == "/partial":  # answers only the first half (at least one) of what it gets
                    urls = urls[: max(1, len(urls) // 2)]
                if self.path == "/reversed":
                    urls = urls[::-1]
                body = {"urls": [{"url": u, "optOut": "optout" in u} for u in urls]}
                self._send(200, json.dumps(body).encode())

            def _send(self, code, body):
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server():
    with Server() as s:
        yield s


def client(server, path, **kw):
    kw.setdefault("retries", 3)
    kw.setdefault("backoff_s", 0.01)
    kw.setdefault("requests_per_second", 0)
    return SpawningClient(url=server.url(path), key=KEY, **kw)


def test_batches_auth_and_final_batch_of_one(server):
    urls = [f"https://x/{i}" for i in range(4)] + ["https://x/optout-a", "https://x/optout-b", "https://x/last"]
    res = client(server, "/reversed", batch_size=3).query(urls + urls[:2])  # duplicates are asked once
    assert res.opted_out == {"https://x/optout-a", "https://x/optout-b"}
    assert res.checked == set(urls) and not res.unchecked
    assert [len(r[2]) for r in server.requests] == [3, 3, 2]  # 7 URLs in 3s; the single last one is padded
    assert server.requests[-1][2] == ["https://x/last", ""]
    assert all(r[1] == f"API {KEY}" for r in server.requests)


def test_http_500_is_retried(server):
    server.fail_first = 2
    res = client(server, "/fail500").query(["https://x/optout-1", "https://x/2"])
    assert res.opted_out == {"https://x/optout-1"} and res.retries == 2 and not res.unchecked


def test_persistent_500_and_malformed_json_leave_urls_unchecked(server):
    server.fail_first = 100
    res = client(server, "/fail500", retries=2).query(["https://x/1"])
    assert res.unchecked == {"https://x/1": "http_500"} and len(server.requests) == 3
    res = client(server, "/malformed", retries=1).query(["https://x/1", "https://x/2"])
    assert res.unchecked == {"https://x/1": "malformed_json", "https://x/2": "malformed_json"}


def test_timeout_is_retried_then_unchecked(server):
    res = client(server, "/slow", retries=1, timeout_s=0.2).query(["https://x/1", "https://x/2"])
    assert set(res.unchecked.values()) == {"timeout"} and res.requests == 2


def test_partial_answers_are_completed(server):
    urls = [f"https://x/{i}" for i in range(7)] + ["https://x/optout"]
    res = client(server, "/partial").query(urls)
    assert res.checked == set(urls) and res.opted_out == {"https://x/optout"} and not res.unchecked


def test_bad_key_is_not_retried(server, caplog):
    c = SpawningClient(url=server.url("/ok"), key="wrong", retries=3, backoff_s=0.01, requests_per_second=0)
    with caplog.at_level(logging.DEBUG, logger="obelics_builder"):
        res = c.query(["https://x/1"])
    assert res.unchecked == {"https://x/1": "http_401"} and len(server.requests) == 1
    assert "wrong" not in caplog.text and "wrong" not in repr(c)


def test_no_key_is_loud_never_silent(server, monkeypatch, caplog):
    import obelics_builder.stats as stats_module

    monkeypatch.delenv("SPAWNING_OPTS_KEY", raising=False)
    monkeypatch.setattr(stats_module, "_LOGGED_NOTES", set())  # notes log once per process: an earlier crawl may have
    ctx = StageContext("optout", stats=Stats())
    with caplog.at_level(logging.WARNING, logger="obelics_builder"):
        got = spawning_lookup(["https://x/optout"], {"url": server.url("/ok")}, ctx)
    assert got == {} and server.requests == []
    assert SKIPPED_NOTE in ctx.stats.to_dict()["optout"]["notes"]
    assert "SKIPPED" in caplog.text


def test_key_and_endpoint_from_environment(server, monkeypatch, caplog):
    monkeypatch.setenv("SPAWNING_OPTS_KEY", KEY)
    monkeypatch.setenv("SPAWNING_API_URL", server.url("/ok"))
    ctx = StageContext("optout", stats=Stats())
    with caplog.at_level(logging.DEBUG):
        got = spawning_lookup(["https://x/optout", "https://x/fine"], {"retries": 0}, ctx)
    assert got == {"https://x/optout": ("spawning", "")}
    assert KEY not in caplog.text


def test_unchecked_policy(server):
    server.fail_first = 100
    ctx = StageContext("optout", stats=Stats())
    c = client(server, "/fail500", retries=0)
    assert spawning_lookup(["https://x/1"], {}, ctx, client=c) == {}
    assert any("could not be checked" in n for n in ctx.stats.to_dict()["optout"]["notes"])
    got = spawning_lookup(["https://x/1"], {"on_unchecked": "remove"}, ctx, client=c)
    assert got == {"https://x/1": ("spawning", "unchecked:http_500")}


def test_rate_limiter_spaces_requests():
    now = [0.0]
    slept = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    lim = RateLimiter(4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        lim.wait()
    assert now[0] == pytest.approx(1.0) and len(slept) == 4


def test_local_list(tmp_path):
    p = tmp_path / "optout.txt"
    p.write_text("# comment\n\nexample.com\n*.Pics.ORG\nhttps://Site.net/a/b#frag\nnot a domain\ndomain:x.io\n")
    lo = LocalOptOut.from_file(p)
    assert lo.invalid == ["not a domain"]
    assert lo.match("https://www.example.com/page") == "domain"
    assert lo.match("http://example.com:8080/") == "domain"
    assert lo.match("https://notexample.com/") is None
    assert lo.match("https://cdn.pics.org/1.jpg") == "domain"
    assert lo.match("https://site.net/a/b") == "url"
    assert lo.match("HTTPS://SITE.NET/a/b#other") == "url"
    assert lo.match("https://site.net/a/c") is None
    assert lo.match("https://x.io/") == "domain"
    assert lo.match("") is None and lo.match("http://[bad") is None


def test_c2pa_sample_is_not_allowed(shared_data):
    data = (shared_data / "images" / "opt-out-c2pa" / "sample_c2pa.png").read_bytes()
    info = c2pa.inspect(data)
    assert info.found and info.manifests == 1 and info.opted_out and info.error is None
    assert info.entries["c2pa.ai_training"] == "notAllowed"
    assert "c2pa.ai_inference" not in info.not_allowed  # inference is not a training use
    assert not info.signature_verified


def test_c2pa_absent_truncated_and_garbage(shared_data):
    assert not c2pa.inspect(b"").found
    png = (shared_data / "images" / "opt-out-c2pa" / "sample_c2pa.png").read_bytes()
    assert not c2pa.training_not_allowed(png[:3000])  # store cut off: no opt-out, no crash
    assert not c2pa.training_not_allowed(b"\xff\xd8\xff\xeb\x00\x10JP" + b"\x00" * 40)
    assert not c2pa.training_not_allowed(bytes(range(256)) * 10)
    for path in sorted((shared_data / "images" / "cc0-photos").glob("*"))[:3]:
        assert not c2pa.training_not_allowed(path.read_bytes())


def test_c2pa_jpeg_app11_segments(shared_data):
    """The same manifest store carried in JPEG APP11 segments (split in two, as large stores are)."""
    png = (shared_data / "images" / "opt-out-c2pa" / "sample_c2pa.png").read_bytes()
    store = c2pa._png_jumbf(png)
    half = len(store) // 2
    segs = []
    for z, payload in ((1, store[:half]), (2, store[:8] + store[half:])):
        body = b"JP" + (1).to_bytes(2, "big") + z.to_bytes(4, "big") + payload
        segs.append(b"\xff\xeb" + (len(body) + 2).to_bytes(2, "big") + body)
    jpeg = b"\xff\xd8" + b"".join(segs) + b"\xff\xda\x00\x02" + b"\xff\xd9"
    assert c2pa.training_not_allowed(jpeg)


def test_cbor_decoder():
    assert c2pa.cbor_loads(bytes.fromhex("a26161016162820203")) == {"a": 1, "b": [2, 3]}
    assert c2pa.cbor_loads(bytes.fromhex("7f657374726561646d696e67ff")) == "streaming"
    with pytest.raises(c2pa.C2PAParseError):
        c2pa.cbor_loads(bytes.fromhex("9bffffffffffffffff"))


def _doc(url, images=()):
    d = schema.new_document({"url": url})
    schema.add_text(d, "hello")
    for u in images:
        schema.add_image(d, {"src": u})
    return d


def test_stage_and_manifest(tmp_path):
    when = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.timezone.utc)
    docs = [_doc("https://blocked.example/p", ["https://i/1"]),
            _doc("https://ok/p1", ["https://i/spawn", "https://i/keep", "https://cdn.blocked.example/x.jpg"]),
            _doc("https://ok/p2", ["https://i/c2pa"]),
            _doc("https://spawned/p")]
    assert collect_urls(docs[:1]) == {"url": ["https://blocked.example/p", "https://i/1"], "kind": ["document", "image"]}
    ctx = StageContext("optout", stats=Stats(), resources={
        "opted_out": {"https://i/spawn": ("spawning", ""), "https://i/c2pa": ("c2pa", "c2pa.ai_training"),
                      "https://spawned/p": ("spawning", "")},
        "local": LocalOptOut.from_lines(["blocked.example"]), "removed_at": when, "spawning_skipped": False})
    out = optout_stage(docs, ctx)
    assert [d["general_metadata"]["url"] for d in out] == ["https://ok/p1", "https://ok/p2"]
    assert out[0]["images"] == [None, "https://i/keep"] and out[1]["images"] == [None]
    st = ctx.stats.to_dict()["optout"]
    assert st["removed"] == {"optout:document:local": 1, "optout:document:spawning": 1}
    assert st["images_removed"] == {"optout:image:c2pa": 1, "optout:image:local": 1, "optout:image:spawning": 1}
    part = write_manifest_part(ctx.resources["manifest"], tmp_path / "m" / "p0.parquet")
    path = merge_manifests([part, tmp_path / "m" / "absent.parquet"], tmp_path, when)
    assert path.name == "optout-manifest-2026-03-04.parquet" == manifest_name(when.date())
    rows = read_manifest(path)
    got = {(r["url"], r["kind"], r["source"], r["doc_url"]) for r in rows}
    assert got == {("https://blocked.example/p", "document", "local", "https://blocked.example/p"),
                   ("https://i/spawn", "image", "spawning", "https://ok/p1"),
                   ("https://cdn.blocked.example/x.jpg", "image", "local", "https://ok/p1"),
                   ("https://i/c2pa", "image", "c2pa", "https://ok/p2"),
                   ("https://spawned/p", "document", "spawning", "https://spawned/p")}
    assert all(r["removed_at"] == when for r in rows)
    # an empty run still leaves an (empty) dated manifest
    assert read_manifest(merge_manifests([], tmp_path / "empty", when)) == []


def test_stage_notes_skipped_spawning():
    ctx = StageContext("optout", stats=Stats(), resources={"spawning_skipped": True})
    assert len(optout_stage([_doc("https://a/")], ctx)) == 1
    assert SKIPPED_NOTE in ctx.stats.to_dict()["optout"]["notes"]


def test_publish_part_writes_rows_as_stored_and_edits_only_opted_out_images(tmp_path):
    """publish_part writes the rows it keeps as stored (no dict round trip) and rebuilds only a batch where
    opt-out removes an image position: the output equals the opt-out stage applied to whole documents."""
    import copy

    from obelics_builder.io.parquet import read_documents, write_documents
    from obelics_builder.optout.stage import optout_stage
    from obelics_builder.tasks import publish_part

    from docs_helpers import img, make_doc

    docs = [make_doc("First page text.", img(1, alt_text="é ✓"), url="https://a.example/1"),
            make_doc("Second page.", img(2), "More text.", img(3), url="https://a.example/2"),
            make_doc("Third page.", img(4), url="https://b.example/3")]
    for i, d in enumerate(docs):
        d["general_metadata"].update(warc_filename="w.warc.gz", warc_record_offset=i)
        d["node_words"] = [None if t is None else [float(i)] for t in d["texts"]]
        d["doc_words"] = float(i)
    flagged = {"https://img.example/3.jpg": ["local", "listed"], "https://b.example/3": ["spawning", ""]}

    def run(name, flags):
        out = tmp_path / name
        write_documents(out / "parts" / "paragraphs" / "k.parquet", copy.deepcopy(docs))
        (out / "flagged.json").write_text(json.dumps(flags), encoding="utf-8")
        stats = publish_part(0, "k", {"optout": {}}, str(out), str(out / "none"), str(out / "flagged.json"), "fp",
                             str(out / "parts" / "paragraphs"))
        return read_documents(out / "documents" / "part-00000.parquet"), stats["optout"]

    got, st = run("edit", flagged)
    ctx = StageContext("optout", {}, Stats(), {"opted_out": {u: tuple(v) for u, v in flagged.items()}})
    expected = schema.from_arrow(schema.to_arrow(optout_stage(copy.deepcopy(docs), ctx)))
    assert got == expected and len(got) == 2 and got[1]["texts"] == ["Second page.", None, "More text."]
    assert st["removed"] == {"optout:document:spawning": 1} and st["images_removed"] == {"optout:image:local": 1}
    untouched, st = run("none", {})  # nothing opted out: the rows exactly as stored
    assert untouched == schema.from_arrow(schema.to_arrow(copy.deepcopy(docs))) and st["documents_out"] == 3


def _url_file(path, rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"url": [u for u, _ in rows], "kind": [k for _, k in rows]}), path)


@pytest.mark.parametrize("with_key", [False, True])
def test_optout_lookups_reads_urls_only_when_spawning_can_be_asked(tmp_path, server, monkeypatch, with_key):
    """Without a key (or disabled) the run-wide lookup reads no URL on the driver (no URL plan is built) and says
    the check was skipped; with one, every distinct URL is asked once and the opted-out ones are flagged."""
    from obelics_builder.engine import Engine
    from obelics_builder.plan.lookups import optout_lookups

    if with_key:
        monkeypatch.setenv("SPAWNING_OPTS_KEY", KEY)
    else:
        monkeypatch.delenv("SPAWNING_OPTS_KEY", raising=False)
    _url_file(tmp_path / "a.urls.parquet", [("https://x/optout", "document"), ("https://x/1.jpg", "image")])
    _url_file(tmp_path / "b.urls.parquet", [("https://x/optout", "document"), ("https://x/fine", "document")])
    recipe = {"optout": {"spawning": {"url": server.url("/ok"), "retries": 0}, "c2pa": {"enabled": False}}}
    folder = tmp_path / "lookups"
    with Engine(scheduler="sync", quiet=True) as eng:
        stats = optout_lookups(folder, [tmp_path / "a.urls.parquet", tmp_path / "b.urls.parquet"], tmp_path, 0,
                               recipe, "fp", eng)
    flagged = json.loads((folder / "flagged.json").read_text())
    if with_key:
        assert flagged == {"https://x/optout": ["spawning", ""]}
        assert sorted(u for _, _, lines in server.requests for u in lines) == [
            "https://x/1.jpg", "https://x/fine", "https://x/optout"]
    else:
        assert flagged == {} and server.requests == [] and not (folder / "_urls").exists()
        assert SKIPPED_NOTE in stats.to_dict()["optout"]["notes"]
