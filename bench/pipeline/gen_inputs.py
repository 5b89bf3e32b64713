"""Inputs of bench/pipeline: WARCs of real, unique pages (with a small share of duplicates) and an image archive.

Pages: every distinct HTML response of the bundled sample mirror (its real WARCs and ``../shared/data/pages``
wrapped under their real URLs) and of the ``../shared/eval/dev`` WARCs, deduplicated by body.  ``select_pages``
draws ``n`` of them at random so that their mean size stays near ``mean_kb`` (Common Crawl's HTML responses average
about 120 KB; the pool's mean is twice that because of a few multi-megabyte pages): a page is taken while the running
mean allows it, so the size tail is kept, only thinned.

Records (``write_page_warcs``): each selected page once under its real URL (real hosts, so per-domain work sees
real sites), plus, drawn among them, ``exact`` copies (same body on a mirror host), ``near`` copies (same URL path
with a query, one paragraph added: a near duplicate for MinHash) and ``recrawl`` copies (the same URL fetched again,
a later date: URL dedup).  Written like Common Crawl (request, response, metadata record per page, one gzip member
each) with ``bench/scale``'s record helpers, ``per_warc`` pages per WARC.

Images (``write_image_archive``): every image URL a page copy could yield (``page_image_urls`` of
``scripts/build_sample_mirror.py``) is in the archive, except a ``missing`` share (answered ``not_in_archive``,
like dead links).  The payloads are ``variants`` distinct images made from the CC0 photos of
``../shared/data/images/cc0-photos``: a random crop resized to a size drawn from a web-like mix (thumbnails below
the 150 px minimum, banners beyond the 2:1 aspect ratio, photos from 200 to 1,600 px), JPEG (quality 70-92) or PNG
(one in five).  Each variant is stored once as a ``response``; each image URL is a ``revisit`` of one variant (by
URL hash), as in the sample's own archive.  The decode, pHash and NSFW work per URL is the real one.
"""
from __future__ import annotations

import hashlib
import io
import json
import random
import sys
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
for _p in (REPO, REPO / "bench" / "scale", REPO / "scripts"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from bench_scale import _member, _warc_head  # noqa: E402  (bench/scale's gzip-per-record WARC helpers)
from build_sample_mirror import Writer, page_image_urls  # noqa: E402

MB = 1_000_000
#: bumped when the generated inputs change (a kept ``--inputs`` folder of another version is rebuilt)
GEN_VERSION = 3
IMAGE_HOST = "http://bench-images.obelics-builder.invalid/v/"


def compile_package(repo: Path, env: dict | None = None) -> None:
    """Write the bytecode of ``repo/obelics_builder`` before a measured run, as an installed package has it (pip
    compiles at install; a checkout writes it on its first import unless ``PYTHONDONTWRITEBYTECODE`` is set, as it is
    in this sandbox): otherwise every measured process pays ~0.2 CPU-s compiling ~120 modules from source, which the
    peer's installed package never does.  The files go to the checkout's ignored ``__pycache__`` folders."""
    import subprocess

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(repo) / "obelics_builder")],
                   capture_output=True, env=env)


def page_pool(dev_dir: Path) -> list[dict]:
    """{url, body, ctype} of every distinct HTML response of the sample mirror and the dev WARCs (first seen kept)."""
    from obelics_builder.sources.commoncrawl import list_warcs, warc_refs_from_paths
    from obelics_builder.sources.warc import iter_html_records
    from obelics_builder.stats import StageContext

    refs = list(list_warcs("2023-06", "sample"))
    refs += warc_refs_from_paths([str(p) for p in sorted(Path(dev_dir).glob("*.warc.gz"))])
    ctx = StageContext("read")
    seen: set[bytes] = set()
    pool = []
    for ref in refs:
        for rec in iter_html_records(ref, ctx):
            body = rec["body"] or b""
            h = hashlib.sha1(body).digest()
            if len(body) < 512 or h in seen or not (rec.get("url") or "").startswith("http"):
                continue
            seen.add(h)
            ctype = rec["http_headers"].get("content-type") or "text/html"
            pool.append({"url": rec["url"], "body": body, "ctype": ctype})
    return pool


def select_pages(pool: list[dict], n: int, mean_kb: float, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(``n`` pages whose mean size stays near ``mean_kb``, the pages left over)."""
    rng = random.Random(seed)
    order = list(range(len(pool)))
    rng.shuffle(order)
    target = mean_kb * 1000
    chosen, rest, total = [], [], 0
    for i in order:
        size = len(pool[i]["body"])
        if len(chosen) < n and (total + size) / (len(chosen) + 1) <= target or len(chosen) < n and size <= target:
            chosen.append(pool[i])
            total += size
        else:
            rest.append(pool[i])
    if len(chosen) < n:  # the pool is too small for the size target: take what is left, smallest first
        rest.sort(key=lambda p: len(p["body"]))
        k = n - len(chosen)
        chosen, rest = chosen + rest[:k], rest[k:]
    return chosen, rest


def _near_copy(body: bytes, k: int) -> bytes:
    """The page with one short paragraph added after ``<body ...>`` (or in front): a near duplicate."""
    extra = (f'<p class="updated">Updated on 2023-02-{1 + k % 27:02d}: {k % 97 + 3} comments, '
             f'{k % 13 + 1} corrections.</p>').encode()
    low = body[:200_000].lower()
    i = low.find(b"<body")
    j = body.find(b">", i) + 1 if i >= 0 else 0
    return body[:j] + extra + body[j:]


def plan_records(pages: list[dict], exact: float, near: float, recrawl: float, seed: int = 0) -> list[dict]:
    """Every page once, then the duplicate copies, shuffled: [{url, body, ctype, kind}]."""
    rng = random.Random(seed + 1)
    recs = [{**p, "kind": "unique"} for p in pages]
    n = len(pages)
    for k in range(round(n * exact)):
        p = pages[rng.randrange(n)]
        url = p["url"].split("://", 1)[1].split("/", 1)
        recs.append({**p, "kind": "exact", "url": f"https://mirror{k}.bench-mirror.net/" + (url[1] if len(url) > 1 else "")})
    for k in range(round(n * near)):
        p = pages[rng.randrange(n)]
        sep = "&" if "?" in p["url"] else "?"
        recs.append({**p, "kind": "near", "url": p["url"].split("#")[0] + f"{sep}print={k}",
                     "body": _near_copy(p["body"], k)})
    for k in range(round(n * recrawl)):
        p = pages[rng.randrange(n)]
        recs.append({**p, "kind": "recrawl"})
    rng.shuffle(recs)
    return recs


def write_page_warcs(records: list[dict], folder: Path, per_warc: int, prefix: str = "BENCH") -> list[Path]:
    """Common Crawl-shaped WARCs (request / response / metadata per page, gzip per record)."""
    import gzip

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for w in range(0, len(records), per_warc):
        path = folder / f"{prefix}-{w // per_warc:05d}.warc.gz"
        with open(path, "wb") as fh:
            info = b"software: obelics-builder bench_pipeline\r\nformat: WARC File Format 1.0\r\n"
            fh.write(gzip.compress(_warc_head("warcinfo", "", "2023-02-01T00:00:00Z", 0, len(info),
                                              ctype="application/warc-fields").replace(b"WARC-Target-URI: \r\n", b"")
                                   + info + b"\r\n\r\n", 6, mtime=0))
            for k, r in enumerate(records[w:w + per_warc], start=w + 1):
                url, body = r["url"], r["body"]
                host_path = url.split("://", 1)[1]
                host, _, path_q = host_path.partition("/")
                date = f"2023-02-0{1 + k % 9}T{k % 24:02d}:{k % 60:02d}:{(k // 60) % 60:02d}Z"
                req = f"GET /{path_q} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: CCBot/2.0\r\n\r\n".encode()
                fh.write(gzip.compress(_warc_head("request", url, date, k, len(req),
                                                  ctype="application/http; msgtype=request") + req + b"\r\n\r\n",
                                       6, mtime=0))
                block = (f"HTTP/1.1 200 OK\r\nContent-Type: {r['ctype']}\r\nContent-Length: {len(body)}\r\n\r\n"
                         ).encode() + body
                tail = block + b"\r\n\r\n"
                c = zlib.compressobj(6, zlib.DEFLATED, -15)
                head = _warc_head("response", url, date, k, len(block),
                                  extra="WARC-Identified-Payload-Type: text/html\r\n")
                fh.write(_member(head, tail, c.compress(tail) + c.flush()))
                meta = b"fetchTimeMs: 120\r\n"
                fh.write(gzip.compress(_warc_head("metadata", url, date, k, len(meta),
                                                  ctype="application/warc-fields") + meta + b"\r\n\r\n", 6, mtime=0))
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------------------------

def _size(rng: random.Random) -> tuple[int, int]:
    """A web-like image size: 10% thumbnails/icons, 8% banners, the rest photos of 200-1,600 px."""
    u = rng.random()
    if u < 0.10:
        s = rng.randrange(16, 140)
        return s, max(8, int(s * rng.uniform(0.6, 1.4)))
    if u < 0.18:
        w = rng.randrange(600, 1400)
        return w, max(60, w // rng.randrange(3, 8))
    w = int(rng.uniform(200, 1600))
    return w, max(150, int(w * rng.choice((0.5625, 0.66, 0.75, 1.0, 1.33, 0.8))))


def make_variants(photos_dir: Path, n: int, seed: int = 0) -> list[tuple[str, bytes, str]]:
    """``n`` distinct (name, bytes, content type) images cut from the CC0 photos."""
    from PIL import Image

    rng = random.Random(seed + 2)
    sources = []
    for f in sorted(Path(photos_dir).iterdir()):
        if f.suffix.lower() in (".png", ".jpg", ".jpeg"):
            with Image.open(f) as im:
                im.load()
                sources.append(im.convert("RGB"))
    if not sources:
        raise SystemExit(f"no photos in {photos_dir}")
    out = []
    for k in range(n):
        src = sources[k % len(sources)]
        w, h = src.size
        cw, ch = int(w * rng.uniform(0.5, 1.0)), int(h * rng.uniform(0.5, 1.0))
        x, y = rng.randrange(0, w - cw + 1), rng.randrange(0, h - ch + 1)
        im = src.crop((x, y, x + cw, y + ch)).resize(_size(rng), Image.Resampling.BILINEAR)
        buf = io.BytesIO()
        if rng.random() < 0.2:
            im.save(buf, format="PNG", compress_level=6)
            out.append((f"{k:05d}.png", buf.getvalue(), "image/png"))
        else:
            im.save(buf, format="JPEG", quality=rng.randrange(70, 93))
            out.append((f"{k:05d}.jpg", buf.getvalue(), "image/jpeg"))
    return out


def record_image_urls(records: list[dict]) -> list[str]:
    """Every image URL any page copy could yield, first-seen order (the body is parsed once per distinct body)."""
    seen: dict[str, None] = {}
    for r in records:
        for u in page_image_urls(r["url"], r["body"]):
            seen.setdefault(u, None)
    return list(seen)


def write_image_archive(urls: list[str], variants: list[tuple[str, bytes, str]], path: Path, missing: float,
                        seed: int = 0) -> dict:
    """The archive WARC: each variant once (``response``), each kept URL a ``revisit`` of one variant."""
    rng = random.Random(seed + 3)
    w = Writer(path)
    w.warcinfo("bench/pipeline generated image archive")
    stored = []
    for name, data, ctype in variants:
        uri = IMAGE_HOST + name
        stored.append((uri, w.response(uri, data, ctype), ctype))
    kept = 0
    for u in urls:
        if rng.random() < missing:
            continue
        uri, info, ctype = stored[int(hashlib.sha1(u.encode()).hexdigest()[:8], 16) % len(stored)]
        w.revisit(u, uri, info["date"], info["digest"], ctype)
        kept += 1
    w.fh.close()
    return {"image_urls": len(urls), "in_archive": kept, "variants": len(variants),
            "variant_mb": round(sum(len(d) for _, d, _ in variants) / MB, 1),
            "png_share": round(sum(1 for n, _, _ in variants if n.endswith(".png")) / max(1, len(variants)), 3)}


def build_inputs(folder: Path, dev_dir: Path, photos_dir: Path, n_pages: int, mean_kb: float, per_warc: int,
                 exact: float, near: float, recrawl: float, variants: int, missing: float, warmup_pages: int = 5,
                 seed: int = 0) -> dict:
    """Write ``folder/warcs/*.warc.gz``, ``folder/images.warc.gz`` and a 5-page warm-up set; return a summary."""
    folder.mkdir(parents=True, exist_ok=True)
    pool = page_pool(dev_dir)
    pages, rest = select_pages(pool, n_pages, mean_kb, seed)
    records = plan_records(pages, exact, near, recrawl, seed)
    warcs = write_page_warcs(records, folder / "warcs", per_warc)
    # warm-up pages: left-over pages with a few images each (a page with thousands would make a long warm-up)
    warm = [p for p in rest if 3 <= len(page_image_urls(p["url"], p["body"])) <= 12][:warmup_pages]
    warm = warm or [{**pages[0], "url": pages[0]["url"] + "?warmup=1"}]
    warm_warc = write_page_warcs([{**p, "kind": "unique"} for p in warm], folder / "warmup", per_warc, "WARMUP")
    imgs = make_variants(photos_dir, variants, seed)
    archive = write_image_archive(record_image_urls(records), imgs, folder / "images.warc.gz", missing, seed)
    warm_archive = write_image_archive(record_image_urls(warm), imgs[:20], folder / "warmup-images.warc.gz", 0.0,
                                       seed)
    sizes = [len(p["body"]) for p in pages]
    kinds: dict[str, int] = {}
    for r in records:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    summary = {
        "pool_pages": len(pool), "unique_pages": len(pages), "records": len(records), "kinds": kinds,
        "hosts": len({r["url"].split("/")[2] for r in records}),
        "mean_page_kb": round(sum(sizes) / len(sizes) / 1000, 1),
        "median_page_kb": round(sorted(sizes)[len(sizes) // 2] / 1000, 1),
        "html_mb": round(sum(len(r["body"]) for r in records) / MB, 1),
        "warcs": [str(p) for p in warcs], "warc_mb": round(sum(p.stat().st_size for p in warcs) / MB, 1),
        "image_archive": str(folder / "images.warc.gz"), **archive,
        "warmup_warcs": [str(p) for p in warm_warc], "warmup_archive": str(folder / "warmup-images.warc.gz"),
        "warmup_pages": len(warm), "warmup_image_urls": warm_archive["in_archive"],
    }
    (folder / "inputs.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return summary
