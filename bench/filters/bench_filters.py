#!/usr/bin/env python3
"""Kept-text benchmark: what the text filters keep and remove, scored against ground-truth main text.

    .venv/bin/python bench/filters/bench_filters.py [--warc FILE --truth FILE]... [--recipe NAME_OR_PATH]...
        [--filters NAME_OR_PATH] [--peer-modes trafilatura] [--per-page FILE] [--no-cache]

For each set (default: every ``SET.warc.gz`` + ``SET.truth.jsonl`` in ``../shared/eval/dev``) and each
configuration, the real stages run in the crawl's order through the crawl's code: the WARC reader
(``sources.warc.iter_html_records``), ``extract.extract_stage`` with the recipe's ``extract`` section,
``quality.score.text_score_stage``, ``quality.decide.text_filter_stage`` (node then doc decisions) and
``quality.final.final_cleaning_stage``, in batches of the recipe's ``read.batch_size``.  The image-count checks
are off (``doc.number_images`` disabled, ``final.min_images`` 0, no ``max_images``): no image is fetched, so
only text decisions count.  Run-wide stages (URL, near-duplicate, paragraph and image-set dedup, opt-out) are
not run: one page per URL, nothing to deduplicate across pages.

Configurations: each ``--recipe`` (default: ``obelics``, the default recipe, and ``obelics-2023``, the 2023
reference build), with ``--filters`` instead of its filter config when given, and, as the reference point, the
first recipe with the extractor of each ``--peer-modes`` mode (default ``trafilatura``, when installed: the
``[trafilatura]`` extra), labelled ``RECIPE@MODE``.

Scores (bag of lowercased ``\\w+`` words, the extraction kit's scorer; macro means over the truth pages; a page
the extractor or a filter dropped scores 0):

* ``extract_f1`` / ``kept_f1`` (and P, R): the extracted text, and the text kept after the filters;
* ``content_lost_words``: words the filters removed that are in the truth (multiset: extracted∩truth minus
  kept∩truth), ``boilerplate_removed_words``: the other removed words; ``lost_per_boilerplate``;
* ``docs_removed`` by reason (``doc:<check>``, ``final:<rule>``) and ``pages_kept`` (share of the extracted
  pages whose document survives the filters);
* the same per page type when the truth has ``page_type``.

Scope: a dataset keeps the languages of its doc ``lang_id`` check (English for both recipes), so removing a page
in another language is that check doing its job, not content lost.  A truth page is in the config's languages
when fastText lid.176's top label on its truth text is one of them (its probability is not asked for: how sure
the model must be is the check's threshold, which the scores judge); the scores are over those pages, and the
pages out of language (``aeb`` has 20 such, ``readability-dev`` 27, mostly Latin placeholder text) are counted
apart (``off_language_pages``, ``off_language_removed``).

Extraction is cached per (WARC, mode, extractor source) under the temp folder; ``--no-cache`` redoes it.
Prints the tables, then one JSON line ``{set: {config: {extract_f1, kept_f1, content_lost_words,
boilerplate_removed_words, docs_removed, ...}}}``.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import pickle
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from obelics_builder.stats import StageContext, Stats, run_stage  # noqa: E402

sys.path.insert(0, str(REPO / "bench" / "extract"))
from quick_eval import WORD, norm_url, prf  # noqa: E402  (the extraction kit's scorer semantics)

DEFAULT_EVAL = REPO.parent / "shared" / "eval" / "dev"
DEFAULT_RECIPES = ("obelics", "obelics-2023")
#: targets of issue 16 (default recipe): kept F1 >= extract F1 - 0.02, content lost <= boilerplate removed, pages
#: kept >= 85% on wcxb-dev and >= 95% on the article sets
F1_MARGIN = 0.02
PAGES_KEPT = {"wcxb-dev": 0.85}
PAGES_KEPT_ARTICLES = 0.95


def words(text: str) -> Counter:
    return Counter(WORD.findall(text.lower()))


def doc_text(doc: dict | None) -> str:
    if doc is None:
        return ""
    return "\n\n".join(t for t in doc["texts"] if isinstance(t, str) and t.strip())


# ---------------------------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------------------------

def load_truth(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                rows.append({"url": d["url"], "text": d.get("main_text") or d.get("text") or "",
                             "page_type": d.get("page_type")})
    return rows


def add_languages(truth: list[dict]) -> None:
    """Each truth page's language: fastText lid.176's top label on its truth text (the model of the filters)."""
    from obelics_builder.quality.langid import get_langid

    for t, (lang, prob) in zip(truth, get_langid(None).predict([t["text"] for t in truth])):
        t["lang"], t["lang_prob"] = lang, prob


def target_languages(fcfg: dict) -> tuple[set[str], float] | None:
    """The languages a filter config keeps and the minimum score (its enabled doc ``lang_id`` check), None:
    every language."""
    c = (fcfg.get("doc") or {}).get("lang_id")
    if not isinstance(c, dict) or not c.get("enabled", True):
        return None
    langs = c.get("languages") or ["en"]
    return {str(x) for x in (langs if isinstance(langs, list) else [langs])}, float(c.get("min") or 0.0)


def in_language(page: dict, languages: tuple[set[str], float] | None) -> bool:
    """Whether a truth page is in the dataset's languages: the top label of its truth text is one of them (its
    probability is not asked for: how sure the model must be is a quality threshold, which the scores judge)."""
    return languages is None or page.get("lang") in languages[0]


def _extractor_digest() -> str:
    h = hashlib.sha1()
    for p in sorted((REPO / "obelics_builder" / "extract").glob("*.py")):
        h.update(p.read_bytes())
    return h.hexdigest()[:12]


def extracted(warc: Path, recipe: dict, cache: bool) -> tuple[list[dict], dict]:
    """The documents of a WARC as the crawl extracts them (reader + extract stage, the recipe's batches), and the
    read/extract stats; cached per WARC, extract section and extractor source."""
    from obelics_builder.extract import extract_stage
    from obelics_builder.sources.commoncrawl import WarcRef
    from obelics_builder.sources.warc import iter_html_records

    read_cfg = recipe.get("read") or {}
    st = warc.stat()
    key = hashlib.sha1(json.dumps([str(warc.resolve()), st.st_size, st.st_mtime_ns, recipe.get("extract"),
                                   read_cfg, _extractor_digest()], sort_keys=True).encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"bench-filters-{warc.name}-{key}.pkl"
    if cache and path.exists():
        with open(path, "rb") as f:
            return pickle.load(f)
    stats = Stats()
    c_read = StageContext("read", read_cfg, stats)
    c_extract = StageContext("extract", recipe.get("extract") or {}, stats)
    batch = int(read_cfg.get("batch_size", 256))
    docs: list[dict] = []
    records: list[dict] = []
    for rec in iter_html_records(WarcRef(uri=str(warc), name=warc.name), c_read,
                                 max_record_bytes=int(read_cfg.get("max_record_bytes", 20_000_000))):
        records.append(rec)
        if len(records) >= batch:
            docs += run_stage(extract_stage, records, c_extract)
            records = []
    if records:
        docs += run_stage(extract_stage, records, c_extract)
    result = (docs, stats.to_dict())
    if cache:
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
    return result


# ---------------------------------------------------------------------------------------------------------------
# the filters, through the crawl's stages
# ---------------------------------------------------------------------------------------------------------------

class _Tracking(StageContext):
    """A stage context that also records document-level removals in order (one per removed document)."""

    def __init__(self, *a, **k) -> None:
        super().__init__(*a, **k)
        self.doc_reasons: list[str] = []

    def remove(self, reason: str, n: int = 1, unit: str = "documents") -> None:
        if unit == "documents":
            self.doc_reasons.extend([reason] * n)
        super().remove(reason, n, unit)

    def error(self, reason: str, n: int = 1, **example) -> None:
        self.doc_reasons.extend([reason] * n)
        super().error(reason, n, **example)


def text_only(fcfg: dict) -> dict:
    """The filter config with the image-count checks off (no image is fetched here)."""
    cfg = copy.deepcopy(fcfg)
    doc = cfg.setdefault("doc", {})
    if isinstance(doc.get("number_images"), dict):
        doc["number_images"]["enabled"] = False
    final = cfg.setdefault("final", {})
    final["min_images"] = 0
    final["max_images"] = 10 ** 9
    return cfg


def run_filters(docs: list[dict], recipe: dict) -> tuple[dict[int, str | None], Stats]:
    """Score, decide and clean ``docs`` (in place) as the crawl does; returns {id(doc): removal reason or None}
    and the stats.  Kept documents hold their kept text afterwards."""
    from obelics_builder.quality.decide import text_filter_stage
    from obelics_builder.quality.final import final_cleaning_stage
    from obelics_builder.quality.score import text_score_stage

    fcfg = text_only(recipe["filters_config"])
    stats = Stats()
    resources: dict = {}
    c_score = StageContext("text_scores", fcfg, stats, resources)
    c_filter = _Tracking("text_filter", fcfg, stats, resources)
    c_final = _Tracking("final", fcfg, stats, resources)
    batch = int((recipe.get("read") or {}).get("batch_size", 256))
    fate: dict[int, str | None] = {}
    for i in range(0, len(docs), batch):
        part = run_stage(text_score_stage, docs[i:i + batch], c_score)
        for stage, ctx in ((text_filter_stage, c_filter), (final_cleaning_stage, c_final)):
            before = part
            ctx.doc_reasons = []
            part = run_stage(stage, before, ctx)
            kept = {id(d) for d in part}
            removed = [d for d in before if id(d) not in kept]
            if len(removed) != len(ctx.doc_reasons):
                raise RuntimeError(f"{ctx.stage}: {len(removed)} documents removed, {len(ctx.doc_reasons)} reasons")
            for d, reason in zip(removed, ctx.doc_reasons):
                fate[id(d)] = reason
        for d in part:
            fate[id(d)] = None
    return fate, stats


# ---------------------------------------------------------------------------------------------------------------
# scoring
# ---------------------------------------------------------------------------------------------------------------

def score_config(truth: list[dict], docs: list[dict], kept_text: dict[str, str | None],
                 fate: dict[str, str | None], languages: tuple[set[str], float] | None = None
                 ) -> tuple[dict, list[dict]]:
    """Per page and macro scores; ``docs`` are the extracted documents (before the filters), ``kept_text`` /
    ``fate`` map normalised URLs to the kept text (None: removed) and the removal reason.  Pages whose truth is
    not in ``languages`` (the config's doc ``lang_id`` languages) are out of scope: removing them is the
    language filter doing its job, so the scores are over the pages in scope, and the others are counted apart."""
    by_url = {}
    for d in docs:
        by_url.setdefault(norm_url(d["general_metadata"].get("url")), d)
    pages = []
    for t in truth:
        u = norm_url(t["url"])
        T = words(t["text"])
        doc = by_url.get(u)
        E = words(doc_text(doc))
        K = words(kept_text.get(u) or "") if doc is not None else Counter()
        ET, KT = E & T, K & T
        removed = E - K
        lost = sum(ET.values()) - sum(KT.values())
        pages.append({
            "url": t["url"], "page_type": t["page_type"], "extracted": doc is not None,
            "kept": doc is not None and fate.get(u) is None,
            "reason": None if doc is None else fate.get(u),
            "extract": prf(sum(ET.values()), sum(E.values()), sum(T.values())),
            "filtered": prf(sum(KT.values()), sum(K.values()), sum(T.values())),
            "lost": lost, "boilerplate": sum(removed.values()) - lost,
            "lang": t.get("lang"), "in_scope": in_language(t, languages),
        })
    scope = [p for p in pages if p["in_scope"]]
    out = summarize(scope)
    off = [p for p in pages if not p["in_scope"]]
    out["off_language_pages"] = len(off)
    out["off_language_removed"] = sum(1 for p in off if p["extracted"] and not p["kept"])
    return out, pages


def summarize(pages: list[dict], by_type: bool = True) -> dict:
    n = len(pages) or 1
    extracted = [p for p in pages if p["extracted"]]
    lost = sum(p["lost"] for p in pages)
    boiler = sum(p["boilerplate"] for p in pages)
    reasons = Counter(p["reason"] for p in extracted if p["reason"] is not None)
    out = {
        "pages": len(pages),
        "extract_p": sum(p["extract"][0] for p in pages) / n,
        "extract_r": sum(p["extract"][1] for p in pages) / n,
        "extract_f1": sum(p["extract"][2] for p in pages) / n,
        "kept_p": sum(p["filtered"][0] for p in pages) / n,
        "kept_r": sum(p["filtered"][1] for p in pages) / n,
        "kept_f1": sum(p["filtered"][2] for p in pages) / n,
        "content_lost_words": lost,
        "boilerplate_removed_words": boiler,
        "lost_per_boilerplate": (lost / boiler) if boiler else (float("inf") if lost else 0.0),
        "docs_removed": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
        "pages_kept": (sum(p["kept"] for p in extracted) / len(extracted)) if extracted else 0.0,
    }
    types = sorted({p["page_type"] for p in pages if p["page_type"]}) if by_type else []
    if types:
        out["by_type"] = {t: summarize([p for p in pages if p["page_type"] == t], False) for t in types}
    return out


def check_targets(name: str, row: dict) -> list[tuple[str, bool, str]]:
    need = PAGES_KEPT.get(name, PAGES_KEPT_ARTICLES)
    return [
        ("kept F1 >= extract F1 - 0.02", row["kept_f1"] >= row["extract_f1"] - F1_MARGIN - 1e-12,
         f"{row['kept_f1']:.3f} vs {row['extract_f1']:.3f}"),
        ("content lost <= boilerplate removed", row["content_lost_words"] <= row["boilerplate_removed_words"],
         f"{row['content_lost_words']} vs {row['boilerplate_removed_words']}"),
        (f"pages kept >= {need:.0%}", row["pages_kept"] >= need, f"{row['pages_kept']:.1%}"),
    ]


# ---------------------------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------------------------

def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warc", action="append", type=Path, default=[], help="a WARC with ground truth (repeatable)")
    ap.add_argument("--truth", action="append", type=Path, default=[],
                    help="its truth JSONL (url, main_text|text, [page_type]); one per --warc, same order")
    ap.add_argument("--recipe", action="append", default=[],
                    help=f"a recipe name or path (repeatable; default: {', '.join(DEFAULT_RECIPES)})")
    ap.add_argument("--filters", default=None, help="a filter config used instead of each recipe's")
    ap.add_argument("--peer-modes", default="trafilatura",
                    help="extract modes run with the first recipe as reference points (comma-separated; '' for none)")
    ap.add_argument("--per-page", type=Path, default=None, help="write per-page scores (JSONL) to this file")
    ap.add_argument("--no-cache", action="store_true", help="extract again instead of using the cached documents")
    a = ap.parse_args(argv)
    if len(a.warc) != len(a.truth):
        ap.error("give one --truth per --warc")
    if not a.warc:
        if not DEFAULT_EVAL.is_dir():
            ap.error(f"no --warc given and {DEFAULT_EVAL} does not exist")
        for w in sorted(DEFAULT_EVAL.glob("*.warc.gz")):
            t = w.with_name(w.name[:-len(".warc.gz")] + ".truth.jsonl")
            if t.exists():
                a.warc.append(w)
                a.truth.append(t)
    for p in (*a.warc, *a.truth):
        if not p.is_file():
            ap.error(f"no such file: {p}")
    return a


def configurations(a) -> list[tuple[str, dict]]:
    from obelics_builder.extract.stage import MODES, check_mode
    from obelics_builder.recipe import ConfigError, load_filters, load_recipe

    out = []
    try:
        for name in a.recipe or DEFAULT_RECIPES:
            recipe = load_recipe(name)
            label = recipe["name"]
            if a.filters:
                recipe["filters_config"] = load_filters(a.filters)
                label += f"+{Path(a.filters).stem}"
            out.append((label, recipe))
    except ConfigError as e:
        sys.exit(f"bench_filters: {e}")
    base_label, base = out[0]
    for mode in [m for m in a.peer_modes.split(",") if m]:
        if mode not in MODES:
            sys.exit(f"bench_filters: unknown mode {mode!r} (choose from: {', '.join(sorted(MODES))})")
        try:
            check_mode(mode)
        except ConfigError as e:
            print(f"note: reference point {mode} skipped: {e}")
            continue
        recipe = copy.deepcopy(base)
        recipe["extract"]["mode"] = mode
        out.append((f"{base_label}@{mode}", recipe))
    return out


def set_name(warc: Path) -> str:
    return warc.name.split(".warc")[0]


def print_rows(name: str, rows: dict[str, dict]) -> None:
    first = next(iter(rows.values()))
    print(f"\n== {name} ({first['pages']} pages in the filters' languages; "
          + "; ".join(f"{label}: {r['off_language_pages']} out of language, {r['off_language_removed']} of them "
                      f"removed" for label, r in rows.items() if r["off_language_pages"]) + ")")
    head = (f"{'config':<28} {'extr F1':>7} {'kept F1':>7} {'kept P':>6} {'kept R':>6} {'lost':>8} "
            f"{'boiler':>8} {'lost/bp':>7} {'kept%':>6}  docs removed")
    print(head)
    for label, r in rows.items():
        rem = ", ".join(f"{k} {v}" for k, v in list(r["docs_removed"].items())[:5])
        print(f"{label:<28} {r['extract_f1']:7.3f} {r['kept_f1']:7.3f} {r['kept_p']:6.3f} {r['kept_r']:6.3f} "
              f"{r['content_lost_words']:8d} {r['boilerplate_removed_words']:8d} {r['lost_per_boilerplate']:7.2f} "
              f"{r['pages_kept']:6.1%}  {rem}")
    if "by_type" in first:
        for label, r in rows.items():
            print(f"  {label}: per page type (extract F1 -> kept F1, lost/boilerplate words, pages kept)")
            for t, x in r["by_type"].items():
                print(f"    {t:<14} {x['extract_f1']:.3f} -> {x['kept_f1']:.3f}  {x['content_lost_words']:>7d} / "
                      f"{x['boilerplate_removed_words']:<7d} {x['pages_kept']:6.1%}")


def rounded(x):
    if isinstance(x, float):
        return round(x, 4) if x != float("inf") else None
    if isinstance(x, dict):
        return {k: rounded(v) for k, v in x.items()}
    return x


def main(argv=None) -> None:
    a = parse_args(argv)
    configs = configurations(a)
    result: dict = {}
    per_page = open(a.per_page, "w", encoding="utf-8") if a.per_page else None
    failures = []
    for warc, truth_path in zip(a.warc, a.truth):
        name = set_name(warc)
        truth = load_truth(truth_path)
        add_languages(truth)
        rows = {}
        for label, recipe in configs:
            t0 = time.time()
            docs, _ = extracted(warc, recipe, not a.no_cache)
            t1 = time.time()
            before = copy.deepcopy(docs)
            fate_by_id, _ = run_filters(docs, recipe)
            kept_text, fate = {}, {}
            for d in docs:
                u = norm_url(d["general_metadata"].get("url"))
                reason = fate_by_id.get(id(d))
                fate.setdefault(u, reason)
                kept_text.setdefault(u, doc_text(d) if reason is None else None)
            summary, pages = score_config(truth, before, kept_text, fate,
                                          target_languages(recipe["filters_config"]))
            summary["seconds"] = {"extract": t1 - t0, "filters": time.time() - t1}
            rows[label] = summary
            if per_page is not None:
                for p in pages:
                    per_page.write(json.dumps({"set": name, "config": label, **p}) + "\n")
        print_rows(name, rows)
        main_label = configs[0][0]
        for what, ok, detail in check_targets(name, rows[main_label]):
            print(f"  target {main_label} {what}: {detail} {'PASS' if ok else 'FAIL'}")
            if not ok:
                failures.append(f"{name} {what}")
        result[name] = rows
    if per_page is not None:
        per_page.close()
    print(f"\ntargets: {'all PASS' if not failures else 'FAIL: ' + '; '.join(failures)}")
    print(json.dumps(rounded(result), separators=(",", ":")))


if __name__ == "__main__":
    main()
