#!/usr/bin/env python3
"""What each rule of a filter config is worth: the config with one rule changed at a time, through bench_filters.

    .venv/bin/python bench/filters/ablation.py [--filters NAME_OR_PATH] [--set KEY=VALUE ...]

Runs the default recipe's extraction (cached, as ``bench_filters``) and the filter stages on every dev set for the
config (default ``obelics-structured``) and for each variant below (or one ``--set`` variant: dotted keys, YAML
values, e.g. ``--set doc.word_repetition.max=0.2``), and prints a Markdown table: kept-text F1, content lost and
boilerplate removed (words) and pages kept, per set.  The figures of ``filters/README.md`` come from this script.
Last line JSON.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_filters as BF  # noqa: E402

#: (label, overrides) applied to the config one at a time; a value None deletes the key
VARIANTS: list[tuple[str, dict]] = [
    ("reference node checks on every paragraph (no kinds, no repeats, no heading rule)",
     {"node": "@obelics.node"}),
    ("prose checks at the reference thresholds, on prose only",
     {"node.word_repetition": {"enabled": True, "n": 5, "max": 0.1, "kinds": ["prose"]},
      "node.special_characters": {"enabled": True, "max": 0.3, "kinds": ["prose"]},
      "node.stopwords": {"enabled": True, "min": 0.3, "kinds": ["prose"]},
      "node.punctuation": {"enabled": True, "min": 0.001, "min_words": 12, "kinds": ["prose"]},
      "node.common_words": {"enabled": True, "min": 0.8, "kinds": ["prose"]}}),
    ("no prose checks (stopwords, punctuation, common words, special characters off)",
     {"node.special_characters.enabled": False, "node.stopwords.enabled": False,
      "node.punctuation.enabled": False, "node.common_words.enabled": False}),
    ("node stopwords and punctuation each alone (no `and`: the previous default)",
     {"node.stopwords.and": None, "node.punctuation.enabled": True}),
    ("no repeated-paragraph check", {"node.repeated.enabled": False}),
    ("repeated-paragraph check on code too", {"node.repeated.kinds": None}),
    ("headings do not follow their section", {"node.structure.headings_follow_section": False}),
    ("no list number_words min 3", {"node.number_words.enabled": False}),
    ("node flagged_words at the reference 0.01", {"node.flagged_words.max": 0.01}),
    ("no doc.prose (every doc check reads text_kinds: the previous default)", {"doc.prose": None}),
    ("doc.prose without stopwords (doc stopwords reads text_kinds)",
     {"doc.prose.checks": ["char_repetition", "word_repetition", "special_characters", "punctuation",
                           "common_words"]}),
    ("doc.prose min_words 20", {"doc.prose.min_words": 20}),
    ("doc.prose min_words 100", {"doc.prose.min_words": 100}),
    ("doc.prose kinds with headings and lists", {"doc.prose.kinds": ["prose", "heading", "list", "caption"]}),
    ("doc checks read every kind (no text_kinds: code and tables too)", {"doc.text_kinds": None}),
    ("doc number_words max 2000 (the reference cap)", {"doc.number_words.max": 2000}),
    ("doc char_repetition max 0.1 (reference)", {"doc.char_repetition.max": 0.1}),
    ("doc word_repetition max 0.2 (reference)", {"doc.word_repetition.max": 0.2}),
    ("doc special_characters max 0.275 (reference)", {"doc.special_characters.max": 0.275}),
    ("doc stopwords min 0.35 (reference)", {"doc.stopwords.min": 0.35}),
    ("no doc stopwords check", {"doc.stopwords.enabled": False}),
    ("doc punctuation min 0.03 (reference)", {"doc.punctuation.min": 0.03}),
    ("doc common_words min 0.9 (reference)", {"doc.common_words.min": 0.9}),
    ("doc lang_id min 0.8 (reference)", {"doc.lang_id.min": 0.8}),
]


def apply(cfg: dict, overrides: dict, reference: dict) -> dict:
    out = copy.deepcopy(cfg)
    for key, value in overrides.items():
        if isinstance(value, str) and value.startswith("@obelics."):
            value = copy.deepcopy(reference[value.split(".", 1)[1]])
        *parents, last = key.split(".")
        d = out
        for p in parents:
            d = d.setdefault(p, {})
        if value is None:
            d.pop(last, None)
        else:
            d[last] = value
    return out


def measure(recipe: dict, fcfg: dict, sets) -> dict:
    recipe = copy.deepcopy(recipe)
    recipe["filters_config"] = fcfg
    rows = {}
    for name, warc, truth in sets:
        docs, _ = BF.extracted(warc, recipe, True)
        before = copy.deepcopy(docs)
        fate_by_id, _ = BF.run_filters(docs, recipe)
        kept_text, fate = {}, {}
        for d in docs:
            u = BF.norm_url(d["general_metadata"].get("url"))
            reason = fate_by_id.get(id(d))
            fate.setdefault(u, reason)
            kept_text.setdefault(u, BF.doc_text(d) if reason is None else None)
        summary, _ = BF.score_config(truth, before, kept_text, fate, BF.target_languages(fcfg))
        rows[name] = {k: summary[k] for k in ("extract_f1", "kept_f1", "content_lost_words",
                                              "boilerplate_removed_words", "pages_kept")}
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--filters", default="obelics-structured")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="one variant with these overrides instead of the built-in list")
    a = ap.parse_args(argv)
    from obelics_builder.recipe import load_filters, load_recipe

    recipe = load_recipe("obelics")
    base = load_filters(a.filters)
    reference = load_filters("obelics")
    variants = VARIANTS
    if a.set:
        variants = [(" ".join(a.set), {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in a.set)})]
    sets = []
    for warc in sorted(BF.DEFAULT_EVAL.glob("*.warc.gz")):
        name = BF.set_name(warc)
        truth = BF.load_truth(warc.with_name(name + ".truth.jsonl"))
        BF.add_languages(truth)
        sets.append((name, warc, truth))
    results = {a.filters: measure(recipe, BF.text_only(base), sets)}
    for label, overrides in variants:
        results[label] = measure(recipe, BF.text_only(apply(base, overrides, reference)), sets)
    names = [s[0] for s in sets]
    print("| variant | " + " | ".join(f"{n}: kept F1, lost / boilerplate, pages kept" for n in names) + " |")
    print("| --- | " + " | ".join("---" for _ in names) + " |")
    for label, rows in results.items():
        cells = [f"{r['kept_f1']:.3f}, {r['content_lost_words']:,} / {r['boilerplate_removed_words']:,}, "
                 f"{r['pages_kept']:.1%}" for r in (rows[n] for n in names)]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print(json.dumps(BF.rounded(results), separators=(",", ":")))


if __name__ == "__main__":
    main()
