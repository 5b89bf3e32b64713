#!/usr/bin/env python3
"""Extraction benchmark: every extract mode and trafilatura 2.3.1 on the kit's three dev sets, in one run.

    .venv/bin/python bench/extract/bench_extract.py [--eval ../shared/eval] [--sets aeb,readability-dev,wcxb-dev]
        [--modes obelics,default] [--skip quality,speed,peer,legacy] [--traf-python PY] [--jobs 2]
        [--time-budget S] [--out-dir DIR]

Quality.  Every mode of ``obelics_builder.extract.stage.MODES`` (or ``--modes``) runs over every response record of
``dev/SET.warc.gz`` through ``stage.extract_record(record, mode, time_budget)``, the crawl's own path (payload bytes
in, charset decoding included, the crawl's default page time budget), over ``--jobs`` processes.  A rejected page
is written as an empty document and counted by reason (``empty_document`` is a removal; ``timeout``,
``parse_error``, ``extract_exception``... are errors).  A mode that cannot run here (a missing optional dependency)
prints "mode X skipped: ..." and the run goes on.  Scoring is the kit's ``extract_eval.py`` itself, run as a
subprocess on the predictions JSONL with ``--per-page``: its final JSON line gives the overall text P/R/F1, the
AEB 4-gram F1 and the image P/R/F1; per page type P/R/F1 are the means of its per-page rows grouped by the truth's
``page_type`` (the kit prints F1 per type only; ours is checked against its ``text_f1_by_type``).

Peer.  trafilatura 2.3.1 with images (``--traf-python``, default ``/tmp/trafvenv/bin/python`` when it exists), in
its own interpreter, one process: the kit's ``run_baselines.py`` traf-img extractor and XML-to-document conversion
(imported from the kit, so its predictions are the runner's), timed per page with ``time.process_time``; the
same scorer.  Create the interpreter with ``python3 -m venv /tmp/trafvenv && /tmp/trafvenv/bin/pip install -q
trafilatura==2.3.1 lxml_html_clean warcio selectolax``.

Speed.  MB/s is HTML payload bytes per CPU-second (``time.process_time``, extraction only, summed per page), so a
busy shared machine does not inflate it.  The table's MB/s come from the quality pass (each worker process times
its own pages).  The speed section runs ``default`` over wcxb-dev in this one process through ``extract_record``
(bytes in, decoding included), and beside it the decode alone and the selectolax Lexbor parse-only floor, MB/s on
the smallest and largest third of the pages, and synthetic 1 MB and 10 MB pages (no time budget).

Legacy encodings: ``bench_legacy.run(eval_dir)`` when ``bench_legacy.py`` sits beside this file; its dict is
embedded under "legacy" and its target printed.  Prints per set a table, the wcxb-dev per-type tables, a targets
block, then one JSON line: ``{"sets": {set: {mode: {...}}}, "speed": {...}, "targets": {...}, "legacy": ...}``.
"""
from __future__ import annotations

import argparse
import datetime
import inspect
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(1, str(HERE))

from warcio.archiveiterator import ArchiveIterator  # noqa: E402

from obelics_builder.extract import stage  # noqa: E402
from obelics_builder.recipe import ExtractConfig  # noqa: E402

try:
    from bench_legacy import run as legacy_run  # another bench, merged separately
except ImportError:
    legacy_run = None

SETS = ("aeb", "readability-dev", "wcxb-dev")
TYPES = ("article", "service", "forum", "listing", "product", "collection", "documentation")
DEFAULT_TRAF_PYTHON = "/tmp/trafvenv/bin/python"
#: the peer's label: not "trafilatura", which is also our --mode trafilatura (its predictions and results are apart)
PEER = "trafilatura-peer"
#: the issue's targets
WCXB_F1_MIN, TYPE_MARGIN, READ_IMG_F1_MIN, SPEED_MIN_MB_S, BIG_PAGE_MAX_S = 0.86, 0.02, 0.90, 50.0, 2.0
KIT_KEYS = ("pages", "coverage", "text_p", "text_r", "text_f1", "aeb4_f1", "img_p", "img_r", "img_f1",
            "img_micro_f1", "img_order_common")


def read_records(warc: Path) -> list[dict]:
    """Every response record as the crawl's record dict (url, body bytes, lower-cased HTTP headers, WARC charset)."""
    out = []
    with open(warc, "rb") as f:
        for rec in ArchiveIterator(f):
            if rec.rec_type != "response":
                continue
            headers: dict[str, str] = {}
            if rec.http_headers is not None:
                for name, value in rec.http_headers.headers:
                    k = str(name).strip().lower()
                    headers[k] = f"{headers[k]}, {value}" if k in headers else str(value)
            cs = rec.rec_headers.get_header("WARC-Identified-Content-Charset")
            out.append({"url": rec.rec_headers.get_header("WARC-Target-URI"), "body": rec.content_stream().read(),
                        "http_headers": headers, "warc_headers": {"WARC-Identified-Content-Charset": cs} if cs else {}})
    return out


# ---------------------------------------------------------------- our modes (worker processes share _RECORDS by fork)
_RECORDS: list[dict] = []


def extract_one(record: dict, mode: str, budget: float) -> tuple[list, list, float, str]:
    """(texts, images, CPU seconds, status) of one record; status "ok" or the rejection reason."""
    t0 = time.process_time()
    try:
        doc = stage.extract_record(record, mode, budget)
        texts, images, status = doc["texts"], doc["images"], "ok"
    except stage.ExtractionRejected as e:
        texts, images, status = [], [], e.reason
    except Exception:  # scored as an empty document, counted
        texts, images, status = [], [], "extract_exception"
    return texts, images, time.process_time() - t0, status


def _work(job: tuple[int, str, float]) -> tuple[int, list, list, float, str]:
    i, mode, budget = job
    return (i, *extract_one(_RECORDS[i], mode, budget))


def run_mode(records: list[dict], mode: str, budget: float, jobs: int) -> list[tuple[list, list, float, str]]:
    global _RECORDS
    _RECORDS = records
    work = [(i, mode, budget) for i in range(len(records))]
    if jobs > 1 and len(records) > 1:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            res = pool.map(_work, work, chunksize=4)
    else:
        res = [_work(w) for w in work]
    res.sort(key=lambda r: r[0])
    return [r[1:] for r in res]


def probe_mode(mode: str) -> str | None:
    """None when the mode runs here, else why not (a missing optional dependency, say)."""
    page = b"<html><body><article><h1>Probe</h1><p>" + b"A sentence of plain words to extract. " * 20 + \
        b"</p></article></body></html>"
    try:
        stage.extract_record({"url": "http://example.com/probe", "body": page, "http_headers": {}}, mode, 0)
    except stage.ExtractionRejected as e:  # an empty result is a fair answer; an error on this page is not
        return None if e.reason == "empty_document" else f"{e.reason} on a plain test page: {e.message}"[:300]
    except Exception as e:
        return f"{type(e).__name__}: {e}"[:300]
    return None


# ---------------------------------------------------------------- the peer, in its own interpreter
_PEER_SCRIPT = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import run_baselines as kit
ex, version = kit.make_extractor("traf-img")
out_dir, label = sys.argv[2], sys.argv[3]
for name, warc in zip(sys.argv[4::2], sys.argv[5::2]):
    n = nb = errors = 0; t = 0.0
    with open(f"{out_dir}/{name}.{label}.jsonl", "w", encoding="utf-8") as out:
        for url, b in kit.read_warc(warc):
            t0 = time.process_time()
            try:
                texts, images = ex(b, url)
            except Exception:
                errors += 1; texts, images = [], []
            t += time.process_time() - t0
            n += 1; nb += len(b)
            out.write(json.dumps({"url": url, "texts": texts, "images": images}, ensure_ascii=False) + "\n")
    print(json.dumps({"set": name, "version": version, "pages": n, "errors": errors, "mb": nb / 1e6, "cpu_s": t}),
          flush=True)
"""


def start_peer(traf_python: str, eval_dir: Path, sets: list[str], out_dir: Path) -> subprocess.Popen | str:
    """Start the peer over all sets in the background; a string says why it cannot run."""
    if not Path(traf_python).exists():
        return (f"{traf_python} not found (python3 -m venv /tmp/trafvenv && /tmp/trafvenv/bin/pip install -q "
                f"trafilatura==2.3.1 lxml_html_clean warcio selectolax)")
    chk = subprocess.run([traf_python, "-c", "import trafilatura, warcio, lxml; print(trafilatura.__version__)"],
                         capture_output=True, text=True)
    if chk.returncode != 0:
        return f"{traf_python} cannot import trafilatura/warcio/lxml: {chk.stderr.strip().splitlines()[-1:]}"
    if chk.stdout.strip() != "2.3.1":
        print(f"note: the peer is trafilatura {chk.stdout.strip()}, not 2.3.1")
    script = out_dir / "_peer_traf.py"
    script.write_text(_PEER_SCRIPT, encoding="utf-8")
    args = [traf_python, str(script), str(eval_dir), str(out_dir), PEER]
    for name in sets:
        args += [name, str(eval_dir / "dev" / f"{name}.warc.gz")]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_peer(proc: subprocess.Popen) -> dict[str, dict] | str:
    out, err = proc.communicate()
    if proc.returncode != 0:
        return f"the peer failed (exit {proc.returncode}): {err.strip().splitlines()[-1:] if err else ''}"
    return {d["set"]: d for d in map(json.loads, filter(None, out.splitlines()))}


# ---------------------------------------------------------------- scoring (the kit's extract_eval.py)
def load_types(eval_dir: Path, name: str) -> list[str | None]:
    with open(eval_dir / "dev" / f"{name}.truth.jsonl", encoding="utf-8") as f:
        return [json.loads(line).get("page_type") for line in f if line.strip()]


def score(eval_dir: Path, name: str, pred: Path, types: list) -> dict:
    """The kit's summary of one predictions file, plus P/R/F1 per page type from its per-page rows."""
    per_page = pred.with_suffix(".per-page.jsonl")
    r = subprocess.run([sys.executable, str(eval_dir / "extract_eval.py"), "--truth",
                        str(eval_dir / "dev" / f"{name}.truth.jsonl"), "--pred", str(pred), "--per-page",
                        str(per_page)], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"extract_eval.py failed on {pred}: {r.stderr.strip()[-500:]}")
    kit = json.loads(r.stdout.strip().splitlines()[-1])
    s = {k: kit[k] for k in KIT_KEYS if k in kit}
    rows = [json.loads(line) for line in per_page.read_text(encoding="utf-8").splitlines() if line.strip()]
    if any(types) and len(rows) == len(types):
        groups = defaultdict(list)
        for t, row in zip(types, rows):
            if t:
                groups[t].append(row)
        mean = lambda xs: sum(xs) / len(xs)
        s["by_type"] = {t: {"n": len(g), "p": mean([x["text_p"] for x in g]), "r": mean([x["text_r"] for x in g]),
                            "f1": mean([x["text_f1"] for x in g])} for t, g in sorted(groups.items())}
        kit_bt = kit.get("text_f1_by_type") or {}
        bad = [t for t, v in s["by_type"].items() if abs(v["f1"] - kit_bt.get(t, -1)) > 1e-4]
        if bad:
            print(f"warning: per-type F1 differs from the kit's text_f1_by_type for {bad} ({pred.name})")
    return s


# ---------------------------------------------------------------- speed
def synthetic_page(target_mb: float) -> bytes:
    """An article-like page of about target_mb MB: sections with headings, linked paragraphs, lists, tables, figures."""
    unit = ("<section class='post'><h2>Heading {i}</h2><p>Paragraph {i} with some words, a "
            "<a href='/l{i}'>link</a>, and more text to read, about {i} things.</p>"
            "<ul><li>item one {i}</li><li>item two</li></ul><table><tr><td>a{i}</td><td>b</td></tr></table>"
            "<figure><img src='/img/{i}.jpg' width='640' height='480' alt='x'><figcaption>Caption {i}"
            "</figcaption></figure><div class='share'><a href='/s'>Share</a></div></section>\n")
    parts, size, i = ["<html><head><meta charset='utf-8'><title>t</title></head><body><nav><a href='/'>Home</a>"
                      "</nav><article>"], 0, 0
    while size < target_mb * 1e6:
        s = unit.format(i=i)
        parts.append(s)
        size += len(s)
        i += 1
    parts.append("</article><footer>f</footer></body></html>")
    return "".join(parts).encode("utf-8")


def speed(records: list[dict], budget: float) -> dict:
    """``default`` over the records in this process, with the decode and parse-only floors and page-size linearity."""
    from selectolax.lexbor import LexborHTMLParser
    from obelics_builder.extract.charset import decode_html
    sizes = [len(r["body"]) for r in records]
    mb = sum(sizes) / 1e6
    times, statuses = [], Counter()
    for rec in records:
        _, _, dt, st = extract_one(rec, "default", budget)
        times.append(dt)
        statuses[st] += 1
    t0 = time.process_time()
    htmls = [decode_html(r["body"], r["http_headers"])[0] for r in records]
    t_dec = time.process_time() - t0
    t0 = time.process_time()
    for h in htmls:
        LexborHTMLParser(h)
    t_parse = time.process_time() - t0
    # the decoded copies (the set's 400 MB of text) are freed before the synthetic pages: held, every page fault of
    # the 10 MB page's tree lands in fresh memory and its system time grows from ~0.2 to ~1.1 s (a crawl never holds
    # a set's pages decoded at once)
    del htmls
    out = {"set": "wcxb-dev", "pages": len(records), "html_mb": round(mb, 2), "default_cpu_s": sum(times),
           "default_mb_s": mb / sum(times), "decode_mb_s": mb / t_dec, "lexbor_parse_mb_s": mb / t_parse,
           "default_status": dict(statuses)}
    order = sorted(range(len(records)), key=sizes.__getitem__)
    third = len(order) // 3
    for label, idx in (("small", order[:third]), ("large", order[-third:])):
        out[f"default_{label}_third_mb_s"] = sum(sizes[k] for k in idx) / 1e6 / sum(times[k] for k in idx)
    for size in (1, 10):
        body = synthetic_page(size)
        _, _, dt, st = extract_one({"url": "http://example.com/page", "body": body, "http_headers": {}}, "default", 0)
        out[f"synthetic_{size}mb_s"], out[f"synthetic_{size}mb_status"] = dt, st
        out[f"synthetic_{size}mb_mb_s"] = len(body) / 1e6 / dt
    return out


# ---------------------------------------------------------------- printing
def f3(x) -> str:
    return f"{x:.3f}" if isinstance(x, (int, float)) else "-"


def print_set(name: str, rows: dict) -> None:
    print(f"\n{name}: text P/R/F1 (bag of words, macro over pages), image P/R/F1 (per page, macro), MB/s of HTML per "
          f"CPU-second")
    print(f"  {'extractor':17} {'text P':>7} {'text R':>7} {'text F1':>7} {'img P':>6} {'img R':>6} {'img F1':>6} "
          f"{'MB/s':>7}  pages, errors")
    for ex, v in rows.items():
        errs = ", ".join(f"{k} {n}" for k, n in sorted(v.get("errors", {}).items())) or "0"
        rem = v.get("removals") or {}
        extra = f"; removed {', '.join(f'{k} {n}' for k, n in sorted(rem.items()))}" if rem else ""
        print(f"  {ex:17} {f3(v.get('text_p')):>7} {f3(v.get('text_r')):>7} {f3(v.get('text_f1')):>7} "
              f"{f3(v.get('img_p')):>6} {f3(v.get('img_r')):>6} {f3(v.get('img_f1')):>6} "
              f"{v.get('mb_s', 0):>7.1f}  {v.get('pages')}, errors {errs}{extra}")


def print_types(rows: dict) -> None:
    for key, title in (("f1", "text F1"), ("p", "text P"), ("r", "text R")):
        print(f"\nwcxb-dev {title} per page type")
        w = [max(6, len(t)) for t in TYPES]
        print(f"  {'extractor':17} " + " ".join(f"{t:>{n}}" for t, n in zip(TYPES, w)) + f" {'all':>6}")
        for ex, v in rows.items():
            bt = v.get("by_type") or {}
            overall = v.get({"f1": "text_f1", "p": "text_p", "r": "text_r"}[key])
            print(f"  {ex:17} " + " ".join(f"{f3((bt.get(t) or {}).get(key)):>{n}}" for t, n in zip(TYPES, w))
                  + f" {f3(overall):>6}")
    ns = next((v["by_type"] for v in rows.values() if v.get("by_type")), {})
    print("  pages: " + ", ".join(f"{t} {ns[t]['n']}" for t in TYPES if t in ns))


def target(targets: dict, key: str, label: str, value, threshold, ok: bool | None, detail: str = "",
           fmt: str = ".3f") -> None:
    """Record one target and print its PASS/FAIL line (``n/a`` when it could not be measured)."""
    targets[key] = {"value": value, "threshold": threshold, "pass": ok}
    word = "PASS" if ok else ("FAIL" if ok is not None else "n/a ")
    shown = format(value, fmt) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    print(f"  {word}  {label}: {shown} (target {threshold}){detail}")


def check_targets(res: dict, skipped: dict) -> dict:
    t: dict = {}
    print("\ntargets")
    wc = res["sets"].get("wcxb-dev", {})
    d, tr = wc.get("default"), wc.get(PEER)
    if d:
        target(t, "wcxb_default_text_f1", "wcxb-dev default text F1", d["text_f1"], f">= {WCXB_F1_MIN}",
               d["text_f1"] >= WCXB_F1_MIN)
        for ty in TYPES:
            mine = (d.get("by_type") or {}).get(ty, {}).get("f1")
            peer = (tr.get("by_type") or {}).get(ty, {}).get("f1") if tr else None
            if mine is None:
                continue
            if peer is None:
                target(t, f"wcxb_default_{ty}_vs_peer", f"wcxb-dev default {ty} F1", mine,
                       f">= trafilatura + {TYPE_MARGIN}", None, f"  (peer not measured: {skipped.get('peer', '')})")
            else:
                need = peer + TYPE_MARGIN
                target(t, f"wcxb_default_{ty}_vs_peer", f"wcxb-dev default {ty} F1", mine,
                       f">= trafilatura {peer:.3f} + {TYPE_MARGIN} = {need:.3f}", mine >= need - 1e-12)
    rd = res["sets"].get("readability-dev", {}).get("default")
    if rd:
        target(t, "readability_default_img_f1", "readability-dev default image F1", rd["img_f1"],
               f">= {READ_IMG_F1_MIN}", rd["img_f1"] >= READ_IMG_F1_MIN, f"  (text F1 {rd['text_f1']:.3f})")
    sp = res.get("speed")
    if sp:
        target(t, "speed_default_mb_s", "default MB/s per core over wcxb-dev (CPU, one process)",
               sp["default_mb_s"], f">= {SPEED_MIN_MB_S:g}", sp["default_mb_s"] >= SPEED_MIN_MB_S, fmt=".1f")
        target(t, "synthetic_10mb_s", "synthetic 10 MB page, CPU seconds", sp["synthetic_10mb_s"],
               f"well under {BIG_PAGE_MAX_S:g} s", sp["synthetic_10mb_s"] < BIG_PAGE_MAX_S, fmt=".2f")
    lg = res.get("legacy")
    if isinstance(lg, dict):
        if "meets_target" in lg:
            val = lg.get("min_ratio")
            target(t, "legacy_encodings", "legacy encodings, min recall ratio over encodings x scenarios",
                   val, f">= {lg.get('target', '?')}", bool(lg["meets_target"]), fmt=".4f")
        for k, v in (lg.get("targets") or {}).items():  # a bench that reports several targets
            ok = v.get("pass") if isinstance(v, dict) else v
            target(t, f"legacy_{k}", f"legacy {k}", v.get("value") if isinstance(v, dict) else ok,
                   v.get("threshold", "") if isinstance(v, dict) else "", None if ok is None else bool(ok))
    if not t:
        print("  (none measured: the targets need wcxb-dev and readability-dev with mode default, or the speed pass)")
    return t


# ---------------------------------------------------------------- main
def rounded(x):
    """Floats to 4 decimals, all the way down (the final JSON line)."""
    if isinstance(x, float):
        return round(x, 4)
    if isinstance(x, dict):
        return {k: rounded(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [rounded(v) for v in x]
    return x


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--eval", default=str(REPO.parent / "shared" / "eval"), help="the extraction kit folder")
    ap.add_argument("--sets", default=",".join(SETS), help=f"comma list of: {', '.join(SETS)}")
    ap.add_argument("--modes", default=",".join(stage.MODES), help="comma list of extract modes (default: all)")
    ap.add_argument("--skip", default="", help="comma list of: quality, speed, peer, legacy")
    ap.add_argument("--traf-python", default=os.environ.get("TRAF_PYTHON") or DEFAULT_TRAF_PYTHON,
                    help=f"python with trafilatura 2.3.1, warcio, lxml (default: $TRAF_PYTHON or {DEFAULT_TRAF_PYTHON})")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="processes for our modes")
    ap.add_argument("--time-budget", type=float, default=ExtractConfig.page_time_budget_s,
                    help="per-page time budget in seconds, as in the crawl (0: none)")
    ap.add_argument("--out-dir", help="keep predictions and per-page scores here (default: a temporary folder)")
    a = ap.parse_args(argv)
    a.sets = [s for s in a.sets.split(",") if s]
    a.modes = [m for m in a.modes.split(",") if m]
    a.skip = {s for s in a.skip.split(",") if s}
    for what, given, allowed in (("set", a.sets, SETS), ("mode", a.modes, stage.MODES),
                                 ("--skip item", a.skip, ("quality", "speed", "peer", "legacy"))):
        wrong = [x for x in given if x not in allowed]
        if wrong:
            ap.error(f"unknown {what} {', '.join(wrong)} (choose from: {', '.join(allowed)})")
    if a.jobs < 1:
        ap.error("--jobs must be at least 1")
    a.eval = Path(a.eval)
    missing = [str(p) for p in [a.eval / "extract_eval.py", a.eval / "run_baselines.py"]
               + [a.eval / "dev" / f"{s}.{x}" for s in a.sets for x in ("warc.gz", "truth.jsonl")]
               + ([] if "speed" in a.skip else [a.eval / "dev" / "wcxb-dev.warc.gz"]) if not p.is_file()]
    missing = list(dict.fromkeys(missing))
    if missing:
        ap.error(f"the kit is incomplete under {a.eval}: missing {', '.join(missing)}")
    return a


def quality(a, tmp: Path, res: dict, skipped: dict, cache: dict) -> None:
    modes = []
    for m in a.modes:
        why = probe_mode(m)
        if why:
            print(f"mode {m} skipped: {why}")
            skipped[f"mode {m}"] = why
        else:
            modes.append(m)
    peer = None
    if "peer" in a.skip:
        skipped["peer"] = "--skip peer"
    else:
        peer = start_peer(a.traf_python, a.eval, a.sets, tmp)
        if isinstance(peer, str):
            print(f"peer skipped: {peer}")
            skipped["peer"], peer = peer, None
    types = {}
    for name in a.sets:
        records = cache[name] = read_records(a.eval / "dev" / f"{name}.warc.gz")
        types[name] = load_types(a.eval, name)
        mb = sum(len(r["body"]) for r in records) / 1e6
        for m in modes:
            t0 = time.time()
            out = run_mode(records, m, a.time_budget, a.jobs)
            pred = tmp / f"{name}.{m}.jsonl"
            with open(pred, "w", encoding="utf-8") as f:
                for rec, (texts, images, _, _) in zip(records, out):
                    f.write(json.dumps({"url": rec["url"], "texts": texts, "images": images}, ensure_ascii=False)
                            + "\n")
            s = score(a.eval, name, pred, types[name])
            st = Counter(x[3] for x in out)
            cpu = sum(x[2] for x in out)
            s.update(mb=round(mb, 2), cpu_s=cpu, mb_s=mb / cpu if cpu else None, wall_s=time.time() - t0,
                     errors={k: n for k, n in st.items() if k not in ("ok", "empty_document", "not_html")},
                     removals={k: n for k, n in st.items() if k in ("empty_document", "not_html")})
            res["sets"].setdefault(name, {})[m] = s
            print(f"{name} {m}: text F1 {s['text_f1']:.4f}, {s['wall_s']:.0f} s wall", flush=True)
    if peer is not None:
        got = finish_peer(peer)
        if isinstance(got, str):
            print(f"peer skipped: {got}")
            skipped["peer"] = got
        else:
            for name in a.sets:
                p = got.get(name)
                if not p:
                    continue
                s = score(a.eval, name, tmp / f"{name}.{PEER}.jsonl", types[name])
                s.update(version=p["version"], mb=round(p["mb"], 2), cpu_s=p["cpu_s"],
                         mb_s=p["mb"] / p["cpu_s"] if p["cpu_s"] else None,
                         errors={"exception": p["errors"]} if p["errors"] else {})
                res["sets"].setdefault(name, {})[PEER] = s
    for name in a.sets:
        if name in res["sets"]:
            print_set(name, res["sets"][name])
    if "wcxb-dev" in res["sets"]:
        print_types(res["sets"]["wcxb-dev"])


def main(argv=None) -> None:
    a = parse_args(argv)
    t_start = time.time()
    res: dict = {"bench": "extract", "date": datetime.date.today().isoformat(), "sets": {}, "speed": None,
                 "targets": {}, "legacy": None}
    skipped: dict = {}
    cache: dict = {}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(a.out_dir) if a.out_dir else Path(td)
        tmp.mkdir(parents=True, exist_ok=True)
        if "quality" in a.skip:
            skipped["quality"] = "--skip quality"
        else:
            quality(a, tmp, res, skipped, cache)
        if "speed" in a.skip:
            skipped["speed"] = "--skip speed"
        else:
            recs = cache.get("wcxb-dev") or read_records(a.eval / "dev" / "wcxb-dev.warc.gz")
            sp = res["speed"] = speed(recs, a.time_budget)
            peer = res["sets"].get("wcxb-dev", {}).get(PEER)
            if peer and peer.get("mb_s"):
                sp["trafilatura_mb_s"] = peer["mb_s"]
                sp["default_vs_trafilatura"] = sp["default_mb_s"] / peer["mb_s"]
            print(f"\nspeed: default over wcxb-dev ({sp['pages']} pages, {sp['html_mb']:.0f} MB of HTML), one process, "
                  f"CPU time, extract_record on payload bytes (decoding included)")
            print(f"  default {sp['default_mb_s']:.1f} MB/s (smallest third of the pages "
                  f"{sp['default_small_third_mb_s']:.1f}, largest third {sp['default_large_third_mb_s']:.1f}); "
                  f"decode_html alone {sp['decode_mb_s']:.0f} MB/s, Lexbor parse alone {sp['lexbor_parse_mb_s']:.0f}"
                  + (f"; trafilatura {sp['trafilatura_mb_s']:.1f} MB/s ({sp['default_vs_trafilatura']:.1f}x)"
                     if "trafilatura_mb_s" in sp else ""))
            print(f"  synthetic pages: 1 MB {sp['synthetic_1mb_s']:.3f} s, 10 MB {sp['synthetic_10mb_s']:.3f} s "
                  f"({sp['synthetic_10mb_mb_s']:.1f} MB/s)")
        if "legacy" in a.skip:
            skipped["legacy"] = "--skip legacy"
        elif legacy_run is None:
            skipped["legacy"] = "bench_legacy.py is not beside bench_extract.py"
            print(f"\nlegacy skipped: {skipped['legacy']}")
        else:
            print("\nlegacy encodings (bench_legacy.run)")
            kw = {"verbose": True} if "verbose" in inspect.signature(legacy_run).parameters else {}
            try:
                res["legacy"] = legacy_run(a.eval, **kw)
            except Exception as e:  # the other bench's failure must not lose this run's figures
                skipped["legacy"] = f"bench_legacy.run failed: {type(e).__name__}: {e}"[:300]
                print(f"legacy skipped: {skipped['legacy']}")
    res["targets"] = check_targets(res, skipped)
    res["skipped"] = skipped
    res["wall_s"] = round(time.time() - t_start, 1)
    print(f"\nwall time {res['wall_s']:.0f} s ({datetime.datetime.now().isoformat(timespec='minutes')})")
    print(json.dumps(rounded(res), default=str, separators=(",", ":")))


if __name__ == "__main__":
    main()
