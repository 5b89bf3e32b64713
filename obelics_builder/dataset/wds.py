"""The WebDataset sample layout, shared by the shard writer, ``convert`` and the trainer's reader.

Every sample (one document) has exactly two members, whatever its number of images::

    KEY.json          {"texts": "<JSON list>", "images": "<JSON list>", "metadata": "<JSON list>",
                       "general_metadata": "<JSON object>"}
    KEY.images.tar    an uncompressed tar of the document's image files, named ``<position>.<ext>``
                      (e.g. ``2.jpg``, ``5.png``); empty (1024 zero bytes) for a document without image bytes

Why this shape.  The ``datasets`` WebDataset builder infers the columns from the first 5 samples and needs them to
have the same member names; and it fixes each column's Arrow type there, so a list that is all null in those samples
(the ``images`` of text-only documents) would become a ``null`` column and the first document with an image URL
would fail to load.  So the member names do not depend on the number of images (the images go in one inner tar,
still as real image files), and every field of the JSON is a string: ``metadata`` and ``general_metadata`` are
byte-identical to the Parquet columns (strings holding JSON), ``texts`` and ``images`` are the Parquet lists
serialised as JSON arrays (``json.loads`` gives the Parquet value, nulls included).

Readers also accept the earlier layout (``KEY.json`` with native lists/objects and ``KEY.<pos>.<ext>`` members).
"""
from __future__ import annotations

import io
import json
import tarfile

JSON_MEMBER = "json"
IMAGES_MEMBER = "images.tar"
FIELDS = ("texts", "images", "metadata", "general_metadata")


class SampleError(ValueError):
    """A WebDataset sample that does not follow the layout; ``reason`` names the problem for the counters
    (``sample_without_json``, ``bad_json``, ``bad_images_tar``)."""

    def __init__(self, message: str, reason: str = "bad_json") -> None:
        super().__init__(message)
        self.reason = reason


def dumps(value) -> str:
    # the same serialisation as schema.to_arrow, so JSON columns round-trip byte for byte
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


#: tarfile's copy buffer for a member's bytes (its default, 16 KB, copies an image in Python-level steps)
COPY_BUFSIZE = 4 << 20


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def pack_images(images: dict[int, tuple[bytes, str]]) -> bytes:
    """``{pos: (bytes, ext)}`` -> the bytes of ``KEY.images.tar`` (members ``<pos>.<ext>`` in position order, fixed
    metadata, no padding after the end-of-archive blocks, so the same images give the same bytes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        tar.copybufsize = COPY_BUFSIZE
        for pos in sorted(images):
            data, ext = images[pos]
            tar.addfile(_tarinfo(f"{int(pos)}.{ext}", len(data)), io.BytesIO(data))
        tar.close()
        end = tar.offset  # after the two end-of-archive blocks, before the record padding
    return buf.getvalue()[:end]


def unpack_images(data: bytes) -> dict[int, tuple[bytes, str]]:
    """The bytes of ``KEY.images.tar`` -> ``{pos: (bytes, ext)}``; members not named ``<pos>.<ext>`` are skipped."""
    out: dict[int, tuple[bytes, str]] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for m in tar:
                if not m.isfile():
                    continue
                pos, _, ext = m.name.rsplit("/", 1)[-1].partition(".")
                if pos.isdigit() and ext:
                    out[int(pos)] = (tar.extractfile(m).read(), ext)
    except (tarfile.TarError, EOFError) as e:
        raise SampleError(f"unreadable {IMAGES_MEMBER}: {e}", "bad_images_tar") from e
    return out


def encode_sample(row: dict, images: dict[int, tuple[bytes, str]]) -> dict[str, bytes]:
    """A Parquet-form row (``texts``, ``images`` lists; ``metadata``, ``general_metadata`` JSON strings) and its
    image files -> ``{suffix: bytes}`` members of one sample."""
    doc = {"texts": dumps(list(row["texts"])), "images": dumps(list(row["images"])),
           "metadata": row["metadata"] if isinstance(row["metadata"], str) else dumps(row["metadata"]),
           "general_metadata": (row["general_metadata"] if isinstance(row["general_metadata"], str)
                                else dumps(row["general_metadata"]))}
    return {JSON_MEMBER: dumps(doc).encode("utf-8"), IMAGES_MEMBER: pack_images(images)}


def _as_json_text(value, default: str) -> str:
    if value is None:
        return default
    return value if isinstance(value, str) else dumps(value)


def _as_list(value, name: str) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as e:
            raise SampleError(f"{name} is not a JSON list: {e}") from e
    if not isinstance(value, list):
        raise SampleError(f"{name} is not a list")
    return value


def decode_sample(members: dict[str, bytes]) -> tuple[dict, dict[int, tuple[bytes, str]]]:
    """``{suffix: bytes}`` of one sample -> (Parquet-form row, ``{pos: (bytes, ext)}``).  Accepts this layout and the
    earlier one (native lists in the JSON, ``<pos>.<ext>`` members).  Raises SampleError."""
    raw = members.get(JSON_MEMBER)
    if raw is None:
        raise SampleError("sample without a json member", "sample_without_json")
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise SampleError(f"bad json: {e}") from e
    if not isinstance(doc, dict):
        raise SampleError("the json member is not an object")
    row = {"texts": _as_list(doc.get("texts"), "texts"), "images": _as_list(doc.get("images"), "images"),
           "metadata": _as_json_text(doc.get("metadata"), "[]"),
           "general_metadata": _as_json_text(doc.get("general_metadata"), "{}")}
    images = unpack_images(members[IMAGES_MEMBER]) if IMAGES_MEMBER in members else {}
    for suffix, data in members.items():  # earlier layout: KEY.<pos>.<ext>
        pos, _, ext = suffix.partition(".")
        if pos.isdigit() and ext:
            images.setdefault(int(pos), (data, ext))
    return row, images
