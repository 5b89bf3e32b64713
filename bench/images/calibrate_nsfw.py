"""Score every decodable image under the given folders with the NSFW detector; print the highest scores.

    python bench/images/calibrate_nsfw.py ../shared/data/images/cc0-photos ../shared/data/images/pillow-robustness

Used to choose ``image.nsfw.threshold`` (see obelics_builder/images/nsfw.py). Decoding goes through our own
``image_info`` (pixel limit, web formats only), so bombs and malformed files are skipped, never opened blindly.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from obelics_builder.images.decode import ImageRejected, image_info
from obelics_builder.images.nsfw import NSFW_DEFAULTS, load_detector, open_for_scoring


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--max-pixels", type=int, default=40_000_000)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--bgr", action="store_true", help="feed channels in BGR order (checks the input convention)")
    args = ap.parse_args(argv)
    det = load_detector(dict(NSFW_DEFAULTS))
    if args.bgr:
        pre = det.preprocess
        det.preprocess = lambda im: pre(im)[::-1].copy()
    files = [p for f in args.folders for p in sorted(Path(f).rglob("*")) if p.is_file()]
    scored = []
    skipped = 0
    t0 = time.perf_counter()
    for p in files:
        body = p.read_bytes()
        try:
            info = image_info(body, args.max_pixels)
        except ImageRejected:
            skipped += 1
            continue
        try:
            im = open_for_scoring(body, args.max_pixels)
        except Exception:
            skipped += 1
            continue
        s = det.score([im])[0]
        scored.append((s, str(p), info.width, info.height))
    dt = time.perf_counter() - t0
    scored.sort(key=lambda t: -(t[0] if t[0] == t[0] else -1))
    for s, p, w, h in scored[: args.top]:
        print(f"{s:.4f}  {w}x{h}  {p}")
    print(json.dumps({"scored": len(scored), "skipped": skipped, "seconds": round(dt, 2),
                      "max": scored[0][0] if scored else None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
