"""``obelics-build generate``: few-shot captioning with a trained checkpoint."""
from __future__ import annotations

import argparse
import json
import sys

DESCRIPTION = """\
Few-shot captioning: N in-context (image, caption) pairs, then each query image; greedy decoding.  Shots and queries
come from image files or from the shards of a crawl output (an image directly followed by a text gives the pair;
the caption is that text's first sentence, kept as the reference for queries).  Prints one JSON line per query.

Examples:
  obelics-build generate --checkpoint ./run --shots 2 --data ./out --queries 5
  obelics-build generate --checkpoint ./run/checkpoint-0001000 --shot-image a.jpg b.jpg \\
      --shot-caption "A red house." "Two dogs on a beach." --query q1.jpg q2.jpg
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="training output dir (newest checkpoint), checkpoint or model dir")
    p.add_argument("--shots", type=int, default=2, help="in-context examples per query")
    p.add_argument("--data", nargs="+", help="crawl output folder or shards to take shots/queries from")
    p.add_argument("--queries", type=int, default=4, help="queries taken from --data (after the shots)")
    p.add_argument("--shot-image", nargs="*", default=[], help="in-context images (files)")
    p.add_argument("--shot-caption", nargs="*", default=[], help="their captions, same order")
    p.add_argument("--query", nargs="*", default=[], help="query image files")
    p.add_argument("--max-new-tokens", type=int, default=20)
    p.add_argument("--threads", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    try:
        import torch

        from ..train import generate as G
        from ..train.data import DataError
    except ImportError as e:
        print(f"generate: missing dependency ({e}); pip install 'obelics-builder[train]'", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    if len(args.shot_image) != len(args.shot_caption):
        print("generate: give as many --shot-caption as --shot-image", file=sys.stderr)
        return 2
    try:
        loaded = G.load_checkpoint(args.checkpoint)
    except (FileNotFoundError, OSError, ValueError) as e:
        print(f"generate: {e}", file=sys.stderr)
        return 2
    try:
        shots = [(G.load_image_file(i, loaded.prep), c) for i, c in zip(args.shot_image, args.shot_caption)]
        queries = [(G.load_image_file(q, loaded.prep), None, q) for q in args.query]
        if args.data:
            pairs = G.pairs_from_shards(args.data, loaded.prep)
            while len(shots) < args.shots:
                img, cap, _ = next(pairs)
                shots.append((img, cap))
            if not args.query:
                for _ in range(args.queries):
                    img, cap, src = next(pairs)
                    queries.append((img, cap, src))
    except StopIteration:
        print("generate: the shards hold too few (image, text) pairs for the requested shots and queries",
              file=sys.stderr)
        return 2
    except (ValueError, OSError, DataError) as e:
        print(f"generate: {e}", file=sys.stderr)
        return 2
    shots = shots[:args.shots]
    if len(shots) < args.shots:
        print(f"generate: {args.shots} shots requested, {len(shots)} given (use --data or --shot-image)",
              file=sys.stderr)
        return 2
    if not queries:
        print("generate: no query (use --query FILE... or --data)", file=sys.stderr)
        return 2
    for img, ref, src in queries:
        row = G.build_prompt(shots, img, loaded.tokenizer, loaded.spec)
        cap = G.greedy_generate(loaded, row, args.max_new_tokens)
        print(json.dumps({"query": src, "shots": len(shots), "caption": cap, "reference": ref}), flush=True)
    return 0
