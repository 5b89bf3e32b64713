#!/usr/bin/env python3
"""Build filters/wordlists/common_words_en.txt: the N most frequent English words of ``wordfreq``.

The OBELICS common-word list is not public (reference §6), so we derive ours reproducibly from the English
frequency data of the PyPI package ``wordfreq`` (data license CC BY-SA 4.0; see filters/wordlists/SOURCE.md).
``wordfreq`` is a build-time tool only:

    pip install 'wordfreq==3.1.1'
    python scripts/build_common_words.py                       # N = 50,000 (the shipped list)
    python scripts/build_common_words.py --n 100000 --out /tmp/common.txt
    python scripts/build_common_words.py --measure ../shared/data/pages/article-extraction-benchmark/ground-truth.json

Steps: ``wordfreq.top_n_list("en", N, wordlist="large")`` (frequency order); keep only entries that our filter
word splitter (``obelics_builder.quality.metrics.get_words``) maps to themselves (single tokens without leading or
trailing special characters — others can never match); add the typographic-apostrophe variant (``it’s``) of each
entry with an ASCII apostrophe, because wordfreq folds ’ into ' while our splitter keeps it.  One word per line,
UTF-8, in frequency order (variants right after their ASCII form).

``--measure FILE`` prints, for several N, how English article bodies (a ground-truth.json of
{id: {"articleBody": ...}}, English per lid.176 with p > 0.8) score under the common-word ratio.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from obelics_builder.quality.metrics import get_words, word_ratio  # noqa: E402

DEFAULT_N = 50_000
DEFAULT_OUT = REPO / "filters" / "wordlists" / "common_words_en.txt"


def build(n: int) -> list[str]:
    import wordfreq

    out: list[str] = []
    seen: set[str] = set()
    for word in wordfreq.top_n_list("en", n, wordlist="large"):
        if get_words(word) != [word]:
            continue
        for w in (word, word.replace("'", "\u2019")):
            if w not in seen:
                seen.add(w)
                out.append(w)
    return out


def measure(path: Path, sizes: list[int]) -> None:
    from obelics_builder.quality.langid import predict_lang

    data = json.loads(path.read_text(encoding="utf-8"))
    bodies = [v["articleBody"] for v in data.values() if v.get("articleBody")]
    english = [b for b, (lang, p) in zip(bodies, predict_lang(bodies)) if lang == "en" and p > 0.8]
    words = [get_words(b) for b in english]
    print(f"{len(english)} English article bodies of {len(bodies)}")
    for n in sizes:
        common = set(build(n))
        ratios = sorted(word_ratio(w, common) for w in words)
        share = sum(r >= 0.9 for r in ratios) / len(ratios)
        print(f"N={n:>7}: median {statistics.median(ratios):.4f}  p10 {ratios[len(ratios) // 10]:.4f}  "
              f"min {ratios[0]:.4f}  share >= 0.9: {share:.3f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=DEFAULT_N, help=f"top-N wordfreq entries (default {DEFAULT_N})")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--measure", type=Path, help="ground-truth.json of English articles: report ratios, write nothing")
    args = ap.parse_args(argv)
    if args.measure:
        measure(args.measure, [10_000, 20_000, 30_000, 50_000, 75_000, 100_000])
        return 0
    words = build(args.n)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text("".join(w + "\n" for w in words), encoding="utf-8")
    tmp.replace(args.out)
    print(f"wrote {len(words)} words to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
