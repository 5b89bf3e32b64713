#!/usr/bin/env python3
"""Fast extraction scoring for tuning: a mode on the dev sets, overall and per page type, in a minute or two.

    .venv/bin/python bench/extract/quick_eval.py [--mode default] [--sets aeb,readability-dev,wcxb-dev]
        [--types forum,listing] [--jobs 2] [--per-page FILE] [--pred-dir DIR]

Pages are read from ``../shared/eval/dev/SET.warc.gz`` and decoded once (``extract.charset.decode_html``, as the
crawl does); the decoded pages are cached in a pickle under the temp folder, keyed by the WARC's size and mtime and by the
decoder's source.
Extraction runs over ``--jobs`` processes; scoring is in-process with the semantics of the kit's
``extract_eval.py`` (bag-of-words P/R/F1 on lowercased ``\\w+`` tokens, macro over truth pages; image P/R/F1 on
normalised URL sets, macro over pages whose truth has images): same figures as the kit on every dev set (the full
bench, ``bench_extract.py``, runs the kit itself).  Last line: JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from multiprocessing import Pool
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

DEFAULT_EVAL = REPO.parent / "shared" / "eval"
WORD = re.compile(r"\w+")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def norm_url(u: str | None) -> str:
    """The kit's URL normalisation: whitespace and <> stripped, scheme and trailing slashes dropped."""
    u = (u or "").strip().strip("<>").strip()
    return _SCHEME.sub("", u).rstrip("/")


def prf(overlap: int, n_pred: int, n_true: int) -> tuple[float, float, float]:
    if n_pred == 0 and n_true == 0:
        return 1.0, 1.0, 1.0
    if n_pred == 0 or n_true == 0:
        return 0.0, 0.0, 0.0
    p, r = overlap / n_pred, overlap / n_true
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def bow(pred: str, true: str) -> tuple[float, float, float]:
    P, T = Counter(WORD.findall(pred.lower())), Counter(WORD.findall(true.lower()))
    return prf(sum((P & T).values()), sum(P.values()), sum(T.values()))


def read_pages(warc: Path) -> list[tuple[str, bytes, dict]]:
    """(url, payload bytes, {content-type}) of every response record."""
    from warcio.archiveiterator import ArchiveIterator
    pages = []
    with open(warc, "rb") as f:
        for rec in ArchiveIterator(f):
            if rec.rec_type != "response":
                continue
            headers = {}
            if rec.http_headers is not None:
                ct = rec.http_headers.get_header("Content-Type")
                if ct:
                    headers["content-type"] = ct
            pages.append((rec.rec_headers.get_header("WARC-Target-URI"), rec.content_stream().read(), headers))
    return pages


def decoded_pages(eval_dir: Path, name: str) -> list[tuple[str, str, int]]:
    """(url, decoded HTML, payload bytes) of a dev set, cached in a pickle under the temp folder."""
    import hashlib

    from obelics_builder.extract import charset
    from obelics_builder.extract.charset import decode_html
    warc = eval_dir / "dev" / f"{name}.warc.gz"
    st = warc.stat()
    decoder = hashlib.sha256(Path(charset.__file__).read_bytes()).hexdigest()[:12]  # a decoder change re-decodes
    cache = Path(tempfile.gettempdir()) / f"obelics-quick-eval-{name}-{st.st_size}-{int(st.st_mtime)}-{decoder}.pkl"
    if cache.exists():
        with open(cache, "rb") as f:
            return pickle.load(f)
    out = [(u, decode_html(b, h)[0], len(b)) for u, b, h in read_pages(warc)]
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        pickle.dump(out, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, cache)
    return out


def load_truth(eval_dir: Path, name: str) -> list[dict]:
    with open(eval_dir / "dev" / f"{name}.truth.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


_MODE = "default"


def _init(mode: str) -> None:
    global _MODE
    _MODE = mode


def extractor(mode: str):
    """The extraction function of a mode: ``(html, url) -> [("text", str) | ("image", meta)]``."""
    if mode == "default":
        from obelics_builder.extract.default import extract_default
        return extract_default
    if mode == "obelics":
        from obelics_builder.extract.obelics import extract_obelics
        return extract_obelics
    from obelics_builder.extract import stage
    fn = getattr(stage, "EXTRACTORS", {}).get(mode)
    if fn is None:
        raise SystemExit(f"unknown mode {mode!r}")
    return fn


def _extract_one(item: tuple[str, str]) -> tuple[str, list, list, float, str | None]:
    url, html = item
    fn = extractor(_MODE)
    t0 = time.process_time()
    try:
        nodes = fn(html, url)
        err = None
    except Exception as e:  # an error scores as an empty document
        nodes, err = [], f"{type(e).__name__}: {e}"[:200]
    dt = time.process_time() - t0
    texts = [v for k, v in nodes if k == "text"]
    images = [v["src"] for k, v in nodes if k == "image"]
    return url, texts, images, dt, err


def run(mode: str, pages: list[tuple[str, str, int]], jobs: int) -> dict[str, tuple[list, list, float, str | None]]:
    items = [(u, h) for u, h, _ in pages]
    if jobs > 1:
        with Pool(jobs, initializer=_init, initargs=(mode,)) as pool:
            res = pool.map(_extract_one, items, chunksize=8)
    else:
        _init(mode)
        res = [_extract_one(x) for x in items]
    out = {}
    for url, texts, images, dt, err in res:
        out.setdefault(norm_url(url), (texts, images, dt, err))
    return out


def score_set(truth: list[dict], preds: dict, types: set | None = None) -> tuple[dict, list[dict]]:
    rows, by_type, img_rows, per_page = [], defaultdict(list), [], []
    for t in truth:
        if types and t.get("page_type") not in types:
            continue
        texts, images, dt, err = preds.get(norm_url(t["url"]), ([], [], 0.0, "missing"))
        ptxt = "\n\n".join(x for x in texts if isinstance(x, str) and x.strip())
        s = bow(ptxt, t.get("main_text") or "")
        rows.append(s)
        pt = t.get("page_type")
        if pt:
            by_type[pt].append(s)
        rec = {"url": t["url"], "page_type": pt, "p": s[0], "r": s[1], "f1": s[2], "cpu_s": dt, "error": err}
        if "images" in t:
            T = {norm_url(u) for u in t["images"] if u}
            S = {norm_url(u) for u in images if isinstance(u, str) and u.strip()}
            img_rows.append(prf(len(T & S), len(S), len(T)))
            rec.update(img_f1=img_rows[-1][2], n_true_img=len(T), n_pred_img=len(S))
        per_page.append(rec)
    mean = lambda xs: sum(xs) / len(xs) if xs else None
    summ = {"pages": len(rows), "text_p": mean([r[0] for r in rows]), "text_r": mean([r[1] for r in rows]),
            "text_f1": mean([r[2] for r in rows])}
    if by_type:
        summ["by_type"] = {k: {"n": len(v), "p": mean([r[0] for r in v]), "r": mean([r[1] for r in v]),
                               "f1": mean([r[2] for r in v])} for k, v in sorted(by_type.items())}
    if img_rows:
        summ.update(img_p=mean([r[0] for r in img_rows]), img_r=mean([r[1] for r in img_rows]),
                    img_f1=mean([r[2] for r in img_rows]))
    summ["errors"] = sum(1 for r in per_page if r["error"] and r["error"] != "missing")
    return summ, per_page


TYPE_ORDER = ("article", "service", "forum", "listing", "product", "collection", "documentation")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", default="default")
    ap.add_argument("--sets", default="aeb,readability-dev,wcxb-dev")
    ap.add_argument("--types", help="comma list of wcxb page types to score (default: all)")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--eval", default=str(DEFAULT_EVAL))
    ap.add_argument("--per-page", help="write per-page scores (JSON lines) here")
    ap.add_argument("--pred-dir", help="write predictions (kit format, SET.MODE.jsonl) here")
    a = ap.parse_args()
    eval_dir = Path(a.eval)
    types = set(a.types.split(",")) if a.types else None
    result: dict = {"mode": a.mode}
    per_page_all = []
    for name in a.sets.split(","):
        pages = decoded_pages(eval_dir, name)
        truth = load_truth(eval_dir, name)
        if types and name == "wcxb-dev":
            keep = {norm_url(t["url"]) for t in truth if t.get("page_type") in types}
            pages = [p for p in pages if norm_url(p[0]) in keep]
        t0 = time.time()
        preds = run(a.mode, pages, a.jobs)
        wall = time.time() - t0
        summ, per_page = score_set(truth, preds, types if name == "wcxb-dev" else None)
        cpu = sum(v[2] for v in preds.values())
        mb = sum(n for _, _, n in pages) / 1e6
        summ["mb_s_cpu"] = mb / cpu if cpu else None
        summ["wall_s"] = wall
        result[name] = summ
        for r in per_page:
            r["set"] = name
        per_page_all += per_page
        if a.pred_dir:
            Path(a.pred_dir).mkdir(parents=True, exist_ok=True)
            with open(Path(a.pred_dir) / f"{name}.{a.mode}.jsonl", "w", encoding="utf-8") as f:
                for u, h, _ in pages:
                    texts, images, _, _ = preds.get(norm_url(u), ([], [], 0, None))
                    f.write(json.dumps({"url": u, "texts": texts, "images": images}, ensure_ascii=False) + "\n")
        line = (f"{name:16} n={summ['pages']:5d}  P {summ['text_p']:.3f}  R {summ['text_r']:.3f}  "
                f"F1 {summ['text_f1']:.4f}")
        if "img_f1" in summ:
            line += f"   img P {summ['img_p']:.3f} R {summ['img_r']:.3f} F1 {summ['img_f1']:.4f}"
        line += f"   {summ['mb_s_cpu'] or 0:.1f} MB/s cpu, {wall:.0f}s wall, errors {summ['errors']}"
        print(line)
        if "by_type" in summ:
            bt = summ["by_type"]
            order = [k for k in TYPE_ORDER if k in bt] + [k for k in bt if k not in TYPE_ORDER]
            print("   " + "  ".join(f"{k[:5]} {bt[k]['f1']:.3f} (P{bt[k]['p']:.2f} R{bt[k]['r']:.2f})"
                                    for k in order))
    if a.per_page:
        with open(a.per_page, "w", encoding="utf-8") as f:
            for r in per_page_all:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(json.dumps(result, default=lambda x: round(x, 4) if isinstance(x, float) else str(x),
                     separators=(",", ":")))


if __name__ == "__main__":
    main()
