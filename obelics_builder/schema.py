"""The document row: one web document, OBELICS-compatible, plus score columns.

In memory a document is a plain ``dict`` (so stages stay engine-neutral and cheap to pickle):

``texts``            list[str | None]   text at text positions, ``None`` at image positions
``images``           list[str | None]   absolute image URL at image positions, ``None`` at text positions
``metadata``         list[dict | None]  one entry per position: ``None`` for text; for images a dict with
                                        ``src`` (absolute URL), ``unformatted_src`` (raw attribute), ``alt_text``,
                                        ``rendered_width`` / ``rendered_height`` (from attributes, when present)
                                        and, after fetching, ``original_width``, ``original_height``, ``format``,
                                        ``sha256``.  OBELICS's ``document_url`` and ``formatted_filename`` are kept
                                        too when the extractor produces them.
``general_metadata`` dict               ``url``, ``warc_filename``, ``warc_record_offset``,
                                        ``warc_record_length``, ``dump`` (e.g. ``CC-MAIN-2023-06``),
                                        ``fetch_date`` (WARC-Date, ISO 8601) and, when computed, ``language``,
                                        ``language_score``.

Filter *scores* are extra keys whose names start with ``node_`` (a list aligned with ``texts``: ``None`` at image
positions, else a list with one value per paragraph of that text) or ``doc_`` (one value per document) or
``image_`` (a list aligned with ``texts``: ``None`` at text positions, else one value for the image).
Scores are never decisions: stages that remove content read scores and a config, and count each removal.

On disk (Parquet, see :func:`to_arrow`) the four OBELICS columns have exactly the published types:
``texts: list<string>``, ``images: list<string>``, ``metadata: string`` (JSON list) and
``general_metadata: string`` (JSON object); score columns follow them.
"""
from __future__ import annotations

import json
from typing import Any, Iterable

import pyarrow as pa

#: The published OBELICS columns, in the published order of the dataset card's ``dataset_info``.
OBELICS_COLUMNS = ("images", "metadata", "general_metadata", "texts")

#: The marker OBELICS leaves where a "read more" link cut a page.
END_OF_DOCUMENT = "END_OF_DOCUMENT_TOKEN_TO_BE_REPLACED"

#: Paragraph separator inside one text entry.
PARAGRAPH_SEP = "\n\n"

SCORE_PREFIXES = ("node_", "doc_", "image_")

OBELICS_ARROW_SCHEMA = pa.schema(
    [
        pa.field("images", pa.list_(pa.string())),
        pa.field("metadata", pa.string()),
        pa.field("general_metadata", pa.string()),
        pa.field("texts", pa.list_(pa.string())),
    ]
)


def new_document(general_metadata: dict | None = None) -> dict:
    """An empty document."""
    return {"texts": [], "images": [], "metadata": [], "general_metadata": dict(general_metadata or {})}


def add_text(doc: dict, text: str) -> None:
    doc["texts"].append(text)
    doc["images"].append(None)
    doc["metadata"].append(None)


def add_image(doc: dict, meta: dict) -> None:
    """Append an image position; ``meta["src"]`` must be the absolute URL."""
    doc["texts"].append(None)
    doc["images"].append(meta["src"])
    doc["metadata"].append(meta)


def is_image(doc: dict, i: int) -> bool:
    return doc["texts"][i] is None


def n_images(doc: dict) -> int:
    return sum(1 for t in doc["texts"] if t is None)


def n_text_positions(doc: dict) -> int:
    return sum(1 for t in doc["texts"] if t is not None)


def paragraphs(text: str) -> list[str]:
    """The paragraphs (nodes of the text filters) of one text entry."""
    return [p for p in text.split(PARAGRAPH_SEP) if p.strip()]


def n_paragraphs(doc: dict) -> int:
    return sum(len(paragraphs(t)) for t in doc["texts"] if t is not None)


def doc_url(doc: dict) -> str:
    return doc["general_metadata"].get("url", "")


def score_columns(doc: dict) -> list[str]:
    return [k for k in doc if k.startswith(SCORE_PREFIXES)]


def keep_positions(doc: dict, keep: list[bool]) -> dict:
    """Drop positions (texts/images/metadata and every aligned node_/image_ column) where ``keep`` is False.

    Works in place and returns the document.
    """
    for key in list(doc):
        if key in ("texts", "images", "metadata") or key.startswith(("node_", "image_")):
            values = doc[key]
            if isinstance(values, list) and len(values) == len(keep):
                doc[key] = [v for v, k in zip(values, keep) if k]
    return doc


def validate(doc: dict) -> None:
    """Raise ``ValueError`` if a document breaks the row invariants."""
    texts, images, metadata = doc["texts"], doc["images"], doc["metadata"]
    if not (len(texts) == len(images) == len(metadata)):
        raise ValueError("texts, images and metadata must have the same length")
    for i, (t, im, m) in enumerate(zip(texts, images, metadata)):
        if t is None:
            if not isinstance(im, str) or not isinstance(m, dict) or m.get("src") != im:
                raise ValueError(f"position {i}: an image needs a URL in images and metadata['src']")
        else:
            if im is not None or m is not None:
                raise ValueError(f"position {i}: a text position must have images=None and metadata=None")
    if not isinstance(doc["general_metadata"], dict):
        raise ValueError("general_metadata must be a dict in memory")


# ---------------------------------------------------------------------------------------------------------------
# Arrow / Parquet
# ---------------------------------------------------------------------------------------------------------------

def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=False)


def _score_type(name: str, values: list[Any]) -> pa.DataType:
    if name.startswith("doc_"):
        sample = next((v for v in values if v is not None), None)
        if isinstance(sample, str):
            return pa.string()
        if isinstance(sample, bool):
            return pa.bool_()
        return pa.float64()
    if name.startswith("node_"):
        inner = next((x for v in values if v for p in v if p for x in p if x is not None), None)
        return pa.list_(pa.list_(pa.string() if isinstance(inner, str) else pa.float64()))
    return pa.list_(pa.float64())  # image_


def to_arrow(docs: list[dict], score_names: Iterable[str] | None = None) -> pa.Table:
    """Serialise documents to an Arrow table: the OBELICS columns, then score columns (sorted by name).

    ``score_names`` fixes the score columns (missing values become null); by default the union over ``docs``.
    """
    if score_names is None:
        names: set[str] = set()
        for d in docs:
            names.update(score_columns(d))
        score_names = sorted(names)
    else:
        score_names = list(score_names)
    arrays = [
        pa.array([d["images"] for d in docs], pa.list_(pa.string())),
        pa.array([_dumps(d["metadata"]) for d in docs], pa.string()),
        pa.array([_dumps(d["general_metadata"]) for d in docs], pa.string()),
        pa.array([d["texts"] for d in docs], pa.list_(pa.string())),
    ]
    fields = list(OBELICS_ARROW_SCHEMA)
    for name in score_names:
        values = [d.get(name) for d in docs]
        typ = _score_type(name, values)
        if typ == pa.float64():
            values = [None if v is None else float(v) for v in values]
        arrays.append(pa.array(values, typ))
        fields.append(pa.field(name, typ))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def from_arrow(table: pa.Table) -> list[dict]:
    """Inverse of :func:`to_arrow`."""
    cols = table.to_pydict()
    n = table.num_rows
    docs = []
    for i in range(n):
        d = {
            "texts": cols["texts"][i] or [],
            "images": cols["images"][i] or [],
            "metadata": json.loads(cols["metadata"][i]) if cols["metadata"][i] else [],
            "general_metadata": json.loads(cols["general_metadata"][i]) if cols["general_metadata"][i] else {},
        }
        for name in cols:
            if name.startswith(SCORE_PREFIXES):
                d[name] = cols[name][i]
        docs.append(d)
    return docs


def to_obelics_row(doc: dict) -> dict:
    """The published row (JSON-serialisable), e.g. for ``obelics-build extract`` output; adds ``url`` on top."""
    return {
        "url": doc_url(doc),
        "texts": doc["texts"],
        "images": doc["images"],
        "metadata": _dumps(doc["metadata"]),
        "general_metadata": _dumps(doc["general_metadata"]),
    }
