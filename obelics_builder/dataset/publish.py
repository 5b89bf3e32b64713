"""Upload ``OUT/dataset`` to a dataset repository on the Hugging Face Hub.

The folder goes up in batched commits (at most ``max_files`` files and ``max_bytes`` bytes each: the Hub recommends
fewer than 100 files per commit) paced under the Hub's commit-rate limit (128 commits per hour per repository; we
keep to ``commits_per_hour``) and retried after a 429 answer.  Shards go first, the card (README.md, funnel.png,
shards.json) last, in the commit that also deletes files of an earlier publication that this dataset no longer has
(so ``data/train-*`` never mixes two builds once the publication is complete).

Resumable: rerunning after an interruption re-sends nothing that is already there.  Before each commit the Hub's
preupload answer tells which files exist with the same content (those are dropped from the commit) and the LFS batch
answer which objects are already stored (those are not uploaded again).

The token comes from ``HF_TOKEN`` or the standard ``hf auth login`` store (``huggingface_hub.get_token``); it is
passed to the client and never printed or logged.
"""
from __future__ import annotations

import json
import logging
import re
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .shards import PARQUET_NAME, TAR_NAME

log = logging.getLogger("obelics_builder")

MAX_FILES_PER_COMMIT = 50
MAX_BYTES_PER_COMMIT = 20 * 10**9
COMMITS_PER_HOUR = 100
#: files that describe the dataset: uploaded in the last commit, after the shards they describe
CARD_FILES = ("shards.json", "funnel.png", "README.md")


class PublishError(RuntimeError):
    pass


@dataclass
class PlannedFile:
    path: Path  # local
    path_in_repo: str
    size: int


def check_complete(out: str | Path) -> list[str]:
    """Why ``OUT`` cannot be published (an empty list: it can)."""
    out = Path(out)
    root = out / "dataset"
    problems = []
    if not (out / "stats.json").is_file():
        problems.append(f"{out / 'stats.json'} is missing (the crawl did not finish)")
    if not root.is_dir():
        return problems + [f"{root} is missing: run `obelics-build shards {out}` first"]
    from .stale import stale_reason

    why = stale_reason(out)
    if why is not None:
        problems.append(f"{root} is STALE ({why}): rebuild it with `obelics-build shards {out}`")
    card = root / "README.md"
    needed = [n for n in CARD_FILES if n != "funnel.png" or not card.is_file()
              or "(funnel.png)" in card.read_text(encoding="utf-8", errors="replace")]
    for name in needed:
        if not (root / name).is_file():
            problems.append(f"{root / name} is missing: run `obelics-build shards {out}`")
    tmp = [p.name for p in root.rglob("*.tmp")]
    if tmp:
        problems.append(f"unfinished shard files in {root} ({', '.join(sorted(tmp)[:3])}...): "
                        "a shards run was interrupted; rerun it")
    shards = sorted((root / "data").glob("train-*.parquet")) if (root / "data").is_dir() else []
    if not shards:
        problems.append(f"no Parquet shards in {root / 'data'}")
    else:
        parsed = [PARQUET_NAME.match(p.name) for p in shards]
        if not all(parsed):
            problems.append(f"unexpected file names in {root / 'data'}: "
                            f"{', '.join(p.name for p, m in zip(shards, parsed) if not m)}")
        else:
            totals = {int(m.group(2)) for m in parsed}
            indices = sorted(int(m.group(1)) for m in parsed)
            if len(totals) != 1 or indices != list(range(next(iter(totals)))):
                problems.append(f"Parquet shards in {root / 'data'} are incomplete or mixed: found "
                                f"{len(shards)} file(s) named for a total of {sorted(totals)}")
    tars = sorted((root / "webdataset").glob("*.tar")) if (root / "webdataset").is_dir() else []
    odd = [p.name for p in tars if not TAR_NAME.match(p.name)]
    if odd:
        problems.append(f"unexpected file names in {root / 'webdataset'}: {', '.join(odd[:3])}")
    manifest = root / "shards.json"
    if manifest.is_file():
        try:
            info = json.loads(manifest.read_text(encoding="utf-8"))
        except ValueError:
            info = None
            problems.append(f"{manifest} is not valid JSON")
        if info is not None and info.get("documents") == 0:
            problems.append(f"the dataset in {root} holds 0 documents: nothing to publish (the crawl kept no "
                            "document; see its summary and OUT/stats.json)")
        if info is not None:
            for f in info.get("parquet", []) + info.get("webdataset", []):
                p = root / f["path"]
                if not p.is_file():
                    problems.append(f"shard {f['path']} listed in shards.json is missing")
                elif p.stat().st_size != f["bytes"]:
                    problems.append(f"shard {f['path']} has {p.stat().st_size} bytes, shards.json says {f['bytes']}")
            listed = {f["path"] for f in info.get("parquet", []) + info.get("webdataset", [])}
            on_disk = {p.relative_to(root).as_posix() for p in shards}
            if (root / "webdataset").is_dir():
                on_disk |= {p.relative_to(root).as_posix() for p in (root / "webdataset").glob("*.tar")}
            extra = sorted(on_disk - listed)
            if extra:
                problems.append(f"shard files not listed in shards.json (left from another run?): {', '.join(extra[:3])}")
            stats_path = out / "stats.json"
            if stats_path.is_file():
                try:
                    docs = json.loads(stats_path.read_text(encoding="utf-8")).get("summary", {}).get("documents")
                except ValueError:
                    docs = None
                    problems.append(f"{stats_path} is not valid JSON")
                if docs is not None and docs != info.get("documents"):
                    problems.append(f"the shards hold {info.get('documents')} documents but stats.json says {docs}: "
                                    f"the shards are stale; rerun `obelics-build shards {out}`")
    return problems


def _is_hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def plan_upload(out: str | Path, max_files: int = MAX_FILES_PER_COMMIT,
                max_bytes: int = MAX_BYTES_PER_COMMIT) -> list[list[PlannedFile]]:
    """Commit batches: shards (in name order) first, packed by count and size; the card files last."""
    root = Path(out) / "dataset"
    files = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if p.is_file() and not _is_hidden(rel):
            files.append(PlannedFile(p, rel.as_posix(), p.stat().st_size))
    card = [f for f in files if f.path_in_repo in CARD_FILES]
    card.sort(key=lambda f: CARD_FILES.index(f.path_in_repo))
    body = [f for f in files if f.path_in_repo not in CARD_FILES]
    batches: list[list[PlannedFile]] = []
    current: list[PlannedFile] = []
    size = 0
    for f in body:
        if current and (len(current) >= max_files or size + f.size > max_bytes):
            batches.append(current)
            current, size = [], 0
        current.append(f)
        size += f.size
    if current:
        batches.append(current)
    batches.append(card)
    return batches


def _human(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def format_plan(batches: list[list[PlannedFile]], repo_id: str, revision: str | None) -> str:
    total = sum(f.size for b in batches for f in b)
    n = sum(len(b) for b in batches)
    lines = [f"plan: {n} file(s), {_human(total)} in {len(batches)} commit(s) to dataset {repo_id}"
             f" (revision {revision or 'main'})"]
    for i, batch in enumerate(batches, 1):
        lines.append(f"commit {i}/{len(batches)}: {len(batch)} file(s), {_human(sum(f.size for f in batch))}")
        for f in batch:
            lines.append(f"  {f.path_in_repo}  {f.size} bytes")
    lines.append("remote files under data/ and webdataset/ that are not in this plan are deleted in the last commit")
    return "\n".join(lines)


class CommitPacer:
    """Keeps at most ``per_hour`` commits in any sliding hour (sleeping when needed)."""

    def __init__(self, per_hour: int = COMMITS_PER_HOUR, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_hour = per_hour
        self.sleep, self.clock = sleep, clock
        self.times: deque[float] = deque()

    def wait(self) -> None:
        now = self.clock()
        while self.times and now - self.times[0] >= 3600:
            self.times.popleft()
        if len(self.times) >= self.per_hour:
            delay = 3600 - (now - self.times[0])
            log.warning("commit-rate limit: waiting %.0f s before the next commit", delay)
            self.sleep(delay)
            self.times.popleft()
        self.times.append(self.clock())


def _retry_after(err) -> float:
    resp = getattr(err, "response", None)
    value = resp.headers.get("retry-after") if resp is not None else None
    try:
        return max(1.0, min(float(value), 3600.0))
    except (TypeError, ValueError):
        return 60.0


def _status(err) -> int | None:
    resp = getattr(err, "response", None)
    return getattr(resp, "status_code", None)


def resolve_token(token: str | None = None) -> str | None:
    if token:
        return token
    from huggingface_hub import get_token

    return get_token()


def publish(out: str | Path, repo_id: str, private: bool = False, revision: str | None = None,
            dry_run: bool = False, token: str | None = None, max_files: int = MAX_FILES_PER_COMMIT,
            max_bytes: int = MAX_BYTES_PER_COMMIT, commits_per_hour: int = COMMITS_PER_HOUR,
            max_retries: int = 5, echo: Callable[[str], None] = print,
            sleep: Callable[[float], None] = time.sleep) -> dict:
    """Publish ``OUT/dataset`` to ``repo_id`` (a dataset repository); returns the plan and the commits made."""
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?", repo_id or ""):
        raise PublishError(f"invalid repository id {repo_id!r} (expected NAME or NAMESPACE/NAME)")
    problems = check_complete(out)
    if problems:
        raise PublishError("refusing to publish an incomplete output folder:\n  - " + "\n  - ".join(problems))
    batches = plan_upload(out, max_files, max_bytes)
    if dry_run:
        echo(format_plan(batches, repo_id, revision))
        return {"repo_id": repo_id, "dry_run": True, "batches": [[f.path_in_repo for f in b] for b in batches],
                "commits": []}

    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    token = resolve_token(token)
    if not token:
        raise PublishError("no Hugging Face token: set HF_TOKEN or log in with `hf auth login`")
    api = HfApi(token=token)
    url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    repo_id = getattr(url, "repo_id", None) or repo_id
    if revision and revision != "main":
        api.create_branch(repo_id, branch=revision, repo_type="dataset", exist_ok=True)
    local = {f.path_in_repo for b in batches for f in b}
    remote = api.list_repo_files(repo_id, repo_type="dataset", revision=revision)
    stale = sorted(p for p in remote if p.startswith(("data/", "webdataset/")) and p not in local)
    pacer = CommitPacer(commits_per_hour, sleep=sleep)
    commits = []
    for i, batch in enumerate(batches, 1):
        last = i == len(batches)
        size = sum(f.size for f in batch)
        message = (f"Upload dataset card ({i}/{len(batches)})" if last
                   else f"Upload {len(batch)} shard file(s), {_human(size)} ({i}/{len(batches)})")
        for attempt in range(max_retries + 1):
            ops = [CommitOperationAdd(path_in_repo=f.path_in_repo, path_or_fileobj=str(f.path)) for f in batch]
            if last:
                ops += [CommitOperationDelete(path_in_repo=p) for p in stale]
            pacer.wait()
            try:
                info = api.create_commit(repo_id, ops, commit_message=message, repo_type="dataset",
                                         revision=revision)
                break
            except HfHubHTTPError as err:
                if _status(err) == 429 and attempt < max_retries:
                    delay = _retry_after(err)
                    log.warning("the Hub asks to slow down (429): retrying commit %d in %.0f s", i, delay)
                    sleep(delay)
                    continue
                raise
        oid = getattr(info, "oid", None)
        commits.append({"message": message, "files": [f.path_in_repo for f in batch], "oid": oid,
                        "deleted": stale if last else []})
        echo(f"commit {i}/{len(batches)}: {len(batch)} file(s), {_human(size)} -> {oid}")
    echo(f"published {len(local)} file(s) to https://huggingface.co/datasets/{repo_id}"
         if api.endpoint.rstrip("/") == "https://huggingface.co" else
         f"published {len(local)} file(s) to {api.endpoint.rstrip('/')}/datasets/{repo_id}")
    return {"repo_id": repo_id, "dry_run": False, "batches": [[f.path_in_repo for f in b] for b in batches],
            "commits": commits, "deleted": stale}
