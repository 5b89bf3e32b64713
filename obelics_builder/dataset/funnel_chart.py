"""The dataset card's funnel chart (``OUT/dataset/funnel.png``), drawn with Pillow.

Two bar panels side by side, 1300 x 480 px: documents through the stages (blue) and image positions through the
stages (orange, from the first stage that has any), each with its title, a ``count`` axis with thousands
separators and light grid lines, the value above each bar and the stage names slanted under the bars.  It used to
be drawn by matplotlib, whose import and layout cost ~0.7 CPU-s per process for this one figure (Pillow is loaded
by the image stage anyway); the font is matplotlib's DejaVu Sans file when it is installed (found without
importing matplotlib), else Pillow's own scalable default.  Same stats -> same bytes (no time stamp in the PNG).
"""
from __future__ import annotations

import functools
import importlib.util
import math
from pathlib import Path

WIDTH, HEIGHT = 1300, 480
COLORS = ("#3b6ea8", "#d0843b")
TITLES = ("Documents through the stages", "Image positions through the stages")
INK, GRID, AXIS = (0, 0, 0), (222, 222, 222), (0, 0, 0)


@functools.lru_cache(maxsize=None)
def _font(size: int):
    from PIL import ImageFont

    spec = importlib.util.find_spec("matplotlib")
    for base in (spec.submodule_search_locations or []) if spec else []:
        path = Path(base) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)


def _size(text: str, size: int) -> tuple[int, int]:
    left, top, right, bottom = _font(size).getbbox(text)
    return right - left, bottom - top


def _text_image(text: str, size: int, angle: float = 0.0):
    """``text`` in black on a transparent tile, turned by ``angle`` degrees (counter-clockwise)."""
    from PIL import Image, ImageDraw

    font = _font(size)
    left, top, right, bottom = font.getbbox(text)
    tile = Image.new("LA", (max(1, right - left + 2), max(1, bottom - top + 2)), (0, 0))
    ImageDraw.Draw(tile).text((1 - left, 1 - top), text, font=font, fill=(0, 255))
    return tile.rotate(angle, resample=Image.BICUBIC, expand=True) if angle else tile


def _paste(img, tile, x: float, y: float) -> None:
    img.paste((0, 0, 0), (int(round(x)), int(round(y))), tile.getchannel("A"))


def nice_ticks(top: float) -> list[int]:
    """Integer ticks from 0 up to ``top`` at a 1, 2, 2.5 or 5 x 10^k step, at most about 8 of them."""
    raw = max(top / 7.0, 1.0)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    step = max(1, int(step)) if float(step).is_integer() else step
    return [int(k * step) for k in range(int(top // step) + 1) if float(k * step).is_integer()]


def _panel(img, draw, box: tuple[int, int, int, int], labels: list[str], values: list[int], title: str,
           color: str) -> None:
    x0, y0, x1, y1 = box  # the panel's area in the figure
    top = max(values) if values and max(values) > 0 else 1
    ticks = nice_ticks(top * 1.15)
    tick_w = max(_size(f"{t:,}", 14)[0] for t in ticks)
    label_h = max((_text_image(s, 12, 35).height for s in labels), default=0)
    left, right = x0 + 30 + tick_w + 10, x1 - 8
    ptop, bottom = y0 + 34, y1 - 12 - label_h
    title_w, _ = _size(title, 17)
    _paste(img, _text_image(title, 17), (left + right - title_w) / 2, y0 + 8)
    ylabel = _text_image("count", 14, 90)
    _paste(img, ylabel, x0 + 4, (ptop + bottom - ylabel.height) / 2)

    def y_of(v: float) -> float:
        return bottom - (bottom - ptop) * v / (top * 1.15)

    for t in ticks:
        y = y_of(t)
        draw.line([(left, y), (right, y)], fill=GRID, width=1)
        draw.line([(left - 4, y), (left, y)], fill=AXIS, width=1)
        w, h = _size(f"{t:,}", 14)
        _paste(img, _text_image(f"{t:,}", 14), left - 7 - w, y - h / 2 - 1)
    n = len(values)
    if n:
        slot = (right - left) / n
        for i, (name, v) in enumerate(zip(labels, values)):
            cx = left + slot * (i + 0.5)
            half = slot * 0.4
            draw.rectangle([cx - half, y_of(v), cx + half, bottom], fill=color)
            w, h = _size(f"{v:,}", 11)
            gap = (bottom - ptop) * 0.01 / 1.15  # 1% of the top value above the bar, as the matplotlib chart had
            _paste(img, _text_image(f"{v:,}", 11), cx - w / 2, y_of(v) - gap - h - 3)
            tile = _text_image(name, 12, 35)
            draw.line([(cx, bottom), (cx, bottom + 4)], fill=AXIS, width=1)
            _paste(img, tile, cx - tile.width + 2, bottom + 6)
    else:
        w, h = _size("no stage statistics", 14)
        _paste(img, _text_image("no stage statistics", 14), (left + right - w) / 2, (ptop + bottom - h) / 2)
    draw.rectangle([left, ptop, right, bottom], outline=AXIS, width=1)


def draw_funnel(series: tuple[list[str], list[int], list[int]], path: str | Path) -> Path:
    """Write the chart of ``card.funnel_series``' labels, document and image-position counts to ``path`` (PNG,
    written under a temporary name, then renamed)."""
    from PIL import Image, ImageDraw

    labels, docs, images = series
    skip = next((i for i, v in enumerate(images) if v), len(images))  # image positions exist from the extractor on
    img = Image.new("RGB", (WIDTH, HEIGHT), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    half = WIDTH // 2
    _panel(img, draw, (0, 0, half, HEIGHT), labels, docs, TITLES[0], COLORS[0])
    _panel(img, draw, (half, 0, WIDTH, HEIGHT), labels[skip:], images[skip:], TITLES[1], COLORS[1])
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    img.save(tmp, format="PNG", optimize=False)
    tmp.replace(path)
    return path
