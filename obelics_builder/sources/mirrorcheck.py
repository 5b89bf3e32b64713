"""Checks of a Common Crawl mirror made before any work starts: the folder exists, the network reaches the remote
mirror (one short TCP connection), the mirror holds the dump's listing.  Failures are
:class:`obelics_builder.errors.UsageError` with what to do."""
from __future__ import annotations

import os

from . import commoncrawl as cc

#: seconds the reachability check of a remote mirror waits for a TCP connection
CONNECT_TIMEOUT = 5.0


def _connect(host: str, port: int, timeout: float) -> None:
    """Open and close one TCP connection (name resolution included); an OSError when it cannot be made.  Tests
    replace this function: they never contact the network."""
    import socket

    with socket.create_connection((host, port), timeout=timeout):
        pass


def mirror_endpoint(root: str) -> tuple[str, int] | None:
    """(host, port) that reading ``root`` contacts first, or None for a local mirror or an fsspec scheme whose
    endpoint is not known here."""
    from urllib.parse import urlsplit

    if root.startswith(("http://", "https://")):
        u = urlsplit(root)
        try:
            port = u.port
        except ValueError:
            return None
        if not u.hostname:
            return None
        proxy = _proxy_for(u.scheme, u.hostname)
        if proxy is not None:
            return proxy
        return u.hostname, port or (443 if u.scheme == "https" else 80)
    if root.startswith(("s3://", "s3a://")):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            return mirror_endpoint(endpoint.rstrip("/"))
        return ("s3.amazonaws.com", 443)
    return None


def _proxy_for(scheme: str, host: str) -> tuple[str, int] | None:
    """The (host, port) of the proxy the HTTP client would go through for ``host`` (``HTTPS_PROXY`` and the
    like, ``NO_PROXY`` honoured), else None: behind a proxy, the proxy is what must answer."""
    import urllib.request
    from urllib.parse import urlsplit

    proxy = urllib.request.getproxies().get(scheme)
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    u = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    try:
        return (u.hostname, u.port or (443 if u.scheme == "https" else 80)) if u.hostname else None
    except ValueError:
        return None


def check_mirror(root: str, dump: str | None = None, timeout: float | None = None) -> None:
    """Before any work: the mirror (as :func:`resolve_mirror` returns it) exists or answers, and holds ``dump``'s
    listing.  A :class:`obelics_builder.errors.UsageError` saying what to do otherwise."""
    from ..errors import UsageError, did_you_mean

    hint = "pass --mirror sample, a local mirror folder, or s3://commoncrawl"
    if not cc._is_url(root):
        if not os.path.isdir(root):
            what = "is a file, not a folder" if os.path.exists(root) else "does not exist"
            raise UsageError(f"mirror folder {root} {what}: give a folder laid out like Common Crawl "
                             f"(crawl-data/<dump>/warc.paths.gz), 'sample', or a URL such as s3://commoncrawl")
        if dump:
            listing = os.path.join(root, "crawl-data", dump, "warc.paths.gz")
            if not os.path.isfile(listing):
                held = sorted(d for d in os.listdir(os.path.join(root, "crawl-data"))
                              if os.path.isfile(os.path.join(root, "crawl-data", d, "warc.paths.gz"))) \
                    if os.path.isdir(os.path.join(root, "crawl-data")) else []
                holds = (f"it holds {', '.join(held)}{did_you_mean(dump, held)}" if held
                         else "it holds no dump (no crawl-data/<dump>/warc.paths.gz)")
                raise UsageError(f"mirror {root} does not hold {dump}: {holds}")
        return
    scheme = root.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        try:
            import fsspec

            fsspec.get_filesystem_class(scheme)
        except (ImportError, ValueError) as exc:
            raise UsageError(f"mirror {root}: no filesystem driver for {scheme}:// ({_first_line(exc)}): install "
                             f"it, or {hint.replace('s3://commoncrawl', cc.DEFAULT_MIRROR)}") from None
    endpoint = mirror_endpoint(root)
    if endpoint is not None:
        host, port = endpoint
        try:
            _connect(host, port, CONNECT_TIMEOUT if timeout is None else timeout)
        except OSError as exc:
            alt = hint if root.startswith(("http://", "https://")) else hint.replace("s3://commoncrawl", cc.DEFAULT_MIRROR)
            raise UsageError(f"no network: cannot reach {host}:{port} for mirror {root} ({_first_line(exc)}): "
                             f"{alt}") from None
    if dump:
        listing = cc._join(root, f"crawl-data/{dump}/warc.paths.gz")
        if not cc._exists(listing):
            raise UsageError(f"mirror {root} does not hold {dump} (no {listing}): check the dump id "
                             f"(the list of dumps: https://commoncrawl.org/overview) or the mirror")


def _first_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
