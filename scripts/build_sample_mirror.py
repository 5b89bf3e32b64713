#!/usr/bin/env python3
"""Build the small Common Crawl-shaped mirror bundled as ``obelics_builder/data/sample`` (dump CC-MAIN-2023-06).

    python scripts/build_sample_mirror.py [--shared ../shared] [--out obelics_builder/data/sample]
                                          [--notice obelics_builder/data/SAMPLE-NOTICE.md]

What goes in (all read from ``<shared>/data``):

* real WARCs copied byte for byte: archive-org-2008 (example.warc.gz, issue-493.warc; example.pdf.warc.gz is left out to keep the sample
  small: its captures are the CSS/JS/PNG of a PDF viewer, with almost no HTML),
  commoncrawl-2020-34-excerpt/warcfile.warc.gz, wget-2024-samples/sample-000{0,1}.warc.gz;
* the test pages of ``pages/`` wrapped as WARC ``response`` records (HTTP/1.1 200, text/html with the charset the
  page declares, original bytes) under their real URLs, one WARC per page set;
* an image archive: the archive-org-2008 WARCs (real image captures) plus ``image-archive-00000.warc.gz``, where
  every other image URL found in the sample's pages is answered with a CC0 photo: each photo is stored once as a
  ``response`` under ``http://sample.obelics-builder.invalid/cc0/<name>.jpg`` and each substituted URL is a
  ``revisit`` of it (identical payload digest).  ``image-substitutes.json.gz`` maps url -> photo name.

The build is deterministic (fixed dates, record IDs derived from content, gzip without timestamps): building twice
gives identical bytes.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import re
import shutil
import sys
import uuid
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urljoin, urlsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PIL import Image  # noqa: E402
from selectolax.lexbor import LexborHTMLParser as HTMLParser  # noqa: E402
from warcio.statusandheaders import StatusAndHeaders  # noqa: E402
from warcio.warcwriter import WARCWriter  # noqa: E402

from obelics_builder.sources.archive import ImageArchive, normalize_url  # noqa: E402
from obelics_builder.sources.commoncrawl import warc_refs_from_paths  # noqa: E402
from obelics_builder.sources.warc import iter_html_records  # noqa: E402
from obelics_builder.stats import StageContext  # noqa: E402

DUMP = "CC-MAIN-2023-06"
SEGMENT = f"crawl-data/{DUMP}/segments/sample/warc"
ARCHIVE_DIR = f"crawl-data/{DUMP}/image-archive"
PHOTO_HOST = "http://sample.obelics-builder.invalid/cc0/"
BASE_DATE = datetime(2023, 2, 1, tzinfo=timezone.utc)
ID_NAMESPACE = uuid.UUID("6f1c2a52-0b5e-4a43-9a6e-0b1e1c5e0b5e")
PHOTO_MAX_SIDE = 512
IMG_ATTRS = ("src", "data-src", "data-src-fg", "data-scroll-image", "srcset", "data-srcset", "data-lateloadsrc",
             "data-img-src", "data-original", "data-gt-lazy-src", "data-lazy", "data-lazy-src", "data-lazy-srcset",
             "src2")
SRCSET_ATTRS = ("srcset", "data-srcset", "data-lazy-srcset")

# (set name, folder under data/, files copied as-is: (source, name in the mirror))
REAL_WARCS = [
    ("archive-org-2008", "warc/archive-org-2008", [("example.warc.gz", "archive-org-2008-example.warc.gz"),
                                                  ("issue-493.warc", "archive-org-2008-issue-493.warc")]),
    ("commoncrawl-2020-34-excerpt", "warc/commoncrawl-2020-34-excerpt",
     [("warcfile.warc.gz", "commoncrawl-2020-34-excerpt.warc.gz")]),
    ("wget-2024-samples", "warc/wget-2024-samples", [("sample-0000.warc.gz", "wget-2024-sample-0000.warc.gz"),
                                                    ("sample-0001.warc.gz", "wget-2024-sample-0001.warc.gz")]),
]
PAGE_SETS = ["article-extraction-benchmark", "readability-dev", "trafilatura-cache"]


# ---------------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------------

class Writer:
    """A WARC/1.1 writer (gzip per record) with deterministic dates and record IDs."""

    def __init__(self, path: Path) -> None:
        self.fh = open(path, "wb")
        self.w = WARCWriter(self.fh, gzip=True, warc_version="1.1")
        self.n = 0
        self.name = path.name

    def _headers(self, kind: str, uri: str, extra: str = "") -> dict:
        self.n += 1
        rid = uuid.uuid5(ID_NAMESPACE, f"{self.name}|{self.n}|{kind}|{uri}|{extra}")
        return {"WARC-Date": warc_date(self.n), "WARC-Record-ID": f"<urn:uuid:{rid}>"}

    def warcinfo(self, description: str) -> None:
        body = (f"software: obelics-builder scripts/build_sample_mirror.py\r\nformat: WARC File Format 1.1\r\n"
                f"isPartOf: obelics-builder sample mirror ({DUMP})\r\ndescription: {description}\r\n").encode()
        h = self._headers("warcinfo", "", description)
        h["WARC-Filename"] = self.name
        rec = self.w.create_warc_record("", "warcinfo", payload=io.BytesIO(body), length=len(body),
                                        warc_content_type="application/warc-fields", warc_headers_dict=h)
        self.w.write_record(rec)

    def response(self, uri: str, body: bytes, content_type: str) -> dict:
        http = StatusAndHeaders("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))],
                                protocol="HTTP/1.1")
        h = self._headers("response", uri, hashlib.sha1(body).hexdigest())
        rec = self.w.create_warc_record(uri, "response", payload=io.BytesIO(body), length=len(body),
                                        http_headers=http, warc_headers_dict=h)
        self.w.write_record(rec)
        return {"date": h["WARC-Date"], "digest": rec.rec_headers.get_header("WARC-Payload-Digest")}

    def revisit(self, uri: str, refers_to: str, refers_date: str, digest: str, content_type: str) -> None:
        """A minimal identical-payload-digest revisit (written by hand: warcio's adds a block digest per record,
        which costs ~10% of the archive for thousands of tiny records)."""
        http = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n\r\n".encode()
        h = self._headers("revisit", uri, refers_to)
        head = (
            "WARC/1.1\r\n"
            "WARC-Type: revisit\r\n"
            f"WARC-Target-URI: {uri}\r\n"
            f"WARC-Date: {h['WARC-Date']}\r\n"
            f"WARC-Record-ID: {h['WARC-Record-ID']}\r\n"
            "WARC-Profile: http://netpreserve.org/warc/1.1/revisions/identical-payload-digest\r\n"
            f"WARC-Refers-To-Target-URI: {refers_to}\r\n"
            f"WARC-Refers-To-Date: {refers_date}\r\n"
            f"WARC-Payload-Digest: {digest}\r\n"
            "Content-Type: application/http; msgtype=response\r\n"
            f"Content-Length: {len(http)}\r\n\r\n"
        ).encode("utf-8")
        comp = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS + 16)
        self.fh.write(comp.compress(head + http + b"\r\n\r\n") + comp.flush())

    def close(self) -> None:
        self.fh.close()


def warc_date(n: int) -> str:
    return (BASE_DATE + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%SZ")


def gz_bytes(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


def detect_charset(body: bytes) -> str | None:
    """The charset the page declares (meta charset / http-equiv) if Python knows it, else utf-8 if it decodes."""
    import codecs

    m = _META_CHARSET.search(body[:4096])
    if m:
        name = m.group(1).decode("ascii", "replace").lower()
        try:
            codecs.lookup(name)
            return name
        except LookupError:
            pass
    try:
        body.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        return None


def html_content_type(body: bytes) -> str:
    cs = detect_charset(body)
    return f"text/html; charset={cs}" if cs else "text/html"


# ---------------------------------------------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------------------------------------------

def aeb_pages(folder: Path) -> list[tuple[str, bytes]]:
    truth = json.loads((folder / "ground-truth.json").read_text(encoding="utf-8"))
    pages = []
    for f in sorted((folder / "html").glob("*.html.gz")):
        item = f.name[: -len(".html.gz")]
        url = (truth.get(item) or {}).get("url")
        if url:
            pages.append((url, gzip.decompress(f.read_bytes())))
    return pages


def readability_url(name: str, body: bytes) -> str:
    fallback = f"http://fakehost/test/{name}.html"
    tree = HTMLParser(body.decode("utf-8", "replace"))
    for sel, attr in (('link[rel="canonical"]', "href"), ('meta[property="og:url"]', "content")):
        node = tree.css_first(sel)
        value = (node.attributes.get(attr) or "").strip() if node is not None else ""
        if value:
            url = urljoin(fallback, value)
            if urlsplit(url).scheme in ("http", "https"):
                return url
    return fallback


def readability_pages(folder: Path) -> list[tuple[str, bytes]]:
    pages = []
    for d in sorted(p for p in folder.iterdir() if (p / "source.html").is_file()):
        body = (d / "source.html").read_bytes()
        pages.append((readability_url(d.name, body), body))
    return pages


def trafilatura_pages(folder: Path) -> tuple[list[tuple[str, bytes]], list[str]]:
    evaldata = json.loads((folder / "evaldata.json").read_text(encoding="utf-8"))
    url_of: dict[str, str] = {}
    for url, entry in sorted(evaldata.items()):
        f = (entry or {}).get("file")
        if f and f not in url_of and (folder / f).is_file():
            url_of[f] = url
    pages = [(url_of[f], (folder / f).read_bytes()) for f in sorted(url_of)]
    unlisted = sorted(p.name for p in folder.glob("*.html") if p.name not in url_of)
    return pages, unlisted


# ---------------------------------------------------------------------------------------------------------------
# Image URLs
# ---------------------------------------------------------------------------------------------------------------

def srcset_urls(value: str) -> list[str]:
    """The URL of each candidate of a srcset value (commas inside URLs kept)."""
    out, i, n = [], 0, len(value)
    while i < n:
        while i < n and (value[i].isspace() or value[i] == ","):
            i += 1
        j = i
        while j < n and not value[j].isspace():
            j += 1
        url = value[i:j]
        if url.endswith(","):
            url = url.rstrip(",")
            i = j
        else:
            depth, i = 0, j
            while i < n and not (value[i] == "," and depth == 0):
                depth += {"(": 1, ")": -1}.get(value[i], 0)
                i += 1
        if url:
            out.append(url)
    return out


def obelics_absolute(src: str, page_url: str) -> str:
    """OBELICS's format_relative_to_absolute_path (reference-obelics.md §2.3 step 1)."""
    if src.startswith("//"):
        return "http:" + src
    path = re.sub(r"\.+/", "", src)
    if not path.startswith("/"):
        path = "/" + path
    return f"https://{urlsplit(page_url).netloc}{path}"


def page_image_urls(page_url: str, body: bytes) -> list[str]:
    """Every image URL a reasonable extractor could derive from the page, in page order, without duplicates."""
    try:
        tree = HTMLParser(body)
    except Exception:
        return []
    base = page_url
    node = tree.css_first("base[href]")
    if node is not None:
        href = (node.attributes.get("href") or "").strip()
        if href:
            try:
                base = urljoin(page_url, href)
            except ValueError:
                pass
    raw: list[str] = []
    for node in tree.css("img, source"):
        attrs = node.attributes
        for name in IMG_ATTRS:
            value = (attrs.get(name) or "").strip()
            if not value or (node.tag == "source" and name not in SRCSET_ATTRS):
                continue
            if name in SRCSET_ATTRS:
                raw.extend(srcset_urls(value))
            raw.append(value)
    out: list[str] = []
    seen: set[str] = set()
    for value in raw:
        if value.lower().startswith(("data:", "javascript:", "about:", "blob:", "#")):
            continue
        candidates = []
        try:
            candidates.append(urljoin(base, value))
        except ValueError:
            pass
        if not value.startswith("http"):
            candidates.append(obelics_absolute(value, page_url))
        else:
            candidates.append(value)
        for url in candidates:
            url = url.split("#", 1)[0]
            if any(c.isspace() or ord(c) < 32 for c in url):
                continue
            try:
                parts = urlsplit(url)
                if parts.scheme not in ("http", "https") or not parts.hostname:
                    continue
            except ValueError:
                continue
            key = normalize_url(url)
            if key not in seen:
                seen.add(key)
                out.append(url)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Photos
# ---------------------------------------------------------------------------------------------------------------

def eligible_photos(folder: Path) -> list[tuple[str, bytes]]:
    """(name, JPEG bytes) of the CC0 photos that pass OBELICS's filters (>= 150 px both sides, aspect <= 2)."""
    photos = []
    for f in sorted(folder.iterdir()):
        if f.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            continue
        with Image.open(f) as im:
            im.load()
            w, h = im.size
            if min(w, h) < 150 or max(w, h) / min(w, h) > 2:
                continue
            if f.stem in ("text",):  # a rendering of text, not a photo
                continue
            im = im.convert("RGB")
            scale = min(1.0, PHOTO_MAX_SIDE / max(w, h))
            if scale < 1.0:
                nw, nh = max(150, round(w * scale)), max(150, round(h * scale))
                im = im.resize((nw, nh), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=85, optimize=True)
        photos.append((f.stem, buf.getvalue()))
    return photos


def assign_photos(pages: list[list[str]], names: list[str]) -> dict[str, str]:
    """url -> photo name; greedy: the least used photo not yet used on the same page (ties by name order)."""
    use = {n: 0 for n in names}
    mapping: dict[str, str] = {}
    for urls in pages:
        on_page = {mapping[u] for u in urls if u in mapping}
        for u in urls:
            if u in mapping:
                continue
            free = [n for n in names if n not in on_page] or names
            pick = min(free, key=lambda n: (use[n], names.index(n)))
            mapping[u] = pick
            use[pick] += 1
            on_page.add(pick)
    return mapping


# ---------------------------------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------------------------------

def source_facts(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip() if path.is_file() else "(no SOURCE.txt)"


def build(shared: Path, out: Path, notice: Path | None) -> dict:
    data = shared / "data"
    if not data.is_dir():
        raise SystemExit(f"no shared data at {data}")
    tmp = out.with_name(out.name + ".building")
    if tmp.exists():
        shutil.rmtree(tmp)
    seg = tmp / SEGMENT
    seg.mkdir(parents=True)
    (tmp / ARCHIVE_DIR).mkdir(parents=True)
    (tmp / "licenses").mkdir()

    warc_paths: list[str] = []
    archive_paths: list[str] = []
    summary: dict = {"pages": {}}

    # 1. real WARCs, byte for byte
    for set_name, folder, files in REAL_WARCS:
        for src, name in files:
            shutil.copyfile(data / folder / src, seg / name)
            warc_paths.append(f"{SEGMENT}/{name}")
            if set_name == "archive-org-2008":
                archive_paths.append(f"{SEGMENT}/{name}")

    # 2. wrapped pages
    page_sets = {
        "article-extraction-benchmark": aeb_pages(data / "pages" / "article-extraction-benchmark"),
        "readability-dev": readability_pages(data / "pages" / "readability-dev"),
    }
    page_sets["trafilatura-cache"], unlisted = trafilatura_pages(data / "pages" / "trafilatura-cache")
    summary["trafilatura_unlisted"] = unlisted
    for set_name in PAGE_SETS:
        name = f"pages-{set_name}.warc.gz"
        w = Writer(seg / name)
        w.warcinfo(f"{set_name} test pages (shared/data/pages/{set_name}) wrapped as HTTP 200 responses")
        seen = set()
        for url, body in page_sets[set_name]:
            if url in seen:
                continue
            seen.add(url)
            w.response(url, body, html_content_type(body))
        w.close()
        warc_paths.append(f"{SEGMENT}/{name}")
        summary["pages"][set_name] = len(seen)

    # 3. image URLs of every HTML page of the sample, in a fixed order
    captured = ImageArchive(warc_refs_from_paths([tmp / p for p in archive_paths]))
    ctx = StageContext("read")
    per_page: list[list[str]] = []
    for p in warc_paths:
        for rec in iter_html_records(warc_refs_from_paths([tmp / p])[0], ctx):
            urls = [u for u in page_image_urls(rec["url"], rec["body"]) if u not in captured]
            if urls:
                per_page.append(urls)
    summary["html_records"] = ctx.stats.stage("read")["documents_out"]

    photos = eligible_photos(data / "images" / "cc0-photos")
    names = [n for n, _ in photos]
    mapping = assign_photos(per_page, names)
    summary["substituted_urls"] = len(mapping)
    summary["photos"] = names

    # 4. the image archive WARC: each photo once, every substituted URL as a revisit of it
    arch_name = "image-archive-00000.warc.gz"
    w = Writer(tmp / ARCHIVE_DIR / arch_name)
    w.warcinfo("CC0 photos (scikit-image data, shared/data/images/cc0-photos) served under the image URLs of the "
               "sample's pages as identical-payload revisits")
    canon: dict[str, dict] = {}
    for name, jpeg in photos:
        url = f"{PHOTO_HOST}{name}.jpg"
        canon[name] = {"url": url, **w.response(url, jpeg, "image/jpeg")}
    for url in sorted(mapping, key=normalize_url):
        c = canon[mapping[url]]
        w.revisit(url, c["url"], c["date"], c["digest"], "image/jpeg")
    w.close()
    archive_paths.append(f"{ARCHIVE_DIR}/{arch_name}")
    (tmp / ARCHIVE_DIR / "image-substitutes.json.gz").write_bytes(gz_bytes(
        (json.dumps(dict(sorted(mapping.items())), indent=0, ensure_ascii=False, sort_keys=True) + "\n").encode()))

    # 5. path lists
    (tmp / f"crawl-data/{DUMP}/warc.paths.gz").write_bytes(gz_bytes(("\n".join(warc_paths) + "\n").encode()))
    (tmp / f"crawl-data/{DUMP}/image-archive.paths.gz").write_bytes(
        gz_bytes(("\n".join(archive_paths) + "\n").encode()))

    # 6. licenses and notice
    licenses = {
        "archive-org-2008": data / "warc/archive-org-2008/LICENSE",
        "commoncrawl-2020-34-excerpt": data / "warc/commoncrawl-2020-34-excerpt/LICENSE",
        "wget-2024-samples": data / "warc/wget-2024-samples/LICENSE",
        "article-extraction-benchmark": data / "pages/article-extraction-benchmark/LICENSE",
        "readability-dev": data / "pages/readability-dev/LICENSE.md",
        "trafilatura-cache": data / "pages/trafilatura-cache/LICENSE",
        "cc0-photos": data / "images/cc0-photos/LICENSE.txt",
    }
    for key, src in licenses.items():
        shutil.copyfile(src, tmp / "licenses" / f"{key}-{src.name}")
    sources = {
        "archive-org-2008": data / "warc/archive-org-2008/SOURCE.txt",
        "commoncrawl-2020-34-excerpt": data / "warc/commoncrawl-2020-34-excerpt/SOURCE.txt",
        "wget-2024-samples": data / "warc/wget-2024-samples/SOURCE.txt",
        "article-extraction-benchmark": data / "pages/article-extraction-benchmark/SOURCE.txt",
        "readability-dev": data / "pages/readability-dev/SOURCE.txt",
        "trafilatura-cache": data / "pages/trafilatura-cache/SOURCE.txt",
        "cc0-photos": data / "images/cc0-photos/SOURCE.txt",
    }
    if notice is not None:
        notice.write_text(render_notice(sources, licenses, summary), encoding="utf-8")

    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return summary


def render_notice(sources: dict[str, Path], licenses: dict[str, Path], summary: dict) -> str:
    lines = [
        "# The bundled sample mirror: origin and licenses",
        "",
        f"`obelics_builder/data/sample/` is a tiny Common Crawl-shaped mirror (dump `{DUMP}`) built by",
        "`scripts/build_sample_mirror.py` from the project's shared test data. It exists so that the pipeline, its",
        "tests and its tutorial run offline. **Everything in it is a test fixture.** The web pages belong to their",
        "authors and publishers; they are bundled only to exercise the software and must not be redistributed as a",
        "dataset. The license texts of the source repositories are in `sample/licenses/`.",
        "",
        "## Images",
        "",
        "Only the images of the archive-org-2008 WARCs are real captures of the pages' images. **Every other image**",
        "**URL of the sample's pages is answered by a substitute**: one of the CC0 / public-domain photos listed",
        "below (scikit-image sample data), re-encoded as JPEG, stored once under",
        f"`{PHOTO_HOST}<name>.jpg` and served under the page's image URL as a WARC `revisit`",
        "(identical payload digest). `crawl-data/CC-MAIN-2023-06/image-archive/image-substitutes.json.gz` maps each",
        f"substituted URL to its photo ({summary['substituted_urls']} URLs, photos: {', '.join(summary['photos'])}).",
        "An image in a document built from the sample is therefore *not* the image the page showed.",
        "",
        "## Contents",
        "",
        f"- {summary['html_records']} HTML response records (status 200) in the WARCs listed by `warc.paths.gz`.",
    ]
    for k, v in summary["pages"].items():
        lines.append(f"- `pages-{k}.warc.gz`: {v} pages of `{k}` wrapped as HTTP/1.1 200 `text/html` responses "
                     "(original bytes; fixed WARC-Dates).")
    if summary.get("trafilatura_unlisted"):
        lines.append(f"- trafilatura-cache pages without a URL in `evaldata.json` are left out: "
                     f"{', '.join(summary['trafilatura_unlisted'])}.")
    lines += ["- the real WARCs of archive-org-2008, commoncrawl-2020-34-excerpt and wget-2024-samples, copied "
              "byte for byte.", "", "## Sources (facts copied from each set's SOURCE.txt)", ""]
    for key, src in sources.items():
        lines += [f"### {key}", "", f"License file: `sample/licenses/{key}-{licenses[key].name}`", "", "```",
                  source_facts(src), "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared", help="the shared/ folder (default ../shared)")
    ap.add_argument("--out", type=Path, default=REPO / "obelics_builder" / "data" / "sample")
    ap.add_argument("--notice", type=Path, default=REPO / "obelics_builder" / "data" / "SAMPLE-NOTICE.md",
                    help="where to write SAMPLE-NOTICE.md ('-' to skip)")
    args = ap.parse_args(argv)
    notice = None if str(args.notice) == "-" else args.notice
    summary = build(args.shared.resolve(), args.out.resolve(), notice)
    print(json.dumps({k: v for k, v in summary.items() if k != "trafilatura_unlisted"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
