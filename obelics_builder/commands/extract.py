"""``obelics-build extract INPUT...``: print the interleaved documents of WARC or HTML files as JSON lines."""
from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from collections import Counter
from pathlib import Path

from ..errors import UsageError
from ..recipe import ExtractConfig

DESCRIPTION = """\
Extract interleaved documents (text paragraphs and images in page order) from WARC/ARC files or saved HTML pages
and print one JSON line per document: the published OBELICS row (texts, images, metadata and general_metadata as
JSON strings) with the page URL on top. Nothing is filtered; use it to inspect what the extractor keeps.
The extractor is ours (--mode default, as in `crawl`); --mode obelics applies the OBELICS reference rules;
--mode trafilatura runs trafilatura 2.3 with images (the optional extra obelics-builder[trafilatura]).

INPUT is a .warc, .warc.gz, .arc or .arc.gz file (HTML responses with status 200 are extracted), or a .html /
.html.gz page. A single HTML page takes --url (image URLs are resolved against it); HTML pages without --url
are named file://<absolute path>, and one with relative image URLs (img/a.jpg, /a.jpg, //host/a.jpg) is refused
before any output, since they cannot be resolved without the page's address. Rejected pages and read errors are counted on stderr by reason.
.warc.gz may be gzipped per record or as one stream; .warc.zst (zstd) is read too.

Examples:
  obelics-build extract CC-MAIN-2020-34-xyz.warc.gz --limit 10
  obelics-build extract page.html.gz --url https://example.com/article
"""

_WARC_SUFFIXES = (".warc", ".warc.gz", ".warc.zst", ".arc", ".arc.gz")
_HTML_SUFFIXES = (".html", ".htm", ".html.gz", ".htm.gz", ".xhtml")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="WARC/ARC files (.warc[.gz|.zst], .arc[.gz]) or HTML "
                                                              "pages (.html[.gz])")
    p.add_argument("--url", default=None, help="page URL of a single HTML input (used to resolve image URLs)")
    p.add_argument("--mode", default=ExtractConfig.mode, choices=["obelics", "default", "trafilatura"],
                   help="extractor: default = ours, obelics = the OBELICS reference rules, trafilatura = trafilatura "
                        "2.3 with images (optional extra: pip install 'obelics-builder[trafilatura]') "
                        "(default: %(default)s)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="stop after N documents")
    p.add_argument("--page-time-budget", type=float, default=ExtractConfig.page_time_budget_s, metavar="S",
                   help="seconds one page may take before it is dropped as 'timeout' (default: %(default)s)")


def _kind(path: str) -> str | None:
    low = path.lower()
    if low.endswith(_WARC_SUFFIXES):
        return "warc"
    if low.endswith(_HTML_SUFFIXES):
        return "html"
    return None


def _read_html(path: str) -> bytes:
    data = Path(path).read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data


#: the stand-in page address of the relative-image check (a reserved name: never fetched, never printed)
_PROBE_URL = "https://page-address-unknown.invalid/page.html"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def relative_images(body: bytes, mode: str, budget: float) -> list[str]:
    """The image references of ``body`` the extractor keeps when the page has an address but that need one to be
    resolved (no scheme: ``img/a.jpg``, ``/a.jpg``, ``//host/a.jpg``); without ``--url`` they would be lost."""
    from ..extract.stage import ExtractionRejected, extract_record

    try:
        doc = extract_record({"url": _PROBE_URL, "body": body, "http_headers": {}}, mode, budget)
    except ExtractionRejected:
        return []
    found = []
    for url, meta in zip(doc["images"], doc["metadata"]):
        if url is None:
            continue
        raw = str((meta or {}).get("unformatted_src") or url).strip()
        if not _SCHEME.match(raw):
            found.append(raw)
    return found


def check_html_without_url(paths: list[str], mode: str, budget: float) -> None:
    """Refuse (:class:`UsageError`) HTML inputs without ``--url`` whose images are relative: one message, before
    any document is printed."""
    from ..errors import UsageError

    problems = []
    for path in paths:
        try:
            rel = relative_images(_read_html(path), mode, budget)
        except Exception:  # noqa: BLE001 - unreadable files and extractor failures: reported by the main pass
            continue
        if rel:
            shown = ", ".join(rel[:3]) + (", ..." if len(rel) > 3 else "")
            problems.append(f"{path} has {len(rel)} relative image URL(s) ({shown})")
    if problems:
        raise UsageError("extract: " + "; ".join(problems) + ": they cannot be resolved without the page's "
                         "address; give it with --url https://... (one HTML input per run)")


def run(args: argparse.Namespace) -> int:
    from ..extract.stage import ExtractionRejected, check_mode, extract_record
    from ..recipe import ConfigError
    from ..schema import to_obelics_row
    from ..sources.commoncrawl import warc_refs_from_paths
    from ..sources.warc import iter_html_records
    from ..stats import StageContext, Stats

    for p in args.inputs:  # a path that names nothing is a usage error, found before any work (exit 2)
        if "://" not in p and not Path(p).is_file():
            raise UsageError(f"{p}: {'is a folder, not a file' if Path(p).is_dir() else 'no such file'}")
    try:
        check_mode(args.mode)  # an optional extractor that is not installed stops here, before any input is read
    except ConfigError as e:
        print(f"extract: {e}", file=sys.stderr)
        return 2
    html_inputs = [p for p in args.inputs if _kind(p) == "html"]
    if args.url and len(html_inputs) > 1:
        print("extract: --url applies to a single HTML input", file=sys.stderr)
        return 2
    if not args.url:
        check_html_without_url(html_inputs, args.mode, args.page_time_budget)
    stats = Stats()
    read_ctx = StageContext("read", {}, stats)
    rejected: Counter = Counter()
    n_out = 0
    inputs_read = 0
    limit = args.limit

    def emit(record: dict) -> bool:
        """Extract and print one record; False once the limit is reached."""
        nonlocal n_out
        try:
            doc = extract_record(record, args.mode, args.page_time_budget)
        except ExtractionRejected as e:
            rejected[e.reason] += 1
            return True
        except ConfigError:
            raise
        except Exception as e:  # never let one page stop the command
            rejected["extract_exception"] += 1
            print(f"extract: {record.get('url')}: {type(e).__name__}: {e}", file=sys.stderr)
            return True
        sys.stdout.write(json.dumps(to_obelics_row(doc), ensure_ascii=False) + "\n")
        n_out += 1
        return limit is None or n_out < limit

    try:
        for path in args.inputs:
            if limit is not None and n_out >= limit:
                break
            kind = _kind(path)
            if kind is None:
                print(f"extract: {path}: unknown input type (expected .warc[.gz], .arc[.gz] or .html[.gz])",
                      file=sys.stderr)
                continue
            if kind == "html":
                try:
                    body = _read_html(path)
                except (OSError, EOFError, gzip.BadGzipFile) as e:
                    print(f"extract: cannot read {path}: {e}", file=sys.stderr)
                    continue
                inputs_read += 1
                url = args.url or Path(path).resolve().as_uri()
                if not emit({"url": url, "body": body, "http_headers": {}}):
                    break
                continue
            ref = warc_refs_from_paths([path])[0]
            # the reader counts a file of which no record could be read in read.inputs_unreadable (and names it)
            before = stats.stage("read").get("inputs_unreadable", 0)
            for record in iter_html_records(ref, read_ctx):
                if not emit(record):
                    break
            if stats.stage("read").get("inputs_unreadable", 0) > before:
                named = stats.stage("read").get("unreadable_inputs") or [{}]
                why = f": {named[-1]['reason']}: {named[-1]['message']}" if named[-1].get("file") == ref.name else ""
                print(f"extract: cannot read {path}{why}", file=sys.stderr)
            else:
                inputs_read += 1
    except ConfigError as e:
        print(f"extract: {e}", file=sys.stderr)
        return 2
    sys.stdout.flush()

    read = stats.stage("read")
    parts = [f"{n_out} documents"]
    if rejected:
        parts.append("rejected: " + ", ".join(f"{k}={v}" for k, v in sorted(rejected.items())))
    skipped = dict(read["removed"])
    if skipped:
        parts.append("records skipped: " + ", ".join(f"{k}={v}" for k, v in sorted(skipped.items())))
    if read["errors"]:
        parts.append("read errors: " + ", ".join(f"{k}={v}" for k, v in sorted(read["errors"].items())))
    print("extract: " + "; ".join(parts), file=sys.stderr)
    return 0 if inputs_read else 1
