"""A small crawl output folder for the report tests: kept documents, scored parts, an image table and stats.json."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from obelics_builder.io.parquet import write_documents
from obelics_builder.schema import add_image, add_text, new_document

PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "horse.png", "coins.png"]
NSFW_PHOTO = "brick.png"   # flagged NSFW in the image table: must never be shown
EVIL = '<script>window.__pwned = 1; console.error("pwned")</script><img src=x onerror="window.__pwned=2">'

FILTERS = """\
name: report-test
wordlists: {}
node:
  standardize_whitespace: true
  number_words: {enabled: true, min: 4, max: 1000}
  stopwords: {enabled: true, min: 0.3}
doc:
  number_images: {enabled: true, min: 1, max: 30}
  number_words: {enabled: true, min: 10, max: 2000}
  stopwords: {enabled: true, min: 0.35}
  lang_id: {enabled: true, languages: [en], min: 0.8}
image:
  formats: [jpg, jpeg, png, webp]
  min_size: 150
  max_size: 20000
  max_aspect_ratio: 2.0
"""

IMAGE_SCHEMA = pa.schema([
    ("url", pa.string()), ("status", pa.int32()), ("error", pa.string()), ("source", pa.string()),
    ("bytes", pa.int64()), ("seconds", pa.float64()), ("attempts", pa.int32()), ("sha256", pa.string()),
    ("width", pa.int32()), ("height", pa.int32()), ("format", pa.string()), ("reason", pa.string()),
    ("data", pa.binary()), ("nsfw", pa.float64()),
])


def img_url(name: str) -> str:
    return f"https://img.example.org/photos/{name}"


def _words(text: str) -> float:
    return float(len(text.split()))


def _kept_doc(i: int, photos: list[str], text_a: str, text_b: str, url: str | None = None) -> dict:
    d = new_document({"url": url or f"https://site{i}.example.com/article-{i}", "warc_filename": "w1.warc.gz",
                      "warc_record_offset": 100 * i, "dump": "CC-MAIN-2023-06", "fetch_date": "2023-02-01T00:00:00Z",
                      "language": "en", "language_score": 0.97})
    add_text(d, text_a)
    for p in photos:
        add_image(d, {"src": img_url(p), "unformatted_src": p, "alt_text": f"a photo: {p}",
                      "original_width": 512, "original_height": 512, "format": p.rsplit(".", 1)[1]})
    add_text(d, text_b)
    node_words, node_stop = [], []
    for t in d["texts"]:
        if t is None:
            node_words.append(None)
            node_stop.append(None)
        else:
            paras = [p for p in t.split("\n\n") if p.strip()]
            node_words.append([_words(p) for p in paras])
            node_stop.append([0.45 for _ in paras])
    d["node_words"], d["node_stopwords"] = node_words, node_stop
    d["doc_words"] = sum(_words(t) for t in d["texts"] if t)
    d["doc_lang_score"] = 0.97
    d["doc_stopwords"] = 0.42
    return d


def build_out(out: Path, photos_dir: Path) -> dict:
    """Write OUT and return what the tests need to know about it."""
    out.mkdir(parents=True, exist_ok=True)
    filters = out / "filters-test.yaml"
    filters.write_text(FILTERS, encoding="utf-8")

    prose = ("The harbour was quiet in the early morning, and the fishing boats were still tied to the pier while "
             "the gulls circled over the water.")
    kept = [
        _kept_doc(0, PHOTOS[:2], prose, "Later that day the market opened and the town filled with visitors."),
        _kept_doc(1, PHOTOS[2:4], "A rocket stood on the pad.\n\nThe countdown began at dawn and went on for hours.",
                  EVIL + " is what an attacker would write in a paragraph."),
        _kept_doc(2, [PHOTOS[4], NSFW_PHOTO], prose, "The horse walked slowly back to the stable at the end of it."),
        _kept_doc(3, [PHOTOS[5]], "Old coins were found in a field near the river by a farmer and his dog.",
                  "They are now in the museum of the town, next to the old map of the valley.",
                  url="javascript:alert(1)//" + EVIL),
    ]
    write_documents(out / "documents" / "part-00000.parquet", kept)

    # scored: kept docs plus removed material
    removed_doc = _kept_doc(10, [PHOTOS[0]], "Buy now buy now buy now cheap cheap.", "Click here.")
    removed_doc["doc_stopwords"] = 0.05          # below doc stopwords min 0.35
    short_par = _kept_doc(11, [PHOTOS[1]], prose + "\n\nToo short here", "Menu")  # "Menu": 1 word < 4
    short_par["node_stopwords"][0][1] = 0.5
    lowstop = _kept_doc(12, [PHOTOS[2]], "Zebra quantum xylophone jacket " * 3, prose)
    lowstop["node_stopwords"][0] = [0.0]           # below node stopwords min 0.3
    german = _kept_doc(13, [PHOTOS[3]], prose, prose)
    german["general_metadata"]["language"] = "de"
    german["doc_lang_score"] = 0.3
    scored = kept + [removed_doc, short_par, lowstop, german]
    write_documents(out / "parts" / "scored" / "w1-00000000.parquet", scored)

    rows = []
    for name in PHOTOS + [NSFW_PHOTO]:
        data = (photos_dir / name).read_bytes()
        rows.append({"url": img_url(name), "status": 200, "error": None, "source": "archive", "bytes": len(data),
                     "seconds": 0.01, "attempts": 1, "sha256": hashlib.sha256(data).hexdigest(), "width": 512,
                     "height": 512, "format": name.rsplit(".", 1)[1], "reason": None, "data": data,
                     "nsfw": 0.97 if name == NSFW_PHOTO else 0.01})
    rows.append({"url": "https://img.example.org/tiny.png", "status": 200, "error": None, "source": "web",
                 "bytes": 90, "seconds": 0.02, "attempts": 1, "sha256": None, "width": 20, "height": 20,
                 "format": "png", "reason": "too_small", "data": None, "nsfw": None})
    rows.append({"url": "https://img.example.org/gone" + EVIL, "status": 404, "error": "HTTP 404 " + EVIL,
                 "source": "web", "bytes": 0, "seconds": 0.02, "attempts": 2, "sha256": None, "width": None,
                 "height": None, "format": None, "reason": "http_404", "data": None, "nsfw": None})
    table = pa.table({c: [r[c] for r in rows] for c in IMAGE_SCHEMA.names}, schema=IMAGE_SCHEMA)
    (out / "images" / "table").mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out / "images" / "table" / "part-00000.parquet")

    n_img_kept = sum(1 for d in kept for t in d["texts"] if t is None)
    n_par_kept = sum(len([p for p in t.split("\n\n") if p.strip()]) for d in kept for t in d["texts"] if t)

    def stage(di, do, ni, no, ii, io_, removed=None, nodes_removed=None, images_removed=None, errors=None, ex=None,
              cpu=0.25):
        s = {"documents_in": di, "documents_out": do, "nodes_in": ni, "nodes_out": no, "images_in": ii,
             "images_out": io_, "removed": removed or {}, "nodes_removed": nodes_removed or {},
             "images_removed": images_removed or {}, "errors": errors or {}, "examples": ex or [],
             "seconds": 0.5, "cpu_seconds": cpu, "notes": []}
        if cpu is None:  # a stats.json written before CPU seconds were counted
            del s["cpu_seconds"]
        return s

    stages = {
        "read": stage(12, 11, 0, 0, 0, 0, errors={"bad_record": 1},
                      ex=[{"reason": "bad_record", "file": "w1.warc.gz", "offset": 42, "message": EVIL}]),
        "extract": stage(11, 9, 0, 30, 0, 14, removed={"no_content": 2}, cpu=1.75),
        "text_scores": stage(9, 9, 30, 30, 14, 14),
        "text_filter": stage(9, 6, 30, 19, 14, 9, removed={"doc:stopwords": 1, "doc:lang_id": 1, "doc:number_words": 1},
                             nodes_removed={"node:number_words": 5, "node:stopwords": 6}),
        "url_dedup": stage(6, 5, 19, 17, 9, 8, removed={"duplicate_url": 1}),
        "image_rules": stage(5, 5, 17, 17, 8, 8, cpu=None),
        "images": stage(5, 5, 17, 17, 8, n_img_kept, images_removed={"http_404": 8 - n_img_kept}),
        "final": stage(5, 4, 17, n_par_kept, n_img_kept, n_img_kept, removed={"no_images": 1},
                       nodes_removed={"spam": 17 - n_par_kept} if n_par_kept < 17 else {}),
        "image_fetch": stage(9, 7, 0, 0, 0, 0, removed={"too_small": 1, "http_404": 1}, cpu=2.5),
    }
    stats = {
        "run": {"obelics_builder_version": "0.1.0", "dump": "CC-MAIN-2023-06", "warcs": ["w1.warc.gz"],
                "recipe": "pipelines/obelics.yaml", "filters": str(filters), "started": "2026-01-01T00:00:00+00:00",
                "seconds": 3.2},
        "summary": {"records_in": 12, "documents": 4, "images": n_img_kept, "paragraphs": n_par_kept,
                    "unique_image_urls": 9, "image_urls_usable": 7, "accounted": True, "accounting_problems": []},
        "notes": ["text_filter: perplexity filter disabled: no model configured"],
        "stages": stages,
    }
    (out / "stats.json").write_text(json.dumps(stats, indent=1), encoding="utf-8")
    shown = sum(1 for d in kept for t, u in zip(d["texts"], d["images"]) if t is None and not u.endswith(NSFW_PHOTO))
    return {"stats": stats, "images_shown": shown, "nsfw_hidden": 1, "documents": len(kept)}
