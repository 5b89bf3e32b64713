#!/usr/bin/env python3
"""Legacy encodings: recall of truth text on pages re-encoded into cp1252, ISO-8859-15, KOI8-R, cp1251, Shift-JIS, GBK.

    .venv/bin/python bench/extract/bench_legacy.py [--eval ../shared/eval] [--data ../shared/data]
        [--peer-python /tmp/resvenv/bin/python] [--max-pages 80]

API for the main bench (``from bench_legacy import run``)::

    run(eval_dir: Path, data_dir: Path | None = None, peer_python: str | None = None,
        max_pages: int = 80, verbose: bool = True) -> dict

``eval_dir`` is the kit (``dev/*.warc.gz`` + ``dev/*.truth.jsonl``); ``data_dir`` the shared data folder for extra
pages (default ``eval_dir/../data``; missing is fine); ``peer_python`` an interpreter with ``resiliparse`` installed
(default ``$RESILIPARSE_PYTHON`` or ``/tmp/resvenv/bin/python`` when it exists; ``""`` disables the peer);
``max_pages`` caps the pages per language.  Returns the figures printed as the final JSON line (``cells`` keyed
``"<encoding>/<scenario>"``, ``min_ratio``, ``meets_target``, ``speed``, ``peer``).

Pages: every dev page whose truth text is German, French, Russian (Cyrillic: ru, bg), Japanese or Chinese (fastText
lid.176 on the truth text).  The dev sets hold only a handful of such pages, so pages of the same languages from
``data/pages/trafilatura-cache`` and ``data/warc`` (Common Crawl excerpt, ClueWeb quirk file, archive.org 2008) are
added; they have no truth, so their reference is the text our extractor gets from the correctly decoded original
(their UTF-8 recall is 1 by construction).  Each page's decoded original (the "UTF-8 original") is re-encoded into
every encoding fitting its language; a page is skipped for an encoding when more than 0.5 % of the letters of its
reference text have no code in it (counted); other characters without a code (symbols, emoji in scripts) become
numeric character references, as a legacy CMS writes them.

Scenarios: ``none`` (every declaration removed: HTTP header charset, ``<meta charset>``, ``http-equiv``, the XML
declaration's encoding), ``utf8`` (declared UTF-8 in the header and a ``<meta charset>``: the commonest wrong
declaration), ``wrong`` (declared a wrong legacy charset: cp1252 -> windows-1251, ISO-8859-15 -> KOI8-R,
KOI8-R -> windows-1251, cp1251 -> ISO-8859-1, Shift-JIS -> ISO-8859-1, GBK -> ISO-8859-1), ``right`` (the correct
declaration: a check that it is honoured, decoder accuracy 1.0).  Bytes go through
``decode_html`` then ``extract_default``; recall is the kit's (``\\w+`` tokens of the lower-cased text, multiset
overlap / truth tokens).  Per cell: pages, mean recall, ratio = mean legacy recall / mean recall of the same pages'
originals (target >= 0.95), decoder accuracy = share of pages decoded exactly to the re-encoded page's text.  The
peer is resiliparse's detector (``detect_encoding`` + ``bytes_to_str``, uchardet; declarations not read) on the same
bytes, run in its own interpreter; its text goes through the same extractor.  Speed: MB/s (CPU time) of
``decode_html`` over the dev pages as served, and over the re-encoded pages.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from warcio.archiveiterator import ArchiveIterator  # noqa: E402

from obelics_builder.extract.charset import decode_html  # noqa: E402
from obelics_builder.extract.default import extract_default  # noqa: E402

#: language -> encodings its pages are re-encoded into (Python codec names)
ENCODINGS = {"de": ("cp1252", "iso8859-15"), "fr": ("cp1252", "iso8859-15"), "ru": ("koi8-r", "cp1251"),
             "bg": ("koi8-r", "cp1251"), "ja": ("cp932",), "zh": ("gbk",)}
LABELS = {"cp1252": "cp1252", "iso8859-15": "ISO-8859-15", "koi8-r": "KOI8-R", "cp1251": "cp1251",
          "cp932": "Shift-JIS", "gbk": "GBK"}
#: the wrong legacy declaration of scenario "wrong"
WRONG = {"cp1252": "windows-1251", "iso8859-15": "koi8-r", "koi8-r": "windows-1251", "cp1251": "iso-8859-1",
         "cp932": "iso-8859-1", "gbk": "iso-8859-1"}
SCENARIOS = ("none", "utf8", "wrong", "right")
#: the correct declaration of scenario "right" (it must be honoured: decoder accuracy 1.0)
RIGHT = {"cp1252": "windows-1252", "iso8859-15": "iso-8859-15", "koi8-r": "koi8-r", "cp1251": "windows-1251",
         "cp932": "shift_jis", "gbk": "gbk"}
TARGET = 0.95
MAX_UNFIT = 0.005
WORD = re.compile(r"\w+")
_META = re.compile(r"<meta\b[^>]*?charset[^>]*>", re.I)
_XML_ENC = re.compile(r"(<\?xml[^>]*?)\s+encoding\s*=\s*[\"'][^\"']*[\"']", re.I)
_HEAD = re.compile(r"<head\b[^>]*>", re.I)
_PEER = r"""
import json, sys
from resiliparse.parse.encoding import detect_encoding, bytes_to_str
src, dst = sys.argv[1], sys.argv[2]
out = []
with open(src, "rb") as f:
    data = f.read()
pos = 0
while pos < len(data):
    n = int.from_bytes(data[pos:pos + 8], "little"); pos += 8
    b = data[pos:pos + n]; pos += n
    enc = detect_encoding(b)
    out.append([enc, bytes_to_str(b, enc)])
with open(dst, "w", encoding="utf-8") as f:
    json.dump(out, f, ensure_ascii=False)
"""


def _tokens(s: str) -> Counter:
    return Counter(WORD.findall(s.lower()))


def recall(pred: str, truth: Counter) -> float:
    """The kit's bag-of-words recall (extract_eval.py): both empty -> 1, one empty -> 0."""
    n_true = sum(truth.values())
    p = _tokens(pred)
    if not n_true:
        return 1.0 if not p else 0.0
    return sum((p & truth).values()) / n_true if p else 0.0


def extract_text(html: str, url: str) -> str:
    try:
        nodes = extract_default(html, url)
    except Exception:  # counted as an empty document, as the main bench does
        return ""
    return "\n\n".join(v for k, v in nodes if k == "text" and v and v.strip())


def _warc_pages(path: Path):
    with open(path, "rb") as f:
        for rec in ArchiveIterator(f):
            if rec.rec_type != "response" or rec.http_headers is None:
                continue
            ct = rec.http_headers.get_header("Content-Type") or ""
            if "html" not in ct.lower():
                continue
            yield rec.rec_headers.get_header("WARC-Target-URI"), rec.content_stream().read(), {"content-type": ct}


def collect_pages(eval_dir: Path, data_dir: Path | None, max_pages: int) -> tuple[list[dict], dict]:
    """Pages of the wanted languages: dicts with url, html (decoded original), truth (Counter), lang, source."""
    from obelics_builder.quality.langid import LangId
    lid = LangId()

    def lang_of(text: str) -> str:
        text = " ".join(text.split())[:4000]
        return lid.predict([text])[0][0] if text else "empty"

    pages, seen, counts = [], set(), Counter()
    for warc in sorted((eval_dir / "dev").glob("*.warc.gz")):
        truth_file = warc.with_name(warc.name[:-len(".warc.gz")] + ".truth.jsonl")
        if not truth_file.is_file():
            continue
        truth = {}
        for line in truth_file.open(encoding="utf-8"):
            if line.strip():
                d = json.loads(line)
                truth[d["url"]] = d["main_text"]
        for url, body, headers in _warc_pages(warc):
            if url not in truth or url in seen:
                continue
            lang = lang_of(truth[url])
            counts[f"dev:{lang}"] += 1
            if lang in ENCODINGS:
                seen.add(url)
                pages.append({"url": url, "html": decode_html(body, headers)[0], "truth": _tokens(truth[url]),
                              "lang": lang, "source": "dev"})
    extra = []
    if data_dir is not None and data_dir.is_dir():
        tc = data_dir / "pages" / "trafilatura-cache"
        if tc.is_dir():
            extra += [(f"http://{p.stem}/", p.read_bytes(), {}) for p in sorted(tc.glob("*.html"))]
        for rel in ("warc/commoncrawl-2020-34-excerpt/warcfile.warc.gz", "warc/edge-cases/clueweb-quirk.warc.gz",
                    "warc/archive-org-2008/issue-493.warc", "warc/archive-org-2008/example.warc.gz"):
            if (data_dir / rel).is_file():
                try:
                    extra += list(_warc_pages(data_dir / rel))
                except Exception as exc:  # a damaged file costs its remaining pages, said once
                    print(f"  note: {rel}: {exc}", file=sys.stderr)
    per_lang = Counter(p["lang"] for p in pages)
    for url, body, headers in extra:
        if url in seen:
            continue
        html = decode_html(body, headers)[0]
        ref = extract_text(html, url)
        lang = lang_of(ref)
        counts[f"extra:{lang}"] += 1
        if lang in ENCODINGS and len(WORD.findall(ref)) >= 30 and per_lang[lang] < max_pages:
            seen.add(url)
            per_lang[lang] += 1
            pages.append({"url": url, "html": html, "truth": _tokens(ref), "lang": lang, "source": "extra"})
    return pages, dict(counts)


def fits(truth: Counter, enc: str) -> bool:
    """At most MAX_UNFIT of the reference's letters lack a code in ``enc``."""
    total = bad = 0
    for word, n in truth.items():
        total += len(word) * n
        try:
            word.encode(enc)
        except UnicodeEncodeError:
            bad += sum(1 for ch in word if not _encodable(ch, enc)) * n
    return total > 0 and bad <= MAX_UNFIT * total


def _encodable(ch: str, enc: str) -> bool:
    try:
        ch.encode(enc)
        return True
    except UnicodeEncodeError:
        return False


def legacy_page(html: str, enc: str, scenario: str) -> tuple[bytes, dict, str]:
    """(bytes, http headers, the text those bytes hold) of ``html`` in ``enc`` under ``scenario``."""
    html = _XML_ENC.sub(r"\1", _META.sub("", html))
    headers = {"content-type": "text/html"}
    if scenario != "none":
        label = {"utf8": "utf-8", "wrong": WRONG.get(enc), "right": RIGHT.get(enc)}[scenario]
        headers = {"content-type": f"text/html; charset={label}"}
        meta = f'<meta charset="{label}">'
        m = _HEAD.search(html)
        html = html[:m.end()] + meta + html[m.end():] if m else meta + html
    body = html.encode(enc, errors="xmlcharrefreplace")
    return body, headers, body.decode(enc)


def _peer_decode(peer_python: str, bodies: list[bytes]) -> list | None:
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.bin", Path(tmp) / "out.json"
        with open(src, "wb") as f:
            for b in bodies:
                f.write(len(b).to_bytes(8, "little"))
                f.write(b)
        r = subprocess.run([peer_python, "-c", _PEER, str(src), str(dst)], capture_output=True, text=True)
        if r.returncode != 0 or not dst.is_file():
            print(f"  peer failed: {r.stderr.strip()[-300:]}", file=sys.stderr)
            return None
        return json.loads(dst.read_text(encoding="utf-8"))


def _peer_python(arg: str | None) -> str | None:
    if arg is not None:
        return arg or None
    cand = os.environ.get("RESILIPARSE_PYTHON") or "/tmp/resvenv/bin/python"
    if not Path(cand).is_file():
        return None
    ok = subprocess.run([cand, "-c", "import resiliparse.parse.encoding"], capture_output=True).returncode == 0
    return cand if ok else None


def _speed(bodies: list[tuple[bytes, dict]], reps: int = 3) -> dict:
    nb = sum(len(b) for b, _ in bodies) * reps
    t0 = time.process_time()
    for _ in range(reps):
        for b, h in bodies:
            decode_html(b, h)
    t = time.process_time() - t0
    return {"pages": len(bodies) * reps, "mb": round(nb / 1e6, 2), "mb_per_s": round(nb / 1e6 / t, 1) if t else None}


def run(eval_dir: Path, data_dir: Path | None = None, peer_python: str | None = None, max_pages: int = 80,
        verbose: bool = True) -> dict:
    """Run the legacy-encoding bench; see the module docstring.  Prints the table when ``verbose``."""
    eval_dir = Path(eval_dir)
    data_dir = Path(data_dir) if data_dir is not None else eval_dir.parent / "data"
    say = print if verbose else (lambda *a, **k: None)
    pages, lang_counts = collect_pages(eval_dir, data_dir, max_pages)
    by_lang = Counter(f"{p['lang']}:{p['source']}" for p in pages)
    say(f"pages by language:source: {dict(sorted(by_lang.items()))}")
    for lang in ENCODINGS:
        n_dev = by_lang.get(f"{lang}:dev", 0)
        if n_dev < 10:
            say(f"  note: {lang}: only {n_dev} dev pages with truth; {by_lang.get(f'{lang}:extra', 0)} extra pages "
                f"(reference = our extraction of the original)")
    for p in pages:
        p["r_orig"] = recall(extract_text(p["html"], p["url"]), p["truth"])

    peer = _peer_python(peer_python)
    cases, skipped = [], Counter()
    for i, p in enumerate(pages):
        for enc in ENCODINGS[p["lang"]]:
            if not fits(p["truth"], enc):
                skipped[enc] += 1
                continue
            for sc in SCENARIOS:
                body, headers, expected = legacy_page(p["html"], enc, sc)
                cases.append((i, enc, sc, body, headers, expected))
    peer_out = _peer_decode(peer, [c[3] for c in cases]) if peer and cases else None

    cells: dict = {}
    t_dec = 0.0
    for k, (i, enc, sc, body, headers, expected) in enumerate(cases):
        p = pages[i]
        t0 = time.process_time()
        text, used = decode_html(body, headers)
        t_dec += time.process_time() - t0
        c = cells.setdefault(f"{enc}/{sc}", {"pages": 0, "r": 0.0, "r_orig": 0.0, "exact": 0, "peer_r": 0.0,
                                             "peer_exact": 0, "misdecoded_as": Counter()})
        c["pages"] += 1
        c["r_orig"] += p["r_orig"]
        c["r"] += _exact_recall(p, expected) if text == expected else recall(extract_text(text, p["url"]), p["truth"])
        if text == expected:
            c["exact"] += 1
        else:
            c["misdecoded_as"][used] += 1
        if peer_out is not None:
            ptext = peer_out[k][1]
            c["peer_r"] += recall(extract_text(ptext, p["url"]), p["truth"]) if ptext != expected else \
                _exact_recall(p, expected)
            c["peer_exact"] += ptext == expected

    out_cells, ratios = {}, []
    for key, c in cells.items():
        n = c["pages"]
        ro = c["r_orig"] / n
        row = {"pages": n, "recall": round(c["r"] / n, 4), "recall_utf8": round(ro, 4),
               "ratio": round((c["r"] / n) / ro, 4) if ro else None, "decoder_accuracy": round(c["exact"] / n, 4),
               "misdecoded_as": dict(c["misdecoded_as"].most_common(4))}
        if peer_out is not None:
            row["peer_ratio"] = round((c["peer_r"] / n) / ro, 4) if ro else None
            row["peer_accuracy"] = round(c["peer_exact"] / n, 4)
        if row["ratio"] is not None:
            ratios.append(row["ratio"])
        out_cells[key] = row

    speed = {"dev_as_served": _speed([(b, h) for w in sorted((eval_dir / "dev").glob("*.warc.gz"))
                                      for _, b, h in _warc_pages(w)], reps=1),
             "legacy": {"pages": len(cases), "mb": round(sum(len(c[3]) for c in cases) / 1e6, 2),
                        "mb_per_s": round(sum(len(c[3]) for c in cases) / 1e6 / t_dec, 1) if t_dec else None}}
    say(f"\n{'encoding':12} {'scenario':8} {'pages':>5} {'recall':>7} {'utf8 R':>7} {'ratio':>6} {'dec acc':>7} "
        f"{'peer ratio':>10} {'peer acc':>8}  misdecoded as")
    for enc in ("cp1252", "iso8859-15", "koi8-r", "cp1251", "cp932", "gbk"):
        for sc in SCENARIOS:
            r = out_cells.get(f"{enc}/{sc}")
            if not r:
                continue
            pr = f"{r['peer_ratio']:.3f}" if "peer_ratio" in r else "-"
            pa = f"{r['peer_accuracy']:.3f}" if "peer_accuracy" in r else "-"
            say(f"{LABELS[enc]:12} {sc:8} {r['pages']:>5} {r['recall']:>7.3f} {r['recall_utf8']:>7.3f} "
                f"{r['ratio']:>6.3f} {r['decoder_accuracy']:>7.3f} {pr:>10} {pa:>8}  {r['misdecoded_as']}")
    say(f"skipped (text does not fit the encoding): {dict(skipped)}")
    say("peer: resiliparse detect_encoding + bytes_to_str" if peer_out is not None else "peer not available")
    say(f"decode_html speed: dev pages as served {speed['dev_as_served']['mb_per_s']} MB/s "
        f"({speed['dev_as_served']['mb']} MB); legacy pages {speed['legacy']['mb_per_s']} MB/s "
        f"({speed['legacy']['mb']} MB)")
    min_ratio = min(ratios) if ratios else None
    return {"bench": "legacy_encodings", "cells": out_cells, "skipped": dict(skipped),
            "pages_by_language": dict(by_lang), "languages_seen": lang_counts, "min_ratio": min_ratio,
            "target": TARGET, "meets_target": bool(min_ratio is not None and min_ratio >= TARGET),
            "peer": "resiliparse" if peer_out is not None else "not available", "speed": speed}


def _exact_recall(p: dict, expected: str) -> float:
    """Recall of a page decoded exactly (cached per page and re-encoded text)."""
    cache = p.setdefault("_exact", {})
    if expected not in cache:
        cache[expected] = recall(extract_text(expected, p["url"]), p["truth"])
    return cache[expected]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--eval", default=str(REPO.parent / "shared" / "eval"))
    ap.add_argument("--data", default=None, help="shared data folder for extra pages (default: EVAL/../data)")
    ap.add_argument("--peer-python", default=None, help="python with resiliparse ('' disables the peer)")
    ap.add_argument("--max-pages", type=int, default=80, help="pages per language at most (extra pages)")
    a = ap.parse_args()
    eval_dir = Path(a.eval)
    if not (eval_dir / "dev").is_dir():
        sys.exit(f"error: {eval_dir}/dev not found (pass --eval, the folder holding dev/*.warc.gz)")
    res = run(eval_dir, Path(a.data) if a.data else None, a.peer_python, a.max_pages)
    print(json.dumps(res, ensure_ascii=False))


if __name__ == "__main__":
    main()
