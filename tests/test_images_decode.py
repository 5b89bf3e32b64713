"""Decoding under a pixel limit: unit cases and a robustness sweep over Pillow's own malformed-image corpus."""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import textwrap
import zlib

import pytest
from PIL import Image

from obelics_builder.images.decode import ImageRejected, image_info

LIMIT = 89478485


def encode(w, h, fmt="PNG", mode="RGB", **save) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (w, h), 100).save(buf, fmt, **save)
    return buf.getvalue()


def reason(body, max_pixels=LIMIT, **kw):
    with pytest.raises(ImageRejected) as exc:
        image_info(body, max_pixels, **kw)
    return exc.value.reason


def test_info_of_common_formats():
    for fmt, name in (("PNG", "png"), ("JPEG", "jpeg"), ("WEBP", "webp"), ("GIF", "gif"), ("BMP", "bmp")):
        body = encode(320, 240, fmt)
        info = image_info(body, LIMIT)
        assert (info.width, info.height, info.format) == (320, 240, name), fmt
        assert info.sha256 == hashlib.sha256(body).hexdigest() and info.n_frames == 1


def test_animated_gif_frames():
    frames = [Image.new("RGB", (200, 200), (80 * i, 0, 0)) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    info = image_info(buf.getvalue(), LIMIT)
    assert info.format == "gif" and info.n_frames == 3


def test_pixel_limit_checked_before_decoding():
    body = encode(2000, 2000, "PNG", mode="L")
    assert reason(body, max_pixels=1_000_000) == "too_many_pixels"
    assert image_info(body, max_pixels=4_000_000).width == 2000
    assert Image.MAX_IMAGE_PIXELS == LIMIT  # the global is untouched


def test_rejections():
    assert reason(b"") == "empty"
    assert reason(b"<html>not an image</html>") == "undecodable"
    png = encode(300, 300, "PNG", mode="RGB")
    assert reason(png[: len(png) // 2]) == "truncated"
    jpg = encode(300, 300, "JPEG")
    assert reason(jpg[:200]) in ("truncated", "decode_error")
    # a header claiming a huge image: PNG IHDR with 100000 x 100000 (Pillow's bomb guard or ours)
    bad = bytearray(encode(10, 10))
    bad[16:24] = (100000).to_bytes(4, "big") * 2
    bad[29:33] = zlib.crc32(bytes(bad[12:29])).to_bytes(4, "big")  # keep the IHDR checksum valid
    assert reason(bytes(bad)) in ("decompression_bomb", "too_many_pixels", "decode_error")


def test_only_web_formats_by_default():
    body = encode(200, 200, "TGA")
    assert reason(body) == "undecodable"
    assert image_info(body, LIMIT, formats=None).format == "tga"


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_known_bombs(shared_data):
    root = shared_data / "images" / "pillow-robustness"
    for name in ("decompression_bomb.gif", "decompression_bomb.ico", "bmp/b/reallybig.bmp", "l2rgb_read.bmp"):
        assert reason((root / name).read_bytes()) in ("decompression_bomb", "too_many_pixels"), name


SWEEP = textwrap.dedent(
    """
    import json, resource, sys, time, warnings
    from collections import Counter
    from pathlib import Path
    warnings.simplefilter("ignore")
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))  # a runaway decode fails here, not the machine
    from obelics_builder.images.decode import DECODE_FORMATS, ImageRejected, image_info
    root, mode = Path(sys.argv[1]), sys.argv[2]
    formats = None if mode == "all" else DECODE_FORMATS
    kw = {"phash": True, "scoring_side": 320} if mode == "scoring" else {}
    counts, slowest, n, scored = Counter(), 0.0, 0, 0
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        n += 1
        t = time.perf_counter()
        try:
            info = image_info(p.read_bytes(), 89478485, formats=formats, **kw)
            counts["ok"] += 1
            assert info.width * info.height <= 89478485
            if kw and info.scoring_image is not None:
                im = info.scoring_image
                assert im.mode == "RGB" and max(im.size) < 640 or max(im.size) <= max(info.width, info.height)
                scored += 1
        except ImageRejected as exc:
            counts[exc.reason] += 1
        slowest = max(slowest, time.perf_counter() - t)
    # this process's own peak (VmHWM: reset by exec); ru_maxrss would carry the forking pytest process's peak
    hwm = [line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:")]
    rss_mb = int(hwm[0].split()[1]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"files": n, "counts": counts, "rss_mb": rss_mb, "slowest_s": slowest, "scored": scored}))
    """
)


@pytest.mark.parametrize("mode", ["web", "all", "scoring"])
def test_robustness_sweep(shared_data, repo, mode):
    """Every file in Pillow's test corpus is decoded or rejected with a reason; no exception, RSS < 1 GB (also
    with the pHash and the reduced image for NSFW scoring, mode ``scoring``)."""
    root = shared_data / "images" / "pillow-robustness"
    env = {**os.environ, "PYTHONPATH": str(repo)}
    proc = subprocess.run([sys.executable, "-c", SWEEP, str(root), mode], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["files"] > 1000
    assert sum(out["counts"].values()) == out["files"]
    assert set(out["counts"]) <= {"ok", "empty", "undecodable", "too_many_pixels", "decompression_bomb",
                                  "truncated", "decode_error"}
    if mode == "scoring":
        assert out["scored"] > 600
    assert out["counts"]["ok"] > 600 and out["counts"]["decompression_bomb"] >= 4
    assert out["rss_mb"] < 1024, out
    assert out["slowest_s"] < 10, out


def jpeg(w, h, seed=0) -> bytes:
    import numpy as np

    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 255, (max(1, h // 16), max(1, w // 16), 3), dtype=np.uint8))
    buf = io.BytesIO()
    small.resize((w, h), Image.BILINEAR).save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.mark.parametrize("size", [(200, 150), (1000, 700), (3000, 2400), (700, 1400)])
def test_scoring_image_keeps_phash_and_is_reduced(size):
    body = jpeg(*size)
    plain = image_info(body, LIMIT, phash=True)
    info = image_info(body, LIMIT, phash=True, scoring_side=320)
    assert info.phash == plain.phash and (info.width, info.height) == size  # header size, same pHash
    im = info.scoring_image
    assert im.mode == "RGB" and min(320, max(size)) <= max(im.size) < 640
    png = encode(*size, "PNG")
    info = image_info(png, LIMIT, phash=True, scoring_side=320)
    assert info.phash == image_info(png, LIMIT, phash=True).phash
    assert min(320, max(size)) <= max(info.scoring_image.size) < 640


def test_header_check_runs_before_decoding():
    png = encode(100, 300, "PNG")
    seen = []

    def check(fmt, w, h):
        seen.append((fmt, w, h))
        return "too_small"

    info = image_info(png[: len(png) // 2], LIMIT, phash=True, check=check, scoring_side=320)
    assert seen == [("png", 100, 300)] and info.rejected == "too_small"  # truncated, but never decoded
    assert info.phash is None and info.scoring_image is None
    assert info.sha256 == hashlib.sha256(png[: len(png) // 2]).hexdigest()
    assert reason(png[: len(png) // 2], check=lambda *a: None) == "truncated"
