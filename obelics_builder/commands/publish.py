"""``obelics-build publish``: upload OUT/dataset to a dataset repository on the Hugging Face Hub."""
from __future__ import annotations

import argparse
import sys

DESCRIPTION = """\
Upload OUT/dataset (Parquet and WebDataset shards, shards.json, README.md card, funnel.png) to a Hugging Face Hub
dataset repository, creating it if needed, in batched commits kept under the Hub's commit-rate limit. Rerunning
after an interruption resumes: files already on the Hub with the same content are not sent again. An incomplete
OUT (missing shards, stats.json or card) is refused.

The token comes from HF_TOKEN or from `hf auth login`; it is never printed. HF_ENDPOINT selects another Hub.

Examples:
  obelics-build publish ./out --repo-id me/my-obelics --dry-run      # print the file plan, upload nothing
  HF_TOKEN=... obelics-build publish ./out --repo-id me/my-obelics --private
  obelics-build publish ./out --repo-id my-org/obelics-2023-06 --revision v1
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", help="crawl output folder holding dataset/ and stats.json")
    p.add_argument("--repo-id", required=True, help="dataset repository: NAMESPACE/NAME (or NAME under your user)")
    p.add_argument("--private", action="store_true", help="create the repository as private (if it does not exist)")
    p.add_argument("--revision", default=None, help="branch to commit to (created from main if missing)")
    p.add_argument("--dry-run", action="store_true", help="print the file plan (paths, sizes, commits) and stop")
    p.add_argument("--max-files-per-commit", type=int, default=50, help="files per commit (default 50)")


def run(args: argparse.Namespace) -> int:
    from ..dataset.publish import PublishError, publish

    try:
        publish(args.out, args.repo_id, private=args.private, revision=args.revision, dry_run=args.dry_run,
                max_files=max(1, args.max_files_per_commit))
    except PublishError as e:
        print(f"publish: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # client/HTTP errors: the message, never the request headers
        print(f"publish: failed: {type(e).__name__}: {e}", file=sys.stderr)
        print("publish: rerun the same command to resume; files already uploaded are not sent again",
              file=sys.stderr)
        return 1
    return 0
