#!/usr/bin/env python3
"""Extraction benchmark: quality and speed of the `default` and `obelics` modes against trafilatura 2.3.1.

    .venv/bin/python bench/extract/bench_extract.py [--eval ../shared/eval] [--traf-python PY]
        [--min-pages 1000] [--skip quality,speed,traf,linearity] [--out-dir DIR]

Quality: both modes on dev/aeb and dev/readability-dev, scored by the kit's extract_eval.py; trafilatura with
images (run_baselines.py traf-img) on the same WARCs in the same run.  Speed: MB/s of HTML (decoded str, bytes
counted as the payload) on one core, extraction only, over >= --min-pages pages (the dev pages repeated), for both
modes, trafilatura (same pages, in its own interpreter when --traf-python is given) and the selectolax Lexbor
parse-only floor.  All timings are CPU time of the process (time.process_time), so a busy shared machine does not
inflate them.  Linearity: MB/s on the smallest vs the largest third of the pages, and a synthetic 10 MB page.
Prints the figures, then one final JSON line.  trafilatura is a bench-only dependency (e.g. a venv in /tmp:
``python -m venv /tmp/trafvenv && /tmp/trafvenv/bin/pip install trafilatura==2.3.1 lxml_html_clean warcio``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from warcio.archiveiterator import ArchiveIterator  # noqa: E402

from obelics_builder.extract.charset import decode_html  # noqa: E402
from obelics_builder.extract.default import extract_default  # noqa: E402
from obelics_builder.extract.obelics import extract_obelics  # noqa: E402

SETS = ("aeb", "readability-dev")
MODES = {"default": extract_default, "obelics": extract_obelics}


def read_pages(warc: Path) -> list[tuple[str, bytes, dict]]:
    pages = []
    with open(warc, "rb") as f:
        for rec in ArchiveIterator(f):
            if rec.rec_type != "response":
                continue
            url = rec.rec_headers.get_header("WARC-Target-URI")
            headers = {}
            if rec.http_headers is not None:
                ct = rec.http_headers.get_header("Content-Type")
                if ct:
                    headers["content-type"] = ct
            pages.append((url, rec.content_stream().read(), headers))
    return pages


def to_doc(url: str, nodes: list) -> dict:
    texts, images = [], []
    for kind, value in nodes:
        if kind == "text":
            texts.append(value)
            images.append(None)
        else:
            texts.append(None)
            images.append(value["src"])
    return {"url": url, "texts": texts, "images": images}


def score(eval_dir: Path, name: str, pred: Path) -> dict:
    out = subprocess.run([sys.executable, str(eval_dir / "extract_eval.py"), "--truth",
                          str(eval_dir / "dev" / f"{name}.truth.jsonl"), "--pred", str(pred)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_mode(mode: str, decoded: list, out: Path) -> tuple[float, int]:
    fn = MODES[mode]
    t_ex, errors = 0.0, 0
    with open(out, "w", encoding="utf-8") as f:
        for url, html in decoded:
            t0 = time.process_time()
            try:
                nodes = fn(html, url)
            except Exception:  # counted; an empty document is scored
                errors += 1
                nodes = []
            t_ex += time.process_time() - t0
            f.write(json.dumps(to_doc(url, nodes), ensure_ascii=False) + "\n")
    return t_ex, errors


def quality(eval_dir: Path, traf_python: str | None, tmp: Path, res: dict) -> None:
    for name in SETS:
        warc = eval_dir / "dev" / f"{name}.warc.gz"
        pages = read_pages(warc)
        decoded = [(u, decode_html(b, h)[0]) for u, b, h in pages]
        for mode in MODES:
            pred = tmp / f"{name}.{mode}.jsonl"
            _, errors = run_mode(mode, decoded, pred)
            s = score(eval_dir, name, pred)
            res[f"{name}.{mode}"] = {k: s.get(k) for k in ("text_p", "text_r", "text_f1", "aeb4_f1", "img_p", "img_r",
                                                            "img_f1", "img_micro_f1", "img_order_common")}
            res[f"{name}.{mode}"]["errors"] = errors
        if traf_python:
            pred = tmp / f"{name}.traf.jsonl"
            subprocess.run([traf_python, str(eval_dir / "run_baselines.py"), "traf-img", str(warc), "--out",
                            str(pred)], capture_output=True, text=True, check=True)
            s = score(eval_dir, name, pred)
            res[f"{name}.trafilatura"] = {k: s.get(k) for k in ("text_p", "text_r", "text_f1", "aeb4_f1", "img_p",
                                                                 "img_r", "img_f1", "img_micro_f1", "img_order_common")}
    print("quality (text F1 = bag-of-words macro; img F1 = per-page macro)")
    print(f"  {'set':16} {'extractor':12} {'text P':>7} {'text R':>7} {'text F1':>7} {'aeb4 F1':>7} {'img P':>6} "
          f"{'img R':>6} {'img F1':>6}")
    for key, v in res.items():
        if "." not in key or not isinstance(v, dict) or "text_f1" not in v:
            continue
        name, ex = key.split(".", 1)
        f = lambda x: f"{x:.3f}" if isinstance(x, (int, float)) else "  -  "
        print(f"  {name:16} {ex:12} {f(v['text_p']):>7} {f(v['text_r']):>7} {f(v['text_f1']):>7} {f(v['aeb4_f1']):>7} "
              f"{f(v.get('img_p')):>6} {f(v.get('img_r')):>6} {f(v.get('img_f1')):>6}")


_TRAF_SPEED = r"""
import json, sys, time, trafilatura
from warcio.archiveiterator import ArchiveIterator
pages = []
for w in sys.argv[2:]:
    with open(w, "rb") as f:
        for r in ArchiveIterator(f):
            if r.rec_type == "response":
                pages.append((r.rec_headers.get_header("WARC-Target-URI"), r.content_stream().read()))
reps = max(1, -(-int(sys.argv[1]) // len(pages)))
n = nb = 0; t = 0.0
for _ in range(reps):
    for u, b in pages:
        t0 = time.process_time()
        try:
            trafilatura.extract(b, url=u, include_images=True, output_format="xml")
        except Exception:
            pass
        t += time.process_time() - t0
        n += 1; nb += len(b)
print(json.dumps({"pages": n, "mb": nb / 1e6, "s": t}))
"""


def speed(eval_dir: Path, traf_python: str | None, min_pages: int, res: dict) -> None:
    from selectolax.lexbor import LexborHTMLParser
    warcs = [eval_dir / "dev" / f"{n}.warc.gz" for n in SETS]
    pages = [p for w in warcs for p in read_pages(w)]
    decoded = [(u, decode_html(b, h)[0], len(b)) for u, b, h in pages]
    reps = max(1, -(-min_pages // len(decoded)))
    work = decoded * reps
    mb = sum(n for _, _, n in work) / 1e6
    out = {"pages": len(work), "html_mb": round(mb, 2)}
    t0 = time.process_time()
    for _, html, _ in work:
        LexborHTMLParser(html)
    out["lexbor_parse_mb_s"] = mb / (time.process_time() - t0)
    per_page = {}
    for mode, fn in MODES.items():
        t = 0.0
        times = [0.0] * len(decoded)
        for r in range(reps):
            for k, (u, html, _) in enumerate(decoded):
                t1 = time.process_time()
                try:
                    fn(html, u)
                except Exception:
                    pass
                d = time.process_time() - t1
                t += d
                times[k] += d
        out[f"{mode}_mb_s"] = mb / t
        per_page[mode] = times
    if traf_python:
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
            f.write(_TRAF_SPEED)
        try:
            r = subprocess.run([traf_python, f.name, str(len(work))] + [str(w) for w in warcs], capture_output=True,
                               text=True, check=True)
            tr = json.loads(r.stdout.strip().splitlines()[-1])
            out["trafilatura_mb_s"] = tr["mb"] / tr["s"]
            out["trafilatura_pages"] = tr["pages"]
        finally:
            os.unlink(f.name)
        out["default_vs_trafilatura"] = out["default_mb_s"] / out["trafilatura_mb_s"]
    # linearity: throughput on the smallest vs the largest third of the pages (per-page times, same runs)
    order = sorted(range(len(decoded)), key=lambda k: decoded[k][2])
    third = len(order) // 3
    for mode, times in per_page.items():
        for label, idx in (("small", order[:third]), ("large", order[-third:])):
            b = sum(decoded[k][2] for k in idx) * reps / 1e6
            out[f"{mode}_{label}_third_mb_s"] = b / sum(times[k] for k in idx)
    res["speed"] = out
    print(f"speed on {len(work)} pages, {mb:.1f} MB of HTML, one core, CPU time (extraction only)")
    print(f"  lexbor parse only  {out['lexbor_parse_mb_s']:8.1f} MB/s")
    for mode in MODES:
        print(f"  {mode:18} {out[mode + '_mb_s']:8.1f} MB/s   (small pages {out[mode + '_small_third_mb_s']:.1f}, "
              f"large pages {out[mode + '_large_third_mb_s']:.1f})")
    if "trafilatura_mb_s" in out:
        print(f"  trafilatura 2.3.1  {out['trafilatura_mb_s']:8.1f} MB/s   default = "
              f"{out['default_vs_trafilatura']:.1f}x trafilatura")


def synthetic_page(target_mb: float = 10.0) -> str:
    """A 10 MB article-like page: nested sections, paragraphs with links, lists, tables, figures."""
    unit = ("<section class='post'><h2>Heading {i}</h2><p>Paragraph {i} with some words, a "
            "<a href='/l{i}'>link</a>, and more text to read, about {i} things.</p>"
            "<ul><li>item one {i}</li><li>item two</li></ul><table><tr><td>a{i}</td><td>b</td></tr></table>"
            "<figure><img src='/img/{i}.jpg' width='640' height='480' alt='x'><figcaption>Caption {i}"
            "</figcaption></figure><div class='share'><a href='/s'>Share</a></div></section>\n")
    parts, size, i = ["<html><head><title>t</title></head><body><nav><a href='/'>Home</a></nav><article>"], 0, 0
    while size < target_mb * 1e6:
        s = unit.format(i=i)
        parts.append(s)
        size += len(s)
        i += 1
    parts.append("</article><footer>f</footer></body></html>")
    return "".join(parts)


def linearity(res: dict) -> None:
    out = {}
    for mb in (1.0, 10.0):
        html = synthetic_page(mb)
        for mode in ("default",):
            t0 = time.process_time()
            nodes = extract_default(html, "http://example.com/page")
            d = time.process_time() - t0
            out[f"synthetic_{int(mb)}mb_s"] = d
            out[f"synthetic_{int(mb)}mb_mb_s"] = len(html) / 1e6 / d
            out[f"synthetic_{int(mb)}mb_nodes"] = len(nodes)
    out["synthetic_10mb_under_2s"] = out["synthetic_10mb_s"] < 2.0
    res["linearity"] = out
    print(f"linearity (default, CPU time): synthetic 1 MB page {out['synthetic_1mb_s']:.3f} s "
          f"({out['synthetic_1mb_mb_s']:.1f} MB/s), 10 MB page {out['synthetic_10mb_s']:.3f} s "
          f"({out['synthetic_10mb_mb_s']:.1f} MB/s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--eval", default=str(REPO.parent / "shared" / "eval"))
    ap.add_argument("--traf-python", default=os.environ.get("TRAF_PYTHON"),
                    help="python with trafilatura 2.3.1 + warcio (default: $TRAF_PYTHON; skipped if unset)")
    ap.add_argument("--min-pages", type=int, default=1000)
    ap.add_argument("--skip", default="", help="comma list of: quality, speed, traf, linearity")
    ap.add_argument("--out-dir", help="keep predictions here (default: a temporary directory)")
    a = ap.parse_args()
    skip = set(filter(None, a.skip.split(",")))
    traf = None if "traf" in skip else a.traf_python
    eval_dir = Path(a.eval)
    res: dict = {"bench": "extract"}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(a.out_dir) if a.out_dir else Path(td)
        tmp.mkdir(parents=True, exist_ok=True)
        if "quality" not in skip:
            quality(eval_dir, traf, tmp, res)
        if "speed" not in skip:
            speed(eval_dir, traf, a.min_pages, res)
        if "linearity" not in skip:
            linearity(res)
    print(json.dumps(res, default=lambda x: round(x, 4) if isinstance(x, float) else str(x),
                     separators=(",", ":")))


if __name__ == "__main__":
    main()
