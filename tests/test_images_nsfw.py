"""NSFW: the NudeNet detector through onnxruntime, the table column, and the document rule (remove / keep)."""
from __future__ import annotations

import pytest
from PIL import Image

from obelics_builder.images.apply import apply_image_table
from obelics_builder.images.ledger import fetch_rows
from obelics_builder.images.nsfw import detector_or_reason, nsfw_config, nsfw_document_filter
from obelics_builder.stats import StageContext, Stats

from test_images_consent import LOCAL, Server, png  # rootdir-relative (pytest puts tests/ on sys.path)

pytest.importorskip("onnxruntime")
pytest.importorskip("nudenet")


def disc_gif(shared_data) -> bytes:
    # the known false positive: a 100x100 blue disc GIF scoring ~0.66 "buttocks exposed" (NudeNet reference 0.661)
    return (shared_data / "images" / "pillow-robustness" / "dispose_bgnd.gif").read_bytes()


def doc(url):
    return {"texts": ["hello", None], "images": [None, url], "metadata": [None, {"src": url}],
            "general_metadata": {"url": "http://page"}}


@pytest.mark.parametrize("threshold,removed", [(0.3, True), (0.9, False)])
def test_nsfw_removal_and_keep_paths(shared_data, threshold, removed):
    fcfg = {"image": {"nsfw": {"enabled": True, "threshold": threshold}, "min_size": 50,
                      "formats": ["png", "gif"]}}
    with Server({"/disc.png": (200, {}, disc_gif(shared_data)), "/plain.png": (200, {}, png())}) as srv:
        rows, note = fetch_rows([srv.base + "/disc.png", srv.base + "/plain.png"], None, dict(LOCAL), fcfg)
    assert note is None
    table = {r["url"]: r for r in rows}
    disc, plain = table[srv.base + "/disc.png"], table[srv.base + "/plain.png"]
    assert 0.5 < disc["nsfw"] < 0.8 and plain["nsfw"] < 0.3
    ctx = StageContext("images", fcfg, Stats())
    out = apply_image_table([doc(disc["url"]), doc(plain["url"])], table, ctx)
    assert len(out) == (1 if removed else 2)
    assert ctx.stats.stage("images")["removed"].get("nsfw", 0) == (1 if removed else 0)
    assert out[-1]["metadata"][1]["nsfw"] == pytest.approx(plain["nsfw"], abs=1e-3)
    # the stand-alone stage reads the same scores from resources
    ctx2 = StageContext("final", fcfg, Stats(), {"nsfw_by_url": {u: r["nsfw"] for u, r in table.items()}})
    assert len(nsfw_document_filter([doc(disc["url"])], ctx2)) == (0 if removed else 1)


def test_disabled_detector_is_loud(monkeypatch):
    cfg = nsfw_config({"image": {"nsfw": {"detector": "no-such-detector"}}})
    det, why = detector_or_reason(cfg)
    assert det is None and "DISABLED" in why
    ctx = StageContext("images", {"image": {}}, Stats())
    url = "http://x/a.png"
    table = {url: {"url": url, "reason": None, "width": 300, "height": 300, "format": "png", "sha256": "s",
                   "nsfw": None}}
    out = apply_image_table([doc(url)], table, ctx)
    assert len(out) == 1 and any("NSFW filtering DISABLED" in n for n in ctx.stats.stage("images")["notes"])
