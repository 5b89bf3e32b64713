"""``obelics-build shards``: OUT/documents + OUT/images/table -> OUT/dataset (Parquet, WebDataset, card)."""
from __future__ import annotations

import argparse
import sys

DESCRIPTION = """\
Write the final dataset folder OUT/dataset/ from a crawl output: Parquet shards in the published OBELICS schema
(data/train-NNNNN-of-MMMMM.parquet, images as URLs), WebDataset tars for training (webdataset/train-NNNNN.tar:
KEY.json + KEY.<pos>.<ext> per image), shards.json, the dataset card README.md and funnel.png.
`crawl` and `filter` do this at their end; run it to change the shard size, or to rebuild a dataset marked
STALE (OUT/dataset/STALE, left by `filter --no-dataset` or an interrupted `filter`).

Examples:
  obelics-build shards ./out
  obelics-build shards ./out --shard-size 1GB --embed-images
  obelics-build shards ./out --no-webdataset
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", help="crawl output folder (holds documents/, images/table/ and stats.json)")
    p.add_argument("--shard-size", default="500MB", help="target size of each shard (default 500MB; e.g. 2GB, 64MiB)")
    p.add_argument("--embed-images", action="store_true",
                   help="add an image_bytes column (list<binary>, null at text positions) to the Parquet shards")
    p.add_argument("--no-webdataset", action="store_true", help="do not write the WebDataset tars")
    p.add_argument("--license", default=None, help="license id for the card (default: other)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..dataset.shards import document_parts, parse_size, write_dataset

    try:
        size = parse_size(args.shard_size)
    except ValueError as e:
        print(f"shards: --shard-size: {e}", file=sys.stderr)
        return 2
    if not (Path(args.out) / "documents").is_dir():
        print(f"shards: {Path(args.out) / 'documents'} not found: is {args.out} a crawl output?", file=sys.stderr)
        return 2
    if not document_parts(args.out):
        print(f"shards: warning: no complete document parts in {Path(args.out) / 'documents'}; writing an empty "
              "dataset", file=sys.stderr)
    result = write_dataset(args.out, size, embed_images=args.embed_images, webdataset=not args.no_webdataset,
                           license=args.license)
    print(f"{result['documents']} documents, {result['images']} images ({result['images_with_bytes']} with bytes), "
          f"{result['tokens']} tokens -> {len(result['parquet'])} Parquet shard(s)"
          + (f", {len(result['webdataset'])} tar shard(s)" if result["webdataset"] else "")
          + f" in {Path(args.out) / 'dataset'}")
    return 0
