"""``obelics-build convert``: Parquet shards (with embedded image bytes) <-> WebDataset tars, without loss."""
from __future__ import annotations

import argparse
import sys

DESCRIPTION = """\
Convert dataset shards between the two formats, without loss: Parquet (published OBELICS columns, plus image_bytes
when images are embedded) <-> WebDataset tars (KEY.json + KEY.<pos>.<ext>). The direction follows from SRC unless
--to is given. SRC is a shard file or a folder (OUT/dataset, its data/ or webdataset/); DST is the output folder.

Examples:
  obelics-build convert out/dataset/data /tmp/wds                 # parquet -> webdataset
  obelics-build convert /tmp/wds /tmp/parquet                     # webdataset -> parquet
  obelics-build convert out/dataset /tmp/wds --to webdataset      # folder holding both: say which way
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", help="source shards: a .parquet/.tar file or a folder")
    p.add_argument("dst", help="destination folder")
    p.add_argument("--to", choices=["parquet", "webdataset"], default=None, help="target format (default: the other)")
    p.add_argument("--shard-size", default="500MB", help="target size of each output shard (default 500MB)")


def run(args: argparse.Namespace) -> int:
    from ..dataset.convert import ConvertError, convert
    from ..dataset.shards import parse_size

    try:
        result = convert(args.src, args.dst, to=args.to, shard_size=parse_size(args.shard_size))
    except (ConvertError, ValueError) as e:
        print(f"convert: {e}", file=sys.stderr)
        return 2
    print(f"{result['documents']} documents, {result['image_files']} image files -> {len(result['shards'])} "
          f"{result['to']} shard(s) in {args.dst}")
    for reason, n in sorted((result.get("skipped") or {}).items()):
        print(f"skipped {n} tar sample(s): {reason}", file=sys.stderr)
    return 0
