"""The documents pages: a sampled kept document rendered interleaved, with local JPEG thumbnails of its images
(made from the fetched bytes; nothing is ever hot-linked) and NSFW-flagged images hidden, only counted."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import warnings
from pathlib import Path

from ..schema import END_OF_DOCUMENT, paragraphs
from .html import _as_float, esc, fmt_num, link, short
from .inputs import is_nsfw

def make_thumb(data: bytes, path: Path, px: int, max_pixels: int) -> tuple[int, int] | None:
    """Write a small JPEG thumbnail of ``data`` to ``path``; its size, or None when the bytes do not decode."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                if im.width * im.height > max_pixels:
                    return None
                im.draft("RGB", (px, px))
                im = im.convert("RGBA") if im.mode in ("P", "LA", "PA") else im
                if im.mode == "RGBA":
                    bg = Image.new("RGB", im.size, (255, 255, 255))
                    bg.paste(im, mask=im.getchannel("A"))
                    im = bg
                elif im.mode != "RGB":
                    im = im.convert("RGB")
                im.thumbnail((px, px))
                tmp = path.with_name(f".{path.name}.tmp")
                im.save(tmp, "JPEG", quality=80, optimize=True)
                tmp.replace(path)
                return im.size
    except Exception:  # noqa: BLE001 - undecodable bytes: the page shows a placeholder
        return None


# ---------------------------------------------------------------------------------------------------------------
# documents pages
# ---------------------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class ImageCounts:
    shown: int = 0
    nsfw_hidden: int = 0
    missing: int = 0


def _thumb_for(url: str, table: dict[str, dict], thumbs: Path, px: int, max_pixels: int,
               cache: dict[str, tuple[str, int, int] | None]) -> tuple[str, int, int] | None:
    if url in cache:
        return cache[url]
    row = table.get(url)
    result = None
    if row and row.get("data"):
        name = hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:24] + ".jpg"
        size = make_thumb(row["data"], thumbs / name, px, max_pixels)
        if size:
            result = (f"thumbs/{name}", size[0], size[1])
    cache[url] = result
    return result


def render_document(doc: dict, idx: int, table: dict[str, dict], thumbs: Path, px: int, max_pixels: int,
                    cutoff: float, counts: ImageCounts, cache: dict) -> str:
    gm = doc.get("general_metadata") or {}
    url = gm.get("url", "")
    lang = gm.get("language")
    lang_s = f"{esc(lang)} ({fmt_num(_as_float(gm.get('language_score')))})" if lang else "–"
    meta = (f'<div class="meta">#{idx} · {link(url)}<br>language: {lang_s} · dump: {esc(gm.get("dump"))} · '
            f'fetched: {esc(gm.get("fetch_date"))} · <code>{esc(doc.get("_part"))}</code> row {doc.get("_row")}</div>')
    nsfw_col = doc.get("image_nsfw") if isinstance(doc.get("image_nsfw"), list) else None
    body = []
    texts, images, metas = doc.get("texts") or [], doc.get("images") or [], doc.get("metadata") or []
    for i, text in enumerate(texts):
        if text is not None:
            for p in paragraphs(text):
                if p.strip() == END_OF_DOCUMENT:
                    body.append('<p class="muted small">[end of document marker]</p>')
                else:
                    body.append(f"<p>{esc(p)}</p>")
            continue
        img_url = images[i] if i < len(images) else None
        m = metas[i] if i < len(metas) and isinstance(metas[i], dict) else {}
        flag = nsfw_col[i] if nsfw_col is not None and i < len(nsfw_col) else None
        row = table.get(img_url or "") or {}
        if is_nsfw(flag, cutoff) or is_nsfw(row.get("nsfw"), cutoff):
            counts.nsfw_hidden += 1
            body.append('<figure><span class="hidden-img nsfw">image hidden: flagged NSFW</span></figure>')
            continue
        thumb = _thumb_for(img_url, table, thumbs, px, max_pixels, cache) if img_url else None
        alt = m.get("alt_text") or ""
        ow, oh = m.get("original_width"), m.get("original_height")
        cap = f'{link(img_url, short(img_url or "", 120))}' + (f" · {fmt_num(ow)}×{fmt_num(oh)}" if ow and oh else "")
        if alt:
            cap += f" · alt: {esc(short(str(alt), 200))}"
        if thumb:
            counts.shown += 1
            src, w, h = thumb
            body.append(f'<figure><img class="thumb" src="{esc(src)}" width="{w}" height="{h}" alt="{esc(short(str(alt), 200))}">'
                        f'<figcaption>{cap}</figcaption></figure>')
        else:
            counts.missing += 1
            body.append(f'<figure><span class="hidden-img missing">no image bytes in the image table</span>'
                        f'<figcaption>{cap}</figcaption></figure>')
    doc_scores = sorted(k for k in doc if k.startswith("doc_"))
    scores = "".join(f"<tr><td>{esc(k)}</td><td class=\"num\">{fmt_num(doc[k])}</td></tr>" for k in doc_scores)
    node_cols = sorted(k for k in doc if k.startswith("node_") and isinstance(doc[k], list))
    node_rows = []
    if node_cols:
        for i, text in enumerate(texts):
            if text is None:
                continue
            paras = paragraphs(text)
            for j, p in enumerate(paras):
                cells = []
                for c in node_cols:
                    vals = doc[c][i] if i < len(doc[c]) else None
                    v = vals[j] if isinstance(vals, list) and j < len(vals) else None
                    cells.append(f'<td class="num">{fmt_num(v)}</td>')
                node_rows.append(f"<tr><td>{esc(short(p, 60))}</td>{''.join(cells)}</tr>")
    node_table = ""
    if node_rows:
        node_table = ("<details><summary>paragraph scores</summary><table class=\"scores\"><tr><th>paragraph</th>"
                      + "".join(f"<th>{esc(c[5:])}</th>" for c in node_cols) + "</tr>" + "".join(node_rows)
                      + "</table></details>")
    score_block = (f'<details><summary>document scores ({len(doc_scores)})</summary><table class="scores">{scores}</table>'
                   "</details>" if doc_scores else "")
    return f'<article class="doc" data-url="{esc(url)}">{meta}<div class="body">{"".join(body)}</div>{score_block}{node_table}</article>'
