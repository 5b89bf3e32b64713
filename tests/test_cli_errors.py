"""Issue 17, options and configuration: every user mistake is one line (``obelics-build: error: ...``), exit code 2,
no traceback, and is found before any work starts; ``--debug``/``-v`` (before or after the subcommand) shows the
traceback; a bug is one ``internal error`` line with exit code 1.  The files each mistake needs are built here."""
from __future__ import annotations

import functools
import gzip
import http.server
import io
import json
import shutil
import socket
import tempfile
import threading
from pathlib import Path

import pytest

from obelics_builder.cli import main
from obelics_builder.sources import mirrorcheck

DUMP = "CC-MAIN-2023-06"


@pytest.fixture(autouse=True)
def _private_notes(monkeypatch):
    """Runs here are in-process: their once-per-process log notes (e.g. the Spawning skip) must not hide the same
    notes from later tests."""
    from obelics_builder import stats

    monkeypatch.setattr(stats, "_LOGGED_NOTES", set())


@pytest.fixture(autouse=True)
def _only_loopback(monkeypatch):
    """No test here may reach past this machine: the reachability checks may only connect to 127.0.0.1."""
    real = mirrorcheck._connect

    def guarded(host, port, timeout):
        if host != "127.0.0.1":
            raise AssertionError(f"a test tried to connect to {host}:{port}")
        return real(host, port, timeout)

    monkeypatch.setattr(mirrorcheck, "_connect", guarded)


def _error(argv: list[str], capsys, *needles: str, code: int = 2) -> str:
    """Run the command line; it must exit with ``code`` and say ``needles`` on one stderr line, without a
    traceback."""
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == code, err
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("obelics-build: ")]
    assert len(lines) == 1, err
    prefix = "obelics-build: error: " if code == 2 else "obelics-build: internal error: "
    assert lines[0].startswith(prefix), err
    for n in needles:
        assert n in lines[0], err
    return lines[0]


def _mirror(root: Path, dumps=(DUMP,)) -> Path:
    """A local mirror laid out like Common Crawl: a listing of one (absent) WARC per dump."""
    for d in dumps:
        folder = root / "crawl-data" / d
        folder.mkdir(parents=True)
        (folder / "warc.paths.gz").write_bytes(gzip.compress(f"crawl-data/{d}/segments/x/warc/a.warc.gz\n".encode()))
    return root


# ----------------------------------------------------------------------------------------------- dump and mirror

def test_dump_id_with_a_one_digit_week(tmp_path, capsys):
    _error(["crawl", "--dump", "2023-6", "--mirror", "sample", "--out", str(tmp_path / "o")], capsys,
           "--dump", "'2023-6'", "did you mean 2023-06")
    _error(["crawl", "--dump", "2023-99", "--mirror", "sample", "--out", str(tmp_path / "o")], capsys,
           "not a Common Crawl dump name", "CC-MAIN-YYYY-WW")
    assert not (tmp_path / "o").exists()  # nothing written before the options were checked


def test_dump_the_local_mirror_does_not_hold(tmp_path, capsys):
    mirror = _mirror(tmp_path / "mirror", dumps=(DUMP, "CC-MAIN-2023-14"))
    _error(["crawl", "--dump", "2023-40", "--mirror", str(mirror), "--out", str(tmp_path / "o")], capsys,
           "does not hold CC-MAIN-2023-40", "it holds CC-MAIN-2023-06, CC-MAIN-2023-14", "did you mean")
    # the bundled sample holds 2023-06 only
    _error(["crawl", "--dump", "2023-07", "--mirror", "sample", "--out", str(tmp_path / "o")], capsys,
           "does not hold CC-MAIN-2023-07", "CC-MAIN-2023-06")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


def test_dump_a_remote_mirror_does_not_hold(tmp_path, capsys):
    mirror = _mirror(tmp_path / "mirror")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_Quiet, directory=str(mirror)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        _error(["crawl", "--dump", "2023-40", "--mirror", url, "--out", str(tmp_path / "o")], capsys,
               f"mirror {url} does not hold CC-MAIN-2023-40", "check the dump id")
    finally:
        server.shutdown()
        server.server_close()


def test_mirror_folder_that_does_not_exist(tmp_path, capsys):
    _error(["crawl", "--dump", "2023-06", "--mirror", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")],
           capsys, f"mirror folder {tmp_path / 'nowhere'} does not exist", "'sample'")
    (tmp_path / "afile").write_text("x")
    _error(["crawl", "--dump", "2023-06", "--mirror", str(tmp_path / "afile"), "--out", str(tmp_path / "o")],
           capsys, "is a file, not a folder")


def test_default_mirror_without_network(tmp_path, capsys, monkeypatch):
    asked = []

    def unreachable(host, port, timeout):
        asked.append((host, port))
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    monkeypatch.setattr(mirrorcheck, "_connect", unreachable)
    _error(["crawl", "--dump", "2023-06", "--out", str(tmp_path / "o")], capsys,
           "no network", "data.commoncrawl.org", "pass --mirror sample, a local mirror folder, or s3://commoncrawl")
    assert asked == [("data.commoncrawl.org", 443)]
    assert not (tmp_path / "o").exists()


def test_behind_a_proxy_the_proxy_is_checked(monkeypatch):
    for name in ("HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:3128")
    for name in ("NO_PROXY", "no_proxy", "REQUEST_METHOD"):
        monkeypatch.delenv(name, raising=False)
    assert mirrorcheck.mirror_endpoint("https://data.commoncrawl.org") == ("127.0.0.1", 3128)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "commoncrawl.org")
    assert mirrorcheck.mirror_endpoint("https://data.commoncrawl.org") == ("data.commoncrawl.org", 443)


def test_s3_mirror_without_its_driver_or_network(tmp_path, capsys, monkeypatch):
    import fsspec

    def no_driver(scheme):
        raise ImportError("Install s3fs to access S3")

    monkeypatch.setattr(fsspec, "get_filesystem_class", no_driver)
    _error(["crawl", "--dump", "2023-06", "--mirror", "s3://commoncrawl", "--out", str(tmp_path / "o")], capsys,
           "no filesystem driver for s3://", "Install s3fs", "https://data.commoncrawl.org")
    monkeypatch.setattr(fsspec, "get_filesystem_class", lambda scheme: object)

    def unreachable(host, port, timeout):
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(mirrorcheck, "_connect", unreachable)
    _error(["crawl", "--dump", "2023-06", "--mirror", "s3://commoncrawl", "--out", str(tmp_path / "o")], capsys,
           "no network", "s3.amazonaws.com:443", "--mirror sample")


def test_warc_file_that_does_not_exist_or_cannot_be_reached(tmp_path, capsys, monkeypatch):
    _error(["crawl", "--warc", str(tmp_path / "a.warc.gz"), "--out", str(tmp_path / "o")], capsys,
           "--warc", "no such file")
    _error(["crawl", "--warc", str(tmp_path), "--out", str(tmp_path / "o")], capsys, "is a folder, not a WARC file")

    def unreachable(host, port, timeout):
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    monkeypatch.setattr(mirrorcheck, "_connect", unreachable)
    _error(["crawl", "--warc", "https://data.commoncrawl.org/crawl-data/x.warc.gz", "--out", str(tmp_path / "o")],
           capsys, "no network", "data.commoncrawl.org:443")


# ----------------------------------------------------------------------------------------- recipe and filters

def test_recipe_or_filters_naming_nothing(tmp_path, capsys):
    base = ["crawl", "--dump", "2023-06", "--mirror", "sample", "--out", str(tmp_path / "o")]
    _error(base + ["--recipe", "obelics-2024"], capsys, "no recipe 'obelics-2024'", "obelics, obelics-2023")
    _error(base + ["--filters", str(tmp_path / "mine.yaml")], capsys, "no filter config", "mine.yaml", "obelics")


def test_misspelled_keys_get_a_suggestion(tmp_path, capsys):
    base = ["crawl", "--dump", "2023-06", "--mirror", "sample", "--out", str(tmp_path / "o")]
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("filters: obelics\nextrct: {mode: default}\n")
    _error(base + ["--recipe", str(recipe)], capsys, "recipe.yaml: extrct: unknown key", "did you mean 'extract'")
    recipe.write_text("filters: obelics\nextract: {mdoe: default}\n")
    _error(base + ["--recipe", str(recipe)], capsys, "recipe.yaml: extract.mdoe: unknown key", "did you mean 'mode'")
    filters = tmp_path / "filters.yaml"
    filters.write_text("image:\n  nsfw: {treshold: 0.5}\n")
    _error(base + ["--filters", str(filters)], capsys, "filters.yaml: image.nsfw.treshold: unknown key",
           "did you mean 'threshold'")
    filters.write_text("doc:\n  stopword: {min: 0.3}\n")
    _error(base + ["--filters", str(filters)], capsys, "doc.stopword: unknown check", "did you mean 'stopwords'")
    filters.write_text("node:\n  stopwords: {min: high}\n")
    _error(base + ["--filters", str(filters)], capsys, "node.stopwords.min: expected a ratio in [0, 1]")
    filters.write_text("wordlists:\n  stopwords: nowhere/stop.txt\n")
    _error(base + ["--filters", str(filters)], capsys, "filters.yaml: wordlists.stopwords: no such file")


# ----------------------------------------------------------------------------------------------- opt-out list

def test_optout_list_problems_are_found_before_any_work(tmp_path, capsys):
    out = tmp_path / "o"
    base = ["crawl", "--dump", "2023-06", "--mirror", "sample", "--scheduler", "sync", "--out", str(out)]
    _error(base + ["--optout-list", str(tmp_path / "optout.txt")], capsys, "--optout-list", "no such file")
    _error(base + ["--optout-list", str(tmp_path)], capsys, "not a file")
    (tmp_path / "optout.bin").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0")
    _error(base + ["--optout-list", str(tmp_path / "optout.bin")], capsys, "a binary file")
    (tmp_path / "optout.txt").write_text("not a domain\nalso not one\n")
    _error(base + ["--optout-list", str(tmp_path / "optout.txt")], capsys, "no valid line", "'not a domain'")
    assert not out.exists()  # refused before the first WARC was read


# ------------------------------------------------------------------------------ output folder, scheduler, numbers

def test_output_folder_scheduler_and_numbers(tmp_path, capsys):
    base = ["crawl", "--dump", "2023-06", "--mirror", "sample"]
    (tmp_path / "afile").write_text("x")
    _error(base + ["--out", str(tmp_path / "afile")], capsys, "--out", "is a file, not a folder")
    out = ["--out", str(tmp_path / "o")]
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _error(base + out + ["--scheduler", f"tcp://127.0.0.1:{port}"], capsys, "no scheduler answers there",
           "leave --scheduler out")
    _error(base + out + ["--scheduler", "10.0.0.5:8786"], capsys, "expected tcp://HOST:PORT")
    _error(base + out + ["--scheduler", "tcp://10.0.0.5"], capsys, "expected tcp://HOST:PORT")
    _error(base + out + ["--shard", "3"], capsys, "--shard must look like I/N")
    _error(base + out + ["--shard", "5/5"], capsys, "need 0 <= I < N")
    _error(base + out + ["--shard-size", "lots"], capsys, "--shard-size", "not a size")
    _error(base + out + ["--workers", "0"], capsys, "--workers must be a positive number")
    _error(base + out + ["--warcs", "-1"], capsys, "--warcs must be 0 or more")
    _error(["crawl", "--out", str(tmp_path / "o")], capsys, "give --dump")
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------------ --debug, -v, bugs

def test_debug_shows_the_traceback_before_or_after_the_subcommand(tmp_path, capsys):
    argv = ["crawl", "--dump", "2023-6", "--mirror", "sample", "--out", str(tmp_path / "o")]
    for extra in (["--debug"], ["-v"]):
        for args in (extra + argv, argv + extra):
            assert main(args) == 2
            err = capsys.readouterr().err
            assert "Traceback (most recent call last)" in err, args
            assert err.rstrip().splitlines()[-1].startswith("obelics-build: error: --dump"), args


def test_a_bug_is_one_line_and_exit_1(tmp_path, capsys, monkeypatch):
    from obelics_builder.commands import status

    def broken(args):
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr(status, "run", broken)
    line = _error(["status", str(tmp_path)], capsys, "RuntimeError: something broke",
                  "(run again with --debug for the traceback)", code=1)
    assert line.startswith("obelics-build: internal error: ")
    assert main(["status", str(tmp_path), "--debug"]) == 1
    assert "Traceback" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------- filter OUT --config

_PAGE = """<html><head><title>{title}</title></head><body><article><h1>{title}</h1>
<p>{one}</p><img src="https://img.example.com/{n}.jpg" width="400" height="300"><p>{two}</p>
<p>Thanks for reading</p></article></body></html>"""
_SENTENCES = [
    "The river runs past the old mill and the children walk along it to school every morning.",
    "In the spring the water is high, and the farmers watch the fields with some worry.",
    "Most of the houses in the village were built by the families who still live in them.",
    "A small bakery opens before dawn, and the smell of bread reaches the end of the street.",
    "On market days people come from the hills to sell cheese, honey and wool in the square.",
    "The school has a garden where each class grows vegetables that are cooked for lunch.",
    "When the snow comes, the road over the pass is closed and the village is very quiet.",
    "Visitors often stay at the inn near the bridge, which has been open for two hundred years.",
]


def _text(i: int, k: int) -> str:
    return " ".join(_SENTENCES[(i * 3 + k + j) % len(_SENTENCES)] for j in range(4))


def _tiny_warc(path: Path, n: int = 4) -> Path:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as f:
        writer = WARCWriter(f, gzip=True)
        for i in range(n):
            body = _PAGE.format(title=f"Walk number {i}", one=_text(i, 0), two=_text(i, 4), n=i).encode()
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(f"https://site{i}.example.com/walk", "response",
                                                          payload=io.BytesIO(body), http_headers=headers))
    return path


@functools.lru_cache(maxsize=1)
def _crawled() -> Path:
    root = Path(tempfile.mkdtemp(prefix="cli-errors-"))
    warc = _tiny_warc(root / "tiny.warc.gz")
    out = root / "out"
    # the reference thresholds, which remove paragraphs of this page (the node comparisons below are not vacuous)
    rc = main(["crawl", "--warc", str(warc), "--out", str(out), "--scheduler", "sync", "--no-network",
               "--no-dataset", "--quiet", "--filters", "obelics"])
    assert rc == 0
    return out


@pytest.fixture
def crawl_out(tmp_path) -> Path:
    dest = tmp_path / "out"
    shutil.copytree(_crawled(), dest, copy_function=shutil.copy2)
    return dest


def _scored_state(out: Path) -> dict:
    folder = out / "parts" / "scored"
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_filter_config_naming_nothing_and_not_a_crawl_output(crawl_out, tmp_path, capsys):
    _error(["filter", str(crawl_out), "--config", str(tmp_path / "strict.yaml")], capsys,
           "no filter config", "strict.yaml")
    _error(["filter", str(tmp_path / "nowhere"), "--config", "obelics"], capsys, "no such folder")
    (tmp_path / "empty").mkdir()
    _error(["filter", str(tmp_path / "empty"), "--config", "obelics"], capsys, "no run.json")
    (crawl_out / "run.json").write_text("{")
    _error(["filter", str(crawl_out), "--config", "obelics"], capsys, "run.json is damaged")


def test_partial_filter_config_keeps_the_runs_values_and_never_rescores(crawl_out, tmp_path, capsys):
    before = json.loads((crawl_out / "stats.json").read_text())["stages"]["text_filter"]
    assert before["documents_out"] > 0 and before["nodes_removed"]  # (the node comparison below is not vacuous)
    scored = _scored_state(crawl_out)
    partial = tmp_path / "partial.yaml"
    partial.write_text("doc:\n  number_words: {min: 100000}\n")  # one threshold: every document is too short
    assert main(["filter", str(crawl_out), "--config", str(partial), "--scheduler", "sync", "--quiet"]) == 0
    capsys.readouterr()
    assert _scored_state(crawl_out) == scored  # no WARC was reread or rescored
    after = json.loads((crawl_out / "stats.json").read_text())["stages"]["text_filter"]
    assert after["documents_out"] == 0 and after["removed"] == {"doc:number_words": before["documents_in"]}
    # the node thresholds the partial config leaves out kept the run's values: the same paragraphs survive them
    assert after["nodes_removed"] == before["nodes_removed"]


def test_filter_config_that_would_change_the_scores_is_refused(crawl_out, tmp_path, capsys):
    from obelics_builder.resources import WORDLISTS_DIR

    scored = _scored_state(crawl_out)
    other = tmp_path / "other-stopwords.yaml"
    other.write_text(f"wordlists:\n  stopwords: {WORDLISTS_DIR / 'common_words_en.txt'}\n")
    _error(["filter", str(crawl_out), "--config", str(other), "--scheduler", "sync"], capsys,
           "changes what the stored scores were computed from (wordlists.stopwords)", "run crawl --filters")
    params = tmp_path / "params.yaml"
    params.write_text("node:\n  char_repetition: {n: 7}\n")
    _error(["filter", str(crawl_out), "--config", str(params)], capsys, "params.node.char_n")
    assert _scored_state(crawl_out) == scored


def test_images_and_filter_check_the_output_the_scheduler_and_the_recorded_optout_list(crawl_out, tmp_path, capsys):
    _error(["images", str(tmp_path / "nowhere")], capsys, "images:", "no such folder")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _error(["images", str(crawl_out), "--scheduler", f"tcp://127.0.0.1:{port}"], capsys, "no scheduler answers")
    _error(["filter", str(crawl_out), "--config", "obelics", "--workers", "-2"], capsys, "--workers must be")
    # the run named an opt-out list that has been removed since: found before any work, not at the last stage
    run = json.loads((crawl_out / "run.json").read_text())
    run["recipe_config"].setdefault("optout", {})["local_list"] = str(tmp_path / "gone.txt")
    (crawl_out / "run.json").write_text(json.dumps(run))
    stats = (crawl_out / "stats.json").stat().st_mtime_ns
    _error(["filter", str(crawl_out), "--config", "obelics"], capsys, "the crawl's --optout-list", "gone.txt",
           "no such file")
    _error(["images", str(crawl_out)], capsys, "the crawl's --optout-list")
    assert (crawl_out / "stats.json").stat().st_mtime_ns == stats
