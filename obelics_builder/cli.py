"""The ``obelics-build`` command line: one entry point, one module per subcommand (``obelics_builder.commands``)."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from . import __version__

#: subcommand -> (module, one-line help)
COMMANDS = {
    "crawl": ("obelics_builder.commands.crawl", "build a dataset from a Common Crawl dump or local WARC files"),
    "filter": ("obelics_builder.commands.filter", "reapply filter thresholds to a crawl output from its stored scores"),
    "status": ("obelics_builder.commands.status", "show done, failed and pending work of a crawl output"),
    "estimate": ("obelics_builder.commands.estimate", "project the core-hours of a whole dump from measured throughput"),
    "extract": ("obelics_builder.commands.extract", "print the interleaved documents of WARC or HTML files as JSON lines"),
    "images": ("obelics_builder.commands.images", "run or retry the image step of a crawl output (fetch, decode, filter, NSFW)"),
    "shards": ("obelics_builder.commands.shards", "write OUT/dataset: Parquet and WebDataset shards, dataset card, funnel chart"),
    "convert": ("obelics_builder.commands.convert", "convert shards between Parquet (embedded images) and WebDataset"),
    "report": ("obelics_builder.commands.report", "write OUT/report: a static HTML report of documents, removals and the funnel"),
    "train": ("obelics_builder.commands.train", "train an IDEFICS-family model (idefics, idefics2, idefics3) on the shards"),
    "generate": ("obelics_builder.commands.generate", "few-shot captioning with a trained checkpoint"),
    "publish": ("obelics_builder.commands.publish", "upload OUT/dataset to the Hugging Face Hub"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="obelics-build",
        description="Build OBELICS-style interleaved image-text datasets from Common Crawl: extract, filter, "
                    "deduplicate, fetch images, write shards.",
    )
    parser.add_argument("--version", action="version", version=f"obelics-builder {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in COMMANDS.items():
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=help_text, description=getattr(mod, "DESCRIPTION", help_text),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.verbose == 0 else logging.INFO if args.verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted: finished work is kept; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
