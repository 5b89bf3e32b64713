"""``obelics-build extract``: WARC and HTML inputs, JSON lines out, rejections on stderr."""
from __future__ import annotations

import argparse
import gzip
import json

from obelics_builder.commands import extract as cmd


def _run(argv, capsys):
    p = argparse.ArgumentParser()
    cmd.add_arguments(p)
    rc = cmd.run(p.parse_args(argv))
    out, err = capsys.readouterr()
    return rc, [json.loads(line) for line in out.splitlines()], err


def test_extract_warc(shared_data, capsys):
    warc = shared_data / "warc" / "commoncrawl-2020-34-excerpt" / "warcfile.warc.gz"
    rc, rows, err = _run([str(warc)], capsys)
    assert rc == 0 and len(rows) >= 10
    for row in rows:
        assert set(row) == {"url", "texts", "images", "metadata", "general_metadata"}
        meta = json.loads(row["metadata"])
        gm = json.loads(row["general_metadata"])
        assert gm["url"] == row["url"] and gm["warc_filename"] == str(warc)
        assert isinstance(gm["warc_record_offset"], int) and gm["warc_record_length"] > 0
        assert len(row["texts"]) == len(row["images"]) == len(meta)
        for t, im, m in zip(row["texts"], row["images"], meta):
            assert (t is None) == (im is not None) == (m is not None)
            if m is not None:
                assert m["src"] == im and im.startswith(("http://", "https://"))
    assert any("Привет" in t or "\u0430" in t for r in rows for t in r["texts"] if t)  # the cp1251 page decoded
    assert "documents" in err and "records skipped" in err
    rc, rows, _ = _run([str(warc), "--limit", "3"], capsys)
    assert rc == 0 and len(rows) == 3


def test_extract_html_gz(shared_data, tmp_path, capsys):
    page = sorted((shared_data / "pages" / "article-extraction-benchmark" / "html").glob("*.html.gz"))[0]
    rc, rows, _ = _run([str(page), "--url", "https://news.example.com/a/b.html"], capsys)
    assert rc == 0 and len(rows) == 1
    assert rows[0]["url"] == "https://news.example.com/a/b.html" and any(rows[0]["texts"])
    # several HTML files without --url: file:// URLs; a rejected one is counted
    a = tmp_path / "a.html"
    a.write_text("<p>Alpha <img src='http://img.example.com/x.png'></p>", encoding="utf-8")
    b = tmp_path / "b.html.gz"
    b.write_bytes(gzip.compress(b"<html><body><script>x</script></body></html>"))
    rc, rows, err = _run([str(a), str(b)], capsys)
    assert rc == 0 and [r["url"] for r in rows] == [a.resolve().as_uri()]
    assert rows[0]["images"] == [None, "http://img.example.com/x.png"]
    assert "empty_document=1" in err


def test_unreadable_inputs(tmp_path, capsys):
    from obelics_builder.cli import main

    # a path naming nothing is a usage error found before any work: exit 2, one line, no traceback
    assert main(["extract", str(tmp_path / "missing.warc.gz"), str(tmp_path / "missing.html")]) == 2
    err = capsys.readouterr().err
    assert "missing.warc.gz: no such file" in err and "Traceback" not in err
    # a file that is no WARC: named, exit 1
    (tmp_path / "junk.warc.gz").write_bytes(b"not a warc at all")
    rc, rows, err = _run([str(tmp_path / "junk.warc.gz")], capsys)
    assert rc == 1 and rows == [] and "cannot read" in err
    (tmp_path / "x.html").write_text("<p>Some words here.</p><img src='/a.jpg' alt='a' width='300' height='200'>")
    rc, rows, _ = _run([str(tmp_path / "x.html"), "--mode", "default", "--url", "https://site.example/p"], capsys)
    assert rc == 0 and rows[0]["texts"][0] == "Some words here."


def test_cli_subcommand(shared_data, capsys):
    from obelics_builder.cli import main

    page = sorted((shared_data / "pages" / "article-extraction-benchmark" / "html").glob("*.html.gz"))[1]
    assert main(["extract", str(page), "--url", "https://x.example.org/p"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out.splitlines()[0])["url"] == "https://x.example.org/p"
