"""notebooks/tune_thresholds.ipynb: executed headlessly on a crawl output; committed without outputs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from obelics_builder.recipe import load_filters

from quality_out import REPO, sample_out

NOTEBOOK = REPO / "notebooks" / "tune_thresholds.ipynb"
TRUTH = REPO.parent / "shared" / "eval" / "dev" / "readability-dev.truth.jsonl"


def test_committed_notebook_has_no_outputs():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code
    for c in code:
        assert c.get("outputs") == [] and c.get("execution_count") is None, c["source"][:80]
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    src = "".join(tagged[0]["source"])
    for name in ("OUT =", "CONFIG =", "NEW_CONFIG ="):
        assert name in src


def test_notebook_only_imports_allowed_modules():
    allowed = {"copy", "json", "re", "collections", "pathlib", "matplotlib", "numpy", "pandas", "pyarrow", "yaml",
               "obelics_builder"}
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    for c in nb["cells"]:
        for line in "".join(c["source"]).splitlines():
            words = line.split()
            if words[:1] in (["import"], ["from"]):
                assert words[1].split(".")[0] in allowed, line


def test_notebook_runs_and_writes_config(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    out = sample_out(tmp_path / "out")
    new_config = tmp_path / "tuned.yaml"
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    idx = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    injected = nbformat.v4.new_code_cell(
        f"OUT = {str(out)!r}\nCONFIG = 'obelics'\nNEW_CONFIG = {str(new_config)!r}\n"
        "CHANGES = {'node': {'stopwords': {'min': 0.4}}, 'doc': {'word_repetition': {'max': 0.15}, "
        "'lang_id': {'enabled': False}}}\nPLOTS = True\nEXAMPLE_CHECK = 'stopwords'\n"
        f"TRUTH = {str(TRUTH) if TRUTH.is_file() else None!r}\n")
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(idx + 1, injected)
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()

    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2  # node and doc distributions
    assert "just below the cutoff" in text and "just above the cutoff" in text
    assert "node.stopwords.min: 0.3 -> 0.4" in text
    if TRUTH.is_file():  # kept vs removed text on the ground truth of the sample's pages
        assert "documents with truth" in text and "content lost:" in text and "boilerplate removed:" in text
        assert "node:stopwords" in text  # the stricter stopwords threshold removes paragraphs

    old, new = load_filters("obelics"), load_filters(new_config)
    assert new["node"]["stopwords"]["min"] == 0.4
    assert new["doc"]["word_repetition"]["max"] == 0.15
    assert new["doc"]["lang_id"]["enabled"] is False
    for level in ("node", "doc"):  # every other threshold is the current config's
        for check, section in old[level].items():
            if (level, check) in {("node", "stopwords"), ("doc", "word_repetition"), ("doc", "lang_id")}:
                continue
            assert new[level][check] == section, (level, check)
    assert {k: Path(v).resolve() for k, v in new["wordlists"].items()} == \
        {k: Path(v).resolve() for k, v in old["wordlists"].items()}
    assert new["image"] == old["image"] and new["final"] == old["final"]
