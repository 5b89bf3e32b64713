"""Checks the commands make of their options before any work starts.  Each raises
:class:`obelics_builder.errors.UsageError` with what is wrong and what to do."""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import UsageError

#: schemes a Dask scheduler address may use
SCHEDULER_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx", "inproc")
#: seconds the reachability check of a scheduler waits for a TCP connection
SCHEDULER_CONNECT_TIMEOUT = 5.0


def check_out_folder(out: str | Path, option: str = "--out") -> Path:
    """An output folder that exists (or can be created) and is writable; created here, returned resolved."""
    p = Path(out).expanduser()
    if p.exists() and not p.is_dir():
        raise UsageError(f"{option} {out}: is a file, not a folder: give a folder (it is created when missing)")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{option} {out}: cannot create the folder ({exc.strerror or exc})") from None
    if not os.access(p, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {out}: the folder is not writable: give a folder you can write to")
    return p.resolve()


def check_positive(value: int | None, option: str) -> None:
    if value is not None and value <= 0:
        raise UsageError(f"{option} must be a positive number, got {value}")


def check_scheduler(address: str | None, connect=None) -> None:
    """``None`` (a LocalCluster), ``sync``, or ``SCHEME://HOST:PORT`` of a scheduler that accepts a TCP
    connection now.  ``connect(host, port, timeout)`` defaults to a socket connection (tests pass their own)."""
    if address is None or address == "sync":
        return
    text = str(address).strip()
    if "://" not in text:
        raise UsageError(f"--scheduler {address}: expected tcp://HOST:PORT (a running Dask scheduler), 'sync' "
                         f"(in this process), or no --scheduler (a LocalCluster)")
    u = urlsplit(text)
    if u.scheme not in SCHEDULER_SCHEMES:
        raise UsageError(f"--scheduler {address}: unknown scheme {u.scheme!r} (use tcp://HOST:PORT)")
    if u.scheme in ("inproc", "ucx"):
        return
    try:
        port = u.port
    except ValueError:
        port = None
    if not u.hostname or port is None:
        raise UsageError(f"--scheduler {address}: expected {u.scheme}://HOST:PORT, e.g. tcp://10.0.0.5:8786")
    if connect is None:
        from ..sources.mirrorcheck import _connect as connect
    try:
        connect(u.hostname, port, SCHEDULER_CONNECT_TIMEOUT)
    except OSError as exc:
        raise UsageError(f"--scheduler {address}: no scheduler answers there ({' '.join(str(exc).split())}): start "
                         f"it (dask scheduler), fix the address, or leave --scheduler out for a LocalCluster") from None


def check_shard_size(text: str) -> int:
    from ..dataset.shards import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise UsageError(f"--shard-size: {exc}") from None


def read_crawl_output(out: str | Path, command: str) -> dict:
    """``OUT/run.json`` of a crawl output (see ``pipeline.read_run``), or a UsageError saying what ``out`` is."""
    from ..pipeline import read_run

    out = Path(out)
    if not out.is_dir():
        raise UsageError(f"{command}: {out}: no such folder (give the --out folder of a crawl)")
    try:
        info = read_run(out)
    except (ValueError, KeyError, TypeError) as e:
        raise UsageError(f"{command}: {out / 'run.json'} is damaged ({type(e).__name__}: {e}): rerun the crawl") \
            from None
    if info is None:
        raise UsageError(f"{command}: {out} has no run.json: not a crawl output folder (give the --out folder of "
                         f"a crawl)")
    return info


def check_recorded_optout_list(recipe: dict) -> None:
    """The local opt-out list a crawl named (``--optout-list``) is still there and readable."""
    local_list = (recipe.get("optout") or {}).get("local_list")
    if local_list:
        from ..optout.local import check_list_file

        check_list_file(local_list, option="the crawl's --optout-list")


def check_stages(recipe: dict) -> None:
    """What the recipe's stages of one's own say is wrong with their sections (a missing model...), before any
    work: a :class:`~obelics_builder.errors.ConfigError` with every problem."""
    from ..errors import ConfigError
    from ..plan.stages import check_problems

    problems = check_problems(recipe)
    if problems:
        raise ConfigError(problems)
