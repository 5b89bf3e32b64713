"""sources.archive.ImageArchive on the bundled sample (real captures + CC0 substitutes) and the sample's build."""
from __future__ import annotations

import filecmp
import io
import gzip
import json
import pickle
import subprocess
import sys
import threading
import time

import pytest
from PIL import Image
from warcio.archiveiterator import ArchiveIterator

from obelics_builder.resources import SAMPLE_MIRROR
from obelics_builder.sources.archive import ImageArchive, normalize_url
from obelics_builder.sources.commoncrawl import image_archive_refs, warc_refs_from_paths

SUBS = SAMPLE_MIRROR / "crawl-data/CC-MAIN-2023-06/image-archive/image-substitutes.json.gz"


@pytest.fixture(scope="module")
def archive():
    return ImageArchive(image_archive_refs("2023-06", "sample"))


@pytest.fixture(scope="module")
def substitutes():
    return json.loads(gzip.decompress(SUBS.read_bytes()).decode("utf-8"))


def test_normalize_url():
    assert normalize_url("HTTP://Example.COM:80/a/B.jpg?x=1#frag") == "http://example.com/a/B.jpg?x=1"
    assert normalize_url("<https://example.com:443>") == "https://example.com/"
    assert normalize_url("https://example.com:8443/x") == "https://example.com:8443/x"


def test_normalize_url_fast_path_equals_the_parsed_key(substitutes):
    """The as-is fast path gives the key the parse gives: on the sample's URLs and on seeded random strings built
    from the characters where the two could differ (case, ports, user info, brackets, empty queries, fragments,
    surrounding <> and spaces, tabs, Unicode spaces, controls)."""
    import random

    from obelics_builder.sources.archive import _KEY_AS_IS, _normalize_url_parsed

    urls = list(substitutes)
    assert sum(1 for u in urls if _KEY_AS_IS.fullmatch(u)) > len(urls) // 2  # the fast path is taken
    rng = random.Random(7)
    alphabet = list("aZ09._~-/?#:@[]<> \t\n%!$&'()*+,;=\u00e9\u3000\x85\x7f\x00") + [
        "http://", "https://", "HTTP://", "//", ":80", ":443", "www.", ".com", "/a/b.jpg"]
    for _ in range(60_000):
        u = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        if rng.random() < 0.7:
            u = rng.choice(["http://", "https://", "HTTP://", "http://Ex.com", "https://a.b.c/", ""]) + u
        urls.append(u)
    for u in urls:
        assert normalize_url(u) == _normalize_url_parsed(u), u


def test_substituted_urls_resolve_to_jpeg(archive, substitutes):
    assert len(substitutes) > 1000
    assert all(u in archive for u in substitutes)
    for url in sorted(substitutes)[:: max(1, len(substitutes) // 60)]:
        hit = archive.lookup(url)
        assert hit is not None and hit.status == 200
        assert hit.headers["content-type"] == "image/jpeg"
        with Image.open(io.BytesIO(hit.body)) as im:
            im.load()
            assert im.format == "JPEG" and min(im.size) >= 150 and max(im.size) / min(im.size) <= 2
    # the same photo under two URLs is the same bytes
    by_photo: dict[str, list[str]] = {}
    for u, p in substitutes.items():
        by_photo.setdefault(p, []).append(u)
    urls = next(v for v in by_photo.values() if len(v) >= 2)
    assert archive.lookup(urls[0]).body == archive.lookup(urls[1]).body
    assert archive.lookup(urls[0] + "#fragment") is not None  # fragments do not matter
    assert archive.lookup("http://never.example.invalid/x.jpg") is None


def test_archive_org_images_are_real_bytes(archive, shared_data):
    src = shared_data / "warc/archive-org-2008/example.warc.gz"
    checked = 0
    with open(src, "rb") as fh:
        for rec in ArchiveIterator(fh):
            if rec.rec_type != "response" or rec.http_headers is None:
                continue
            ctype = rec.http_headers.get_header("Content-Type") or ""
            if rec.http_headers.get_statuscode() == "200" and ctype.startswith("image/"):
                url = rec.rec_headers.get_header("WARC-Target-URI")
                body = rec.content_stream().read()
                hit = archive.lookup(url)
                assert hit is not None and hit.status == 200 and hit.body == body
                assert hit.headers["content-type"] == ctype
                Image.open(io.BytesIO(hit.body)).load()
                checked += 1
    assert checked >= 40


def test_non_200_and_revisits_of_real_warcs(shared_data):
    arch = ImageArchive(warc_refs_from_paths([shared_data / "warc/archive-org-2008/issue-493.warc",
                                              shared_data / "warc/archive-org-2008/example.warc.gz"]))
    statuses = {e.status for e in arch.index.values()}
    assert 404 in statuses and 200 in statuses
    url404 = next(u for u, e in arch.index.items() if e.status == 404)
    assert arch.lookup(url404).status == 404
    redirect = next(u for u, e in arch.index.items() if e.status in (301, 302))
    assert "location" in arch.lookup(redirect).headers


def test_small_cap_pickle_threads_and_saved_index(archive, substitutes, tmp_path):
    url = next(iter(sorted(substitutes)))
    small = ImageArchive(archive.refs, max_bytes=1000)
    hit = small.lookup(url)
    assert len(hit.body) == 1001  # cut just past the cap, so callers see it is too large

    clone = pickle.loads(pickle.dumps(archive))
    assert len(clone) == len(archive) and clone.lookup(url).body == archive.lookup(url).body

    fresh = ImageArchive(archive.refs)  # index built lazily, once, under a lock
    urls = sorted(substitutes)[:200]
    errors: list = []

    def work(k):
        try:
            for u in urls[k::4]:
                assert fresh.lookup(u).status == 200
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []

    p = tmp_path / "index.json"
    archive.save_index(p)
    loaded = ImageArchive.load_index(p)
    assert len(loaded) == len(archive) and loaded.lookup(url).body == archive.lookup(url).body


def test_damaged_archive_file_is_skipped(tmp_path, shared_data):
    bad = tmp_path / "bad.warc.gz"
    bad.write_bytes(b"\x1f\x8b\x08garbage" * 50)
    arch = ImageArchive(warc_refs_from_paths([bad, tmp_path / "missing.warc.gz",
                                              shared_data / "warc/archive-org-2008/issue-493.warc"]))
    assert len(arch) > 0 and arch.index_errors == 2


def test_sample_notice_and_licenses():
    notice = (SAMPLE_MIRROR.parent / "SAMPLE-NOTICE.md").read_text(encoding="utf-8")
    for key in ("archive-org-2008", "article-extraction-benchmark", "readability-dev", "trafilatura-cache",
                "cc0-photos", "substitute"):
        assert key in notice
    assert len(list((SAMPLE_MIRROR / "licenses").iterdir())) >= 7


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_rebuild_is_byte_identical(tmp_path, repo, shared_data):
    out = tmp_path / "sample"
    t0 = time.time()
    subprocess.run([sys.executable, str(repo / "scripts/build_sample_mirror.py"), "--shared", str(shared_data.parent),
                    "--out", str(out), "--notice", str(tmp_path / "NOTICE.md")], check=True, capture_output=True)
    cmp = filecmp.dircmp(SAMPLE_MIRROR, out)

    def differences(c) -> list:
        bad = c.left_only + c.right_only + c.funny_files
        _, mismatch, errors = filecmp.cmpfiles(c.left, c.right, c.common_files, shallow=False)
        bad += mismatch + errors
        for sub in c.subdirs.values():
            bad += differences(sub)
        return bad

    assert differences(cmp) == []
    assert (tmp_path / "NOTICE.md").read_bytes() == (SAMPLE_MIRROR.parent / "SAMPLE-NOTICE.md").read_bytes()
    assert time.time() - t0 < 120
