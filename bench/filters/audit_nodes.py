#!/usr/bin/env python3
"""Which node checks remove content, per node kind: a tuning aid for the text filters.

    .venv/bin/python bench/filters/audit_nodes.py [--warc FILE --truth FILE]... [--filters NAME_OR_PATH]
        [--examples N]

Extracts each dev set as ``bench_filters`` does (same cache), scores it with the filter config (``node.structure``
turned on, so every paragraph has a kind), and for every paragraph of a truth page evaluates each enabled node
check on its own.  A paragraph is *content* when at least half of its words are words of the page's truth.  Per
set, kind and check it prints the paragraphs the check would drop and their words split into content and
boilerplate, and the same for "first failing check" (what the filter actually does).  Last line JSON.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_filters as BF  # noqa: E402

from obelics_builder.stats import StageContext, Stats, run_stage  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--warc", action="append", type=Path)
    ap.add_argument("--truth", action="append", type=Path)
    ap.add_argument("--filters", default="obelics")
    ap.add_argument("--examples", type=int, default=0, help="print N dropped content paragraphs per kind/check")
    ap.add_argument("--dump", type=Path, help="write one JSON line per paragraph (set, page type, kind, content "
                    "and boilerplate words, every node score) for threshold sweeps")
    a = ap.parse_args(argv)
    if not a.warc:
        a.warc = sorted(BF.DEFAULT_EVAL.glob("*.warc.gz"))
        a.truth = [w.with_name(BF.set_name(w) + ".truth.jsonl") for w in a.warc]
    from obelics_builder.quality.score import NODE_CHECKS as CHECKS, compile_checks, text_score_stage
    from obelics_builder.quality.structure import KIND_COLUMN
    from obelics_builder.recipe import load_filters, load_recipe
    from obelics_builder.schema import paragraphs

    recipe = load_recipe("obelics")
    fcfg = copy.deepcopy(load_filters(a.filters))
    fcfg.setdefault("node", {}).setdefault("structure", {})["enabled"] = True
    checks = compile_checks(fcfg["node"])
    result = {}
    dump = open(a.dump, "w", encoding="utf-8") if a.dump else None
    for warc, tpath in zip(a.warc, a.truth):
        name = BF.set_name(warc)
        truth = {BF.norm_url(t["url"]): t for t in BF.load_truth(tpath)}
        docs, _ = BF.extracted(warc, recipe, True)
        docs = [d for d in docs if BF.norm_url(d["general_metadata"].get("url")) in truth]
        scored = run_stage(text_score_stage, copy.deepcopy(docs), StageContext("text_scores", fcfg, Stats(), {}))
        each = defaultdict(lambda: [0, 0, 0])   # (kind, check) -> nodes, content words, boilerplate words
        first = defaultdict(lambda: [0, 0, 0])
        total = defaultdict(lambda: [0, 0, 0])
        examples = defaultdict(list)
        for d in scored:
            page = truth[BF.norm_url(d["general_metadata"]["url"])]
            tw = set(BF.words(page["text"]))
            for i, text in enumerate(d["texts"]):
                if text is None:
                    continue
                for j, p in enumerate(paragraphs(text)):
                    w = BF.WORD.findall(p.lower())
                    if not w:
                        continue
                    content = sum(x in tw for x in w) * 2 >= len(w)
                    kind = d[KIND_COLUMN][i][j]
                    cell = (len(w), 0) if content else (0, len(w))
                    t = total[kind]
                    t[0] += 1; t[1] += cell[0]; t[2] += cell[1]
                    fails = []
                    for check, lo, hi, _, _ in checks:
                        v = d.get(f"node_{CHECKS[check]}")
                        v = None if v is None else v[i][j]
                        if v is not None and ((lo is not None and v < lo) or (hi is not None and v > hi)):
                            fails.append(check)
                    if dump is not None:
                        dump.write(json.dumps({"set": name, "type": page.get("page_type", "article"),
                                               "url": page["url"], "pos": [i, j], "kind": kind, "c": cell[0],
                                               "b": cell[1], **{c: d[f"node_{s}"][i][j] for c, s in CHECKS.items()
                                                               if d.get(f"node_{s}") is not None}}) + "\n")
                    for n, check in enumerate(fails):
                        for agg in ((each,) if n else (each, first)):
                            e = agg[(kind, check)]
                            e[0] += 1; e[1] += cell[0]; e[2] += cell[1]
                        if content and n == 0 and len(examples[(kind, check)]) < a.examples:
                            examples[(kind, check)].append(p[:160].replace("\n", " ⏎ "))
        print(f"\n== {name}: paragraphs by kind (nodes, content words, boilerplate words)")
        for k, (n, c, b) in sorted(total.items(), key=lambda x: -x[1][1] - x[1][2]):
            print(f"  {k:<8} {n:7d} {c:9d} {b:9d}")
        print("  kind     check               | first failing: nodes content bp | any failing: nodes content bp")
        for key in sorted(each, key=lambda k: -each[k][1]):
            f, e = first.get(key, [0, 0, 0]), each[key]
            print(f"  {key[0]:<8} {key[1]:<19} | {f[0]:7d} {f[1]:8d} {f[2]:7d} | {e[0]:7d} {e[1]:8d} {e[2]:7d}")
            for ex in examples.get(key, []):
                print(f"      · {ex}")
        result[name] = {"total": dict(total), "first": {f"{k}:{c}": v for (k, c), v in first.items()},
                        "any": {f"{k}:{c}": v for (k, c), v in each.items()}}
    if dump is not None:
        dump.close()
    print(json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
