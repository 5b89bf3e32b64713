"""The per-URL image table (fetch -> decode -> §4.2 filters) and the stage that applies it to documents."""
from __future__ import annotations

import io
from dataclasses import dataclass, field

from PIL import Image

from obelics_builder import schema
from obelics_builder.images.apply import apply_image_table, apply_images_stage, convert_rendered
from obelics_builder.images.table import (
    TABLE_COLUMNS,
    banned_url,
    build_image_table,
    image_filter_config,
    size_problem,
    table_by_url,
)
from obelics_builder.recipe import load_filters
from obelics_builder.stats import StageContext, Stats, run_stage


def encode(w, h, fmt="PNG", mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (w, h), 90).save(buf, fmt)
    return buf.getvalue()


@dataclass
class Hit:
    status: int
    headers: dict = field(default_factory=dict)
    body: bytes = b""


class FakeArchive:
    def __init__(self, records):
        self.records = records

    def lookup(self, url):
        return self.records.get(url)


U = "https://img.example/"
IMAGES = {
    U + "ok.png": encode(300, 200),
    U + "ok.jpg": encode(200, 300, "JPEG"),
    U + "ok.webp": encode(400, 400, "WEBP"),
    U + "small.png": encode(100, 300),
    U + "wide.png": encode(450, 200),  # 2.25 > 2
    U + "tall.png": encode(160, 330),  # 1/2.06 < 1/2
    U + "anim.gif": encode(300, 300, "GIF"),
    U + "huge.png": encode(20001, 160, mode="L"),
    U + "garbage.png": b"<html>404 page served as 200</html>",
}
ARCHIVE = FakeArchive({
    **{u: Hit(200, {"content-type": "image/png"}, b) for u, b in IMAGES.items()},
    U + "gone.png": Hit(404),
})
FILTERS = {"image": {"formats": ["jpg", "jpeg", "png", "webp"], "min_size": 150, "max_size": 20000,
                     "max_aspect_ratio": 2.0, "max_pixels": 89478485}}
OFFLINE = {"network": False}


def test_build_image_table_rows_and_filters():
    urls = list(IMAGES) + [U + "gone.png", U + "not-archived.png", U + "ok.png"]
    rows = build_image_table(urls, ARCHIVE, OFFLINE, FILTERS)
    assert [r["url"] for r in rows] == list(dict.fromkeys(urls))  # one row per unique URL, first-seen order
    assert all(tuple(r) == TABLE_COLUMNS for r in rows)
    by = table_by_url(rows)
    expected = {
        "ok.png": None, "ok.jpg": None, "ok.webp": None, "small.png": "too_small", "wide.png": "aspect_ratio",
        "tall.png": "aspect_ratio", "anim.gif": "format", "huge.png": "too_large_dimensions",
        "garbage.png": "undecodable", "gone.png": "http_404", "not-archived.png": "not_in_archive",
    }
    assert {u[len(U):]: r["reason"] for u, r in by.items()} == expected
    ok = by[U + "ok.png"]
    assert ok["data"] == IMAGES[U + "ok.png"] and (ok["width"], ok["height"], ok["format"]) == (300, 200, "png")
    assert ok["source"] == "archive" and ok["status"] == 200 and ok["bytes"] == len(ok["data"]) and ok["sha256"]
    assert by[U + "ok.jpg"]["format"] == "jpeg"
    # unusable rows never carry bytes, but keep what was measured
    assert all(r["data"] is None for r in rows if r["reason"])
    assert by[U + "anim.gif"]["format"] == "gif" and by[U + "anim.gif"]["width"] == 300
    assert by[U + "gone.png"]["status"] == 404 and by[U + "gone.png"]["error"] == "http_404"


def test_pixel_limit_from_filter_config():
    rows = build_image_table([U + "ok.webp"], ARCHIVE, OFFLINE, {"image": {**FILTERS["image"], "max_pixels": 1000}})
    assert rows[0]["reason"] == "too_many_pixels" and rows[0]["data"] is None


def test_filter_config_is_the_projects():
    cfg = image_filter_config(load_filters("obelics"))
    assert cfg["min_size"] == 150 and cfg["max_size"] == 20000 and cfg["max_aspect_ratio"] == 2.0
    assert set(cfg["formats"]) == {"jpg", "jpeg", "png", "webp"}


def test_size_problem_edges():
    cfg = image_filter_config(FILTERS)
    assert size_problem(150, 150, cfg) is None and size_problem(300, 150, cfg) is None
    assert size_problem(149, 200, cfg) == "too_small"
    assert size_problem(20001, 15000, cfg) == "too_large_dimensions"
    assert size_problem(301, 150, cfg) == "aspect_ratio" and size_problem(150, 301, cfg) == "aspect_ratio"


def test_banned_url_is_plain_case_sensitive_substring():
    words = ["logo", "button", "icon", "sex"]
    assert banned_url("https://cdn.example/site-logo.png", words) == "logo"
    assert banned_url("https://www.essex.ac.uk/photo.jpg", words) == "sex"  # domain included, as OBELICS did
    assert banned_url("https://cdn.example/LOGO.png", words) is None
    assert banned_url("https://cdn.example/cat.png", words) is None


# ---------------------------------------------------------------------------------------------------------------
# applying the table
# ---------------------------------------------------------------------------------------------------------------

def make_doc(images: list[dict]) -> dict:
    doc = schema.new_document({"url": "https://site.example/page"})
    schema.add_text(doc, "Intro paragraph.")
    for meta in images:
        schema.add_image(doc, meta)
        schema.add_text(doc, "Text after an image.")
    doc["node_words"] = [[2.0] if t is not None else None for t in doc["texts"]]
    doc["image_score"] = [None if t is not None else 0.5 for t in doc["texts"]]
    return doc


def test_apply_image_table():
    rows = build_image_table(list(IMAGES) + [U + "gone.png"], ARCHIVE, OFFLINE, FILTERS)
    table = table_by_url(rows)
    doc = make_doc([
        {"src": U + "ok.png", "alt_text": "a", "rendered_width": "50%", "rendered_height": 180},  # 150 px: kept
        {"src": U + "ok.jpg", "rendered_width": "40%"},  # 80 px -> rendered_size
        {"src": U + "ok.webp", "rendered_width": "wide", "rendered_height": 160},  # unparsable -> deleted
        {"src": U + "gone.png"},
        {"src": U + "small.png"},
        {"src": U + "never-fetched.png"},
        {"src": U + "ok.png"},
    ])
    ctx = StageContext("images", config=FILTERS, stats=Stats())
    [out] = run_stage(lambda d, c: apply_image_table(d, table, c), [doc], ctx)
    schema.validate(out)
    kept = [m for m in out["metadata"] if m is not None]
    assert [m["src"] for m in kept] == [U + "ok.png", U + "ok.webp", U + "ok.png"]
    m0 = kept[0]
    assert m0["rendered_width"] == 150 and m0["rendered_height"] == 180 and m0["alt_text"] == "a"
    assert (m0["original_width"], m0["original_height"], m0["format"]) == (300, 200, "png")
    assert m0["sha256"] == table[U + "ok.png"]["sha256"]
    assert "rendered_width" not in kept[1] and kept[1]["format"] == "webp"
    # aligned score columns followed the positions
    assert len(out["node_words"]) == len(out["texts"]) == len(out["image_score"])
    assert all((s is None) == (t is None) for s, t in zip(out["node_words"], out["texts"]))
    s = ctx.stats.to_dict()["images"]
    assert s["images_removed"] == {"image:rendered_size": 1, "image:http_404": 1, "image:too_small": 1,
                                   "image:not_fetched": 1}
    assert s["images_in"] == 7 and s["images_out"] == 3
    assert s["documents_in"] == s["documents_out"] == 1


def test_apply_images_stage_reads_table_from_resources():
    table = table_by_url(build_image_table([U + "ok.png", U + "wide.png"], ARCHIVE, OFFLINE, FILTERS))
    docs = [make_doc([{"src": U + "ok.png"}]), make_doc([{"src": U + "wide.png"}])]
    ctx = StageContext("images", config={"filters_config": FILTERS}, stats=Stats(), resources={"image_table": table})
    out = apply_images_stage(docs, ctx)
    assert [schema.n_images(d) for d in out] == [1, 0]
    assert ctx.stats.to_dict()["images"]["images_removed"] == {"image:aspect_ratio": 1}


def test_convert_rendered():
    assert convert_rendered("50%", 301) == 150 and convert_rendered("100%", 640) == 640
    assert convert_rendered(300, 10) == 300 and convert_rendered("250px", 10) == 250
    assert convert_rendered("12.7", 10) == 12
    assert convert_rendered("auto", 10) is None and convert_rendered(None, 10) is None
    assert convert_rendered("nan%", 10) is None


class CountingDetector:
    """A stand-in NSFW detector: a score from the image's mean colour; counts the images it saw."""

    name = "counting"
    size = 320

    def __init__(self, fail=False):
        self.seen, self.fail = [], fail

    def score(self, images):
        if self.fail:
            raise RuntimeError("model broke")
        self.seen += [im.size for im in images]
        return [round(sum(im.convert("L").resize((1, 1)).getpixel((0, 0)) for _ in [0]) / 255, 4) for im in images]


def test_table_scores_each_distinct_body_once_and_skips_rejected():
    from obelics_builder.images.nsfw import BatchScorer

    big = encode(1800, 1200, "JPEG")
    urls = [U + f"copy{i}.jpg" for i in range(5)] + [U + "ok.png", U + "small.png", U + "wide.png"]
    archive = FakeArchive({**{u: Hit(200, {}, big) for u in urls[:5]},
                           **{u: Hit(200, {}, IMAGES[u]) for u in urls[5:]}})
    det = CountingDetector()
    rows = {r["url"]: r for r in build_image_table(urls, archive, OFFLINE, FILTERS, scorer=BatchScorer(det, 2))}
    assert sorted(det.seen) == sorted([(300, 200), (450, 300)])  # one model input per distinct usable body
    copies = [rows[u] for u in urls[:5]]
    assert len({(r["nsfw"], r["phash"], r["sha256"]) for r in copies}) == 1 and copies[0]["nsfw"] is not None
    assert rows[U + "ok.png"]["nsfw"] is not None
    for u, why in ((U + "small.png", "too_small"), (U + "wide.png", "aspect_ratio")):
        r = rows[u]
        assert r["reason"] == why and r["phash"] is None and r["nsfw"] is None  # judged on the header
        assert (r["width"], r["height"], r["format"]) == ((100, 300, "png") if why == "too_small" else (450, 200, "png"))


def test_table_scorer_failure_leaves_rows_unscored():
    from obelics_builder.images.nsfw import BatchScorer

    rows = build_image_table([U + "ok.png", U + "ok.jpg"], ARCHIVE, OFFLINE, FILTERS,
                             scorer=BatchScorer(CountingDetector(fail=True), 16))
    assert [r["reason"] for r in rows] == [None, None] and [r["nsfw"] for r in rows] == [None, None]
