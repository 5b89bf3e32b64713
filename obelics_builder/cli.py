"""The ``obelics-build`` command line: one entry point, one module per subcommand (``obelics_builder.commands``)."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback

from . import __version__

#: subcommand -> (module, one-line help)
COMMANDS = {
    "crawl": ("obelics_builder.commands.crawl", "build a dataset from a Common Crawl dump or local WARC files"),
    "filter": ("obelics_builder.commands.filter", "reapply filter thresholds to a crawl output from its stored scores"),
    "status": ("obelics_builder.commands.status", "show done, failed and pending work of a crawl output"),
    "plan": ("obelics_builder.commands.plan", "print the recipe's plan (steps, inputs, outputs, fingerprints) and what a rerun would skip"),
    "estimate": ("obelics_builder.commands.estimate", "project the core-hours of a whole dump from measured throughput"),
    "extract": ("obelics_builder.commands.extract", "print the interleaved documents of WARC or HTML files as JSON lines"),
    "images": ("obelics_builder.commands.images", "run or retry the image step of a crawl output (fetch, decode, filter, NSFW)"),
    "shards": ("obelics_builder.commands.shards", "write OUT/dataset: Parquet and WebDataset shards, dataset card, funnel chart"),
    "convert": ("obelics_builder.commands.convert", "convert shards between Parquet (embedded images) and WebDataset"),
    "report": ("obelics_builder.commands.report", "write OUT/report: a static HTML report of documents, removals and the funnel"),
    "train": ("obelics_builder.commands.train", "train an IDEFICS-family model (idefics, idefics2, idefics3) on the shards"),
    "generate": ("obelics_builder.commands.generate", "few-shot captioning with a trained checkpoint"),
    "publish": ("obelics_builder.commands.publish", "upload OUT/dataset to the Hugging Face Hub"),
    "config": ("obelics_builder.commands.config", "check recipes and filter configs without running anything"),
}


def _add_common(p: argparse.ArgumentParser, default) -> None:
    g = p.add_argument_group("diagnostics")
    g.add_argument("-v", "--verbose", action="count", default=default,
                   help="more logging (-vv for debug logging); an error also shows its traceback")
    g.add_argument("--debug", action="store_true", default=False if default == 0 else argparse.SUPPRESS,
                   help="show the traceback of an error (for bug reports)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="obelics-build",
        description="Build OBELICS-style interleaved image-text datasets from Common Crawl: extract, filter, "
                    "deduplicate, fetch images, write shards.",
    )
    parser.add_argument("--version", action="version", version=f"obelics-builder {__version__}")
    _add_common(parser, default=0)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in COMMANDS.items():
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=help_text, description=getattr(mod, "DESCRIPTION", help_text),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        _add_common(p, default=argparse.SUPPRESS)  # also after the subcommand; SUPPRESS keeps the top-level value
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand.  A user mistake (:class:`UsageError`, :class:`ConfigError`) is one line on stderr and
    exit code 2; any other exception is one line and exit code 1, with the traceback only under ``--debug``/``-v``."""
    from .errors import UsageError
    from .recipe import ConfigError

    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(args.debug or args.verbose)
    level = logging.WARNING if args.verbose == 0 else logging.INFO if args.verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted: finished work is kept; rerun the same command to resume", file=sys.stderr)
        return 130
    except ConfigError as e:
        if debug:
            traceback.print_exc()
        print(config_error_message(e, parser.prog), file=sys.stderr)
        return 2
    except UsageError as e:
        if debug:
            traceback.print_exc()
        print(f"{parser.prog}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except Exception as e:  # a bug (or an environment failure): one line, the traceback on request
        if debug:
            traceback.print_exc()
            print(f"{parser.prog}: internal error: {type(e).__name__}: {_one_line(e)}", file=sys.stderr)
        else:
            print(f"{parser.prog}: internal error: {type(e).__name__}: {_one_line(e)} "
                  f"(run again with --debug for the traceback)", file=sys.stderr)
        return 1


def config_error_message(e, prog: str = "obelics-build") -> str:
    """A :class:`ConfigError` as printed: one problem on one line; several under a header, one per line."""
    problems = [" ".join(p.split()) for p in getattr(e, "problems", None) or [str(e)]]
    if len(problems) == 1:
        return f"{prog}: error: {problems[0]}"
    return "\n".join([f"{prog}: error: {len(problems)} problems in the configuration:",
                      *(f"  {p}" for p in problems)])


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


if __name__ == "__main__":
    sys.exit(main())
