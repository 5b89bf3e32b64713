"""NSFW scoring of kept images, behind a small detector interface, and the OBELICS document rule.

Interface: :class:`NSFWDetector` — ``score(images: list[PIL.Image.Image]) -> list[float]`` (one score in [0, 1]
per image, higher = more likely NSFW; ``nan`` for an image it could not score).  Any detector with that method can
replace the default (e.g. a CLIP-embedding safety head for users who have its weights): register a factory in
:data:`DETECTORS` and set ``image.nsfw.detector``.

Default: :class:`NudeNetDetector`, the NudeNet "320n" YOLO-style ONNX detector shipped inside the ``nudenet``
wheel, run by us with onnxruntime in batches (the ``nudenet`` Python code itself is not used).  **License**: the
wheel's own LICENSE file is AGPL-3.0 (its PyPI metadata says MIT), so it is an optional extra
(``pip install obelics-builder[nsfw]``) and never a hard dependency.

Pre-processing (what the model expects, as NudeNet's own pipeline feeds it): padded with black at the right/bottom
to a square (the image stays at the top-left corner), resized to 320×320, scaled to [0, 1], NCHW float32, channels
in **BGR** order (NudeNet's OpenCV calls swap channels twice; feeding BGR reproduces its reference scores: 0.663
vs 0.661 on ``dispose_bgnd.gif``, where RGB gives 0.637).  Output ``(batch, 4 + 18, anchors)``:
per anchor a box (cx, cy, w, h) then 18 class scores; an anchor votes for its best class only.

Score = the maximum confidence over anchors whose best class is in :data:`UNSAFE_CLASSES` (exposed female/male
genitalia, exposed female breast, exposed buttocks, exposed anus).  Covered parts, faces, feet, belly, armpits and
male breasts do not count.

Threshold (:data:`DEFAULT_THRESHOLD` = 0.9), calibrated with ``bench/images/calibrate_nsfw.py`` on the shared
CC0 photos (17 images, highest 0.34 ``coffee.png``) and the 700 Pillow robustness images our decoder accepts:
the highest benign score is 0.66 ("buttocks exposed") for the 100×100 blue-disc animation ``dispose_*.gif`` /
``multiple_comments.gif``; the issue reports a colour-wheel false positive at ~0.83 with NudeNet's defaults.  0.9
keeps every benign image with a margin over both; it trades recall for precision.  Set ``image.nsfw.threshold``
lower (e.g. 0.7) for a stricter filter, accepting colour-wheel-like false positives.

Input size: the model sees 320x320, so an image is decoded for it at reduced size (:mod:`.decode`: JPEG draft
mode at the smallest scale giving 320 px on the longer side; other formats reduced with ``Image.reduce`` from the
one decode that also gives the pHash) and then padded and resized as above.  On the shared photos re-encoded at
120-1600 px (153 images) this moves scores by at most 0.037 (mean 0.002) from a full-size decode; on the 424
decodable web-format Pillow test images by at most 0.0095; no decision at 0.9 changes
(``bench/images/bench_stage.py --compare``).

Where it runs: scores are computed per unique URL while the image table is built (column ``nsfw``), in batches
streamed from the decode threads (:class:`BatchScorer`; one model run per distinct sha256 of a partition: the
same bytes under many URLs are scored once); the document
rule — drop a document with any image scoring over the threshold, reason ``nsfw`` — runs in the final step from the
table (:func:`obelics_builder.images.apply.apply_image_table`) or as the stand-alone stage
:func:`nsfw_document_filter`.  Without a detector the table column stays null and the stage says loudly (a stats
note + a warning) that NSFW filtering is disabled.
"""
from __future__ import annotations

import logging
import math
import os
import threading
from collections import defaultdict
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from ..stats import StageContext

log = logging.getLogger("obelics_builder")

NUDENET_LABELS = (
    "FEMALE_GENITALIA_COVERED", "FACE_FEMALE", "BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED", "MALE_BREAST_EXPOSED", "ANUS_EXPOSED", "FEET_EXPOSED", "BELLY_COVERED",
    "FEET_COVERED", "ARMPITS_COVERED", "ARMPITS_EXPOSED", "FACE_MALE", "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED", "ANUS_COVERED", "FEMALE_BREAST_COVERED", "BUTTOCKS_COVERED",
)
#: The classes mapped to the single nsfw score (max confidence among them).
UNSAFE_CLASSES = ("FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED", "FEMALE_BREAST_EXPOSED",
                  "BUTTOCKS_EXPOSED", "ANUS_EXPOSED")

DEFAULT_THRESHOLD = 0.9
NSFW_DEFAULTS: dict[str, Any] = {"enabled": True, "threshold": DEFAULT_THRESHOLD, "detector": "nudenet",
                                 "batch_size": 16, "threads": 1}


def nsfw_config(filter_cfg: dict | None) -> dict:
    """``image.nsfw`` of a filter config (or the ``nsfw`` section itself, or ``True``/``False``) over defaults."""
    cfg = filter_cfg or {}
    if isinstance(cfg.get("image"), dict):
        cfg = cfg["image"]
    sec = cfg.get("nsfw", cfg if "threshold" in cfg or "detector" in cfg else {})
    out = dict(NSFW_DEFAULTS)
    if isinstance(sec, bool):
        out["enabled"] = sec
    elif isinstance(sec, dict):
        out.update({k: v for k, v in sec.items() if v is not None})
    return out


@runtime_checkable
class NSFWDetector(Protocol):
    name: str

    def score(self, images: list[Image.Image]) -> list[float]:
        """One score in [0, 1] per image (nan when an image cannot be scored)."""
        ...


class DetectorUnavailable(RuntimeError):
    """The configured detector cannot be loaded (package or model missing)."""


class NudeNetDetector:
    """NudeNet 320n through onnxruntime (see module docstring).  Thread-safe ``score``."""

    name = "nudenet"
    size = 320

    def __init__(self, model_path: str | None = None, batch_size: int = 16, threads: int = 1) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise DetectorUnavailable("onnxruntime is not installed (pip install 'obelics-builder[nsfw]')") from exc
        if model_path is None:
            try:
                import importlib.util

                spec = importlib.util.find_spec("nudenet")
            except (ImportError, ValueError):
                spec = None
            if spec is None or not spec.submodule_search_locations:
                raise DetectorUnavailable("the nudenet package (its 320n.onnx model) is not installed "
                                          "(pip install 'obelics-builder[nsfw]')")
            model_path = os.path.join(list(spec.submodule_search_locations)[0], "320n.onnx")
        if not os.path.exists(model_path):
            raise DetectorUnavailable(f"NudeNet model not found at {model_path}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(model_path, sess_options=opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.batch_size = max(1, int(batch_size))
        self._unsafe = np.array([NUDENET_LABELS.index(c) for c in UNSAFE_CLASSES])
        self._lock = threading.Lock()

    def preprocess(self, im: Image.Image) -> np.ndarray:
        """(3, 320, 320) float32: BGR, black padding right/bottom to a square, resized, /255."""
        if im.mode != "RGB":
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                # the model saw alpha dropped (colour channels kept as they are)
                im = Image.fromarray(np.asarray(im)[..., :3])
            else:
                im = im.convert("RGB")
        w, h = im.size
        side = max(w, h)
        if side > 4 * self.size:  # shrink first: the letterbox resize below then works on a small image
            k = 4 * self.size / side
            im = im.resize((max(1, round(w * k)), max(1, round(h * k))), Image.BILINEAR)
            w, h = im.size
            side = max(w, h)
        square = letterbox(im, self.size)
        # BGR (see module docstring); reordered while still uint8, then one float copy scaled in place (the same
        # float32 values as scaling first, at half the memory passes)
        arr = square.transpose(2, 0, 1)[::-1].astype(np.float32, order="C")
        arr /= 255.0
        return arr

    def class_scores(self, output: np.ndarray) -> np.ndarray:
        """``(batch, 22, anchors)`` -> ``(batch, 18)``: per class, the max confidence of anchors voting for it."""
        cls = output[:, 4:, :]  # (b, 18, a)
        best = cls.argmax(axis=1)  # (b, a)
        conf = cls.max(axis=1)  # (b, a)
        out = np.zeros((output.shape[0], cls.shape[1]), dtype=np.float32)
        for c in range(cls.shape[1]):
            m = np.where(best == c, conf, 0.0)
            out[:, c] = m.max(axis=1)
        return out

    def score(self, images: list[Image.Image]) -> list[float]:
        scores: list[float] = []
        for i in range(0, len(images), self.batch_size):
            chunk = images[i:i + self.batch_size]
            arrays, ok = [], []
            for im in chunk:
                try:
                    arrays.append(self.preprocess(im))
                    ok.append(True)
                except Exception:  # a broken image gets nan, the batch goes on
                    ok.append(False)
            result = iter([])
            if arrays:
                with self._lock:
                    out = self.session.run(None, {self.input_name: np.stack(arrays)})[0]
                per_class = self.class_scores(out)
                result = iter(per_class[:, self._unsafe].max(axis=1).tolist())
            for good in ok:
                scores.append(round(float(next(result)), 4) if good else math.nan)
        return scores


def letterbox_reference(im: Image.Image, size: int) -> np.ndarray:
    """``(size, size, 3)`` uint8: ``im`` (RGB) pasted at the top-left of a black square, the square resized
    (bilinear) to ``size``: NudeNet's input, as :func:`letterbox` computes it with less work."""
    side = max(im.size)
    canvas = Image.new("RGB", (side, side), (0, 0, 0))
    canvas.paste(im, (0, 0))
    return np.asarray(canvas.resize((size, size), Image.BILINEAR))


def _span(n: int, side: int, size: int) -> tuple[int, int]:
    """Of the square's resize along one axis (``side`` -> ``size``) where the image covers ``n`` pixels: the
    outputs that can be non-zero (a multiple of ``size``'s odd factor, see :func:`letterbox`) and the input extent
    they read."""
    scale = side / size
    support = max(scale, 1.0)  # the bilinear filter's reach in input pixels
    odd = size // (size & -size)
    out = min(size, -(-(int((n + support) / scale) + 1) // odd) * odd)
    return out, min(side, math.ceil((out - 0.5) * scale + support + 0.5) + 1)


def letterbox(im: Image.Image, size: int) -> np.ndarray:
    """:func:`letterbox_reference`, the same bytes: only the outputs whose bilinear window reaches the image are
    resized (from the image plus the black margin those windows read), the rest is black.

    Pillow resizes a square in two passes, horizontal then vertical, rounding to uint8 in between: done here as
    two explicit passes over the cut canvas, each with the square's own scale (``side / size``) and window
    bounds.  Pillow reads a resize box as float32, so a box edge ``out * side / size`` is exact when the odd
    factor of ``size`` divides ``out`` (320 = 64 x 5: multiples of 5), and the output extents are rounded up to
    such multiples.  Checked byte for byte against the reference on ~900 sizes (``tests/test_images_nsfw.py``)."""
    w, h = im.size
    side = max(w, h)
    if side < 1 or side * size >= 1 << 24:  # (float32 holds the box edges exactly below that)
        return letterbox_reference(im, size)
    ow, cw = _span(w, side, size)
    oh, ch = _span(h, side, size)
    bw, bh = ow * side / size, oh * side / size
    if bw > cw or bh > ch:  # (cannot happen: the extents cover the box; kept exact whatever the sizes)
        return letterbox_reference(im, size)
    canvas = Image.new("RGB", (cw, ch), (0, 0, 0))
    canvas.paste(im, (0, 0))
    part = canvas.resize((ow, ch), Image.BILINEAR, box=(0, 0, bw, ch))
    part = part.resize((ow, oh), Image.BILINEAR, box=(0, 0, ow, bh))
    out = np.zeros((size, size, 3), dtype=np.uint8)
    out[:oh, :ow] = np.asarray(part)
    return out


#: detector name -> factory(cfg) ; add e.g. a CLIP safety head here.
DETECTORS: dict[str, Callable[[dict], NSFWDetector]] = {
    "nudenet": lambda cfg: NudeNetDetector(model_path=cfg.get("model_path"), batch_size=int(cfg["batch_size"]),
                                           threads=int(cfg.get("threads", 1))),
}

_CACHE: dict[tuple, NSFWDetector] = {}
_CACHE_LOCK = threading.Lock()


def load_detector(cfg: dict) -> NSFWDetector:
    """The configured detector (cached per process); raises :class:`DetectorUnavailable`."""
    name = str(cfg.get("detector") or "nudenet")
    key = (name, cfg.get("model_path"), int(cfg.get("batch_size", 16)))
    with _CACHE_LOCK:
        if key not in _CACHE:
            factory = DETECTORS.get(name)
            if factory is None:
                raise DetectorUnavailable(f"unknown NSFW detector {name!r} (known: {sorted(DETECTORS)})")
            _CACHE[key] = factory(cfg)
        return _CACHE[key]


def detector_or_reason(cfg: dict) -> tuple[NSFWDetector | None, str | None]:
    """``(detector, None)`` or ``(None, why NSFW filtering is disabled)``."""
    if not cfg.get("enabled", True):
        return None, "NSFW filtering disabled by config (image.nsfw.enabled: false)"
    try:
        return load_detector(cfg), None
    except DetectorUnavailable as exc:
        return None, f"NSFW filtering DISABLED: {exc}"
    except Exception as exc:  # a corrupt model file etc.
        return None, f"NSFW filtering DISABLED: detector failed to load ({type(exc).__name__}: {exc})"[:300]


def open_for_scoring(data: bytes, max_pixels: int, side: int = NudeNetDetector.size) -> Image.Image:
    """Decode stored bytes for scoring (already validated by the decode step), at reduced scale
    (:func:`obelics_builder.images.decode.open_reduced`)."""
    from .decode import open_reduced

    return open_reduced(data, max_pixels, side, formats=None)


class BatchScorer:
    """Scores the images of a table build in batches as they are decoded, once per distinct sha256.

    ``add(row, image)`` (any thread) queues a usable row with its scoring image (None when it could not be
    prepared: the row stays unscored); a row whose bytes were already queued waits for that score.  ``take()``
    returns a full batch to pass to ``score(batch)`` (any thread), ``take(final=True)`` whatever is left.
    ``side`` is the detector's input size (the decode reduces images to it), None when unknown.
    """

    def __init__(self, detector: NSFWDetector, batch_size: int = 16) -> None:
        self.detector = detector
        self.batch_size = max(1, int(batch_size))
        self.side = getattr(detector, "size", None)
        self._pending: list[tuple[str, Image.Image]] = []
        self._waiting: dict[str, list[dict]] = defaultdict(list)
        self._done: dict[str, float | None] = {}
        self._lock = threading.Lock()

    def add(self, row: dict, image: Image.Image | None) -> None:
        key = row.get("sha256") or row["url"]
        with self._lock:
            if key in self._done:
                row["nsfw"] = self._done[key]
            elif key in self._waiting:
                self._waiting[key].append(row)
            elif image is None:
                self._done[key] = row["nsfw"] = None
            else:
                self._waiting[key].append(row)
                self._pending.append((key, image))

    def settled(self, row: dict) -> bool:
        """Whether ``row``'s score is final (scored, or known to stay unscored)."""
        with self._lock:
            return (row.get("sha256") or row["url"]) in self._done

    def take(self, final: bool = False) -> list[tuple[str, Image.Image]]:
        with self._lock:
            if len(self._pending) < (1 if final else self.batch_size):
                return []
            batch, self._pending = self._pending[:self.batch_size], self._pending[self.batch_size:]
            return batch

    def score(self, batch: list[tuple[str, Image.Image]]) -> None:
        try:
            scores = self.detector.score([im for _, im in batch])
        except Exception as exc:  # the detector itself failed on this batch: leave it unscored, say so
            log.warning("NSFW detector failed on a batch: %s", exc)
            scores = [math.nan] * len(batch)
        with self._lock:
            for (key, _), s in zip(batch, scores):
                value = None if s is None or (isinstance(s, float) and math.isnan(s)) else float(s)
                self._done[key] = value
                for row in self._waiting.pop(key, ()):
                    row["nsfw"] = value


def score_rows(rows: list[dict], cfg: dict, max_pixels: int = 89478485) -> str | None:
    """Fill ``row["nsfw"]`` for rows holding image bytes (``data``); returns a note when scoring is disabled.

    Images that fail to decode for scoring keep ``nsfw = None`` (counted by the caller through the returned note
    is not needed: the row is still usable, simply unscored).
    """
    detector, why = detector_or_reason(cfg)
    if detector is None:
        return why
    todo = [r for r in rows if r.get("data") and not r.get("reason")]
    bs = int(cfg.get("batch_size", 16))
    for i in range(0, len(todo), bs):
        chunk = todo[i:i + bs]
        ims, idx = [], []
        for j, r in enumerate(chunk):
            try:
                ims.append(open_for_scoring(r["data"], max_pixels))
                idx.append(j)
            except Exception:
                r["nsfw"] = None
        if not ims:
            continue
        try:
            scores = detector.score(ims)
        except Exception as exc:  # the detector itself failed on this batch: leave it unscored, say so
            log.warning("NSFW detector failed on a batch: %s", exc)
            scores = [math.nan] * len(ims)
        for j, s in zip(idx, scores):
            chunk[j]["nsfw"] = None if s is None or (isinstance(s, float) and math.isnan(s)) else float(s)
    return None


def nsfw_document_filter(docs: list[dict], ctx: StageContext) -> list[dict]:
    """Stage: drop documents with any image scoring over ``image.nsfw.threshold`` (reason ``nsfw``).

    Scores come from ``ctx.resources["nsfw_by_url"]`` (url -> score) when given, else from each image's metadata
    ``nsfw`` (written by :func:`~obelics_builder.images.apply.apply_image_table`).  When no image carries a
    score, NSFW filtering is reported as disabled (ctx.note) — never silently skipped.
    """
    cfg = nsfw_config(ctx.config.get("filters_config") if isinstance(ctx.config.get("filters_config"), dict)
                      else ctx.config)
    if not cfg.get("enabled", True):
        ctx.note("NSFW filtering disabled by config (image.nsfw.enabled: false)")
        return docs
    threshold = float(cfg["threshold"])
    by_url = ctx.resources.get("nsfw_by_url")
    kept, scored, unscored = [], 0, 0
    for doc in docs:
        worst = None
        for i, url in enumerate(doc.get("images") or []):
            if url is None:
                continue
            s = by_url.get(url) if by_url is not None else None
            if s is None:
                meta = (doc.get("metadata") or [None] * (i + 1))[i]
                s = meta.get("nsfw") if isinstance(meta, dict) else None
            if s is None or (isinstance(s, float) and math.isnan(s)):
                unscored += 1
                continue
            scored += 1
            worst = s if worst is None else max(worst, s)
        if worst is not None and worst > threshold:
            ctx.remove("nsfw")
        else:
            kept.append(doc)
    if unscored and not scored:
        ctx.note("NSFW filtering DISABLED: no image carries an nsfw score (no detector installed? "
                 "pip install 'obelics-builder[nsfw]')")
    return kept
