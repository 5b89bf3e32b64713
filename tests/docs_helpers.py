"""Hand-made documents for the quality-stage tests."""
from __future__ import annotations

from obelics_builder import schema


def make_doc(*parts, url: str = "https://site.example/page") -> dict:
    """A document of text parts (strings) and image parts (dicts of image metadata), in order."""
    doc = schema.new_document({"url": url})
    for p in parts:
        if isinstance(p, dict):
            schema.add_image(doc, p)
        else:
            schema.add_text(doc, p)
    return doc


def img(n: int, **extra) -> dict:
    return {"src": f"https://img.example/{n}.jpg", **extra}
