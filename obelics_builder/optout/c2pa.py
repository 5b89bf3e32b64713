"""C2PA "training and data mining" opt-out inside image files (pure Python, no dependency).

What is read: the C2PA manifest store (a JUMBF superbox labelled ``c2pa``) embedded in
PNG (``caBX`` chunk), JPEG (APP11 ``JP`` segments, reassembled by box instance and sequence number) and WebP
(``C2PA`` RIFF chunk); for other containers (TIFF, HEIF/AVIF, ...) the bytes are scanned for a ``jumb``/``jumd``
superbox labelled ``c2pa``.  In the **active manifest** (the last one of the store, per the C2PA specification)
every assertion labelled ``c2pa.training-mining`` or ``cawg.training-mining`` (optionally with an ``__N`` instance
suffix) is decoded (CBOR or JSON content box) and its ``entries`` are read: ``{"c2pa.ai_training": {"use":
"notAllowed"}, ...}``.  An image is opted out when an entry whose name ends with one of ``uses`` (default
``ai_training``, ``ai_generative_training``, ``data_mining``; ``ai_inference`` is not about training) has
``use == "notAllowed"`` (and, if ``constrained_is_optout``, also ``"constrained"``).

What is NOT verified: the COSE signature of the claim, the signing certificate chain and trust list, time stamps,
the hash of the assertion against the claim's ``assertions`` list, and the hard binding (``c2pa.hash.data``) between
the manifest and the pixels.  A stripped or forged manifest therefore goes unnoticed; this check only honours a
declared preference, it does not authenticate it (for an opt-out signal, honouring an unsigned "notAllowed" errs on
the side of the creator).  Malformed boxes or CBOR give ``error`` set and no opt-out, never an exception.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

DEFAULT_USES = ("ai_training", "ai_generative_training", "data_mining")
ASSERTION_LABELS = ("c2pa.training-mining", "cawg.training-mining")
_MAX_DEPTH = 64


class C2PAParseError(ValueError):
    pass


@dataclass
class C2PAInfo:
    found: bool = False                      # a C2PA manifest store was found
    manifests: int = 0
    active_manifest: str | None = None
    entries: dict = field(default_factory=dict)  # entry name -> use ("allowed" | "notAllowed" | "constrained")
    not_allowed: list[str] = field(default_factory=list)  # entries that opt the image out
    error: str | None = None
    signature_verified: bool = False         # always False: see the module docstring

    @property
    def opted_out(self) -> bool:
        return bool(self.not_allowed)


# ---------------------------------------------------------------------------------------------------------------
# CBOR (RFC 8949), the subset C2PA assertions use, with bounds and depth checks
# ---------------------------------------------------------------------------------------------------------------

def cbor_loads(data: bytes):
    value, pos = _cbor(data, 0, 0)
    return value


def _need(data: bytes, pos: int, n: int) -> None:
    if n < 0 or pos + n > len(data):
        raise C2PAParseError("cbor: truncated")


def _cbor_arg(data: bytes, pos: int, info: int) -> tuple[int | None, int]:
    if info < 24:
        return info, pos
    sizes = {24: 1, 25: 2, 26: 4, 27: 8}
    if info in sizes:
        n = sizes[info]
        _need(data, pos, n)
        return int.from_bytes(data[pos:pos + n], "big"), pos + n
    if info == 31:
        return None, pos  # indefinite length
    raise C2PAParseError("cbor: reserved additional info")


def _cbor(data: bytes, pos: int, depth: int):
    if depth > _MAX_DEPTH:
        raise C2PAParseError("cbor: too deep")
    _need(data, pos, 1)
    ib = data[pos]
    pos += 1
    major, info = ib >> 5, ib & 0x1F
    if major == 7:
        if info == 20:
            return False, pos
        if info == 21:
            return True, pos
        if info in (22, 23):
            return None, pos
        if info == 25:
            _need(data, pos, 2)
            return struct.unpack(">e", data[pos:pos + 2])[0], pos + 2
        if info == 26:
            _need(data, pos, 4)
            return struct.unpack(">f", data[pos:pos + 4])[0], pos + 4
        if info == 27:
            _need(data, pos, 8)
            return struct.unpack(">d", data[pos:pos + 8])[0], pos + 8
        if info < 24:
            return info, pos  # simple value
        if info == 24:
            _need(data, pos, 1)
            return data[pos], pos + 1
        raise C2PAParseError("cbor: unexpected break")
    arg, pos = _cbor_arg(data, pos, info)
    if major == 0:
        return arg, pos
    if major == 1:
        return -1 - arg, pos
    if major in (2, 3):
        if arg is None:  # indefinite: chunks until break
            chunks = []
            while True:
                _need(data, pos, 1)
                if data[pos] == 0xFF:
                    pos += 1
                    break
                chunk, pos = _cbor(data, pos, depth + 1)
                chunks.append(chunk)
            return (b"".join(chunks) if major == 2 else "".join(chunks)), pos
        _need(data, pos, arg)
        raw = bytes(data[pos:pos + arg])
        return (raw if major == 2 else raw.decode("utf-8", "replace")), pos + arg
    if major == 4:
        out = []
        if arg is None:
            while True:
                _need(data, pos, 1)
                if data[pos] == 0xFF:
                    return out, pos + 1
                v, pos = _cbor(data, pos, depth + 1)
                out.append(v)
        if arg > len(data):
            raise C2PAParseError("cbor: array length")
        for _ in range(arg):
            v, pos = _cbor(data, pos, depth + 1)
            out.append(v)
        return out, pos
    if major == 5:
        out_m: dict = {}
        count = arg
        if count is not None and count > len(data):
            raise C2PAParseError("cbor: map length")
        i = 0
        while True:
            if count is None:
                _need(data, pos, 1)
                if data[pos] == 0xFF:
                    return out_m, pos + 1
            elif i >= count:
                return out_m, pos
            k, pos = _cbor(data, pos, depth + 1)
            v, pos = _cbor(data, pos, depth + 1)
            try:
                out_m[k] = v
            except TypeError:  # unhashable key
                out_m[repr(k)] = v
            i += 1
    if major == 6:  # tag: return the tagged value
        return _cbor(data, pos, depth + 1)
    raise C2PAParseError("cbor: bad major type")


# ---------------------------------------------------------------------------------------------------------------
# JUMBF boxes (ISO/IEC 19566-5)
# ---------------------------------------------------------------------------------------------------------------

def _boxes(buf: bytes, start: int, end: int):
    """(type, content_start, content_end) of the boxes in buf[start:end]."""
    pos = start
    while pos + 8 <= end:
        lbox = struct.unpack(">I", buf[pos:pos + 4])[0]
        tbox = bytes(buf[pos + 4:pos + 8])
        header = 8
        if lbox == 1:
            if pos + 16 > end:
                raise C2PAParseError("jumbf: truncated XLBox")
            lbox = struct.unpack(">Q", buf[pos + 8:pos + 16])[0]
            header = 16
        elif lbox == 0:
            lbox = end - pos
        if lbox < header or pos + lbox > end:
            raise C2PAParseError("jumbf: bad box length")
        yield tbox, pos + header, pos + lbox
        pos += lbox


def _description(buf: bytes, s: int, e: int) -> str | None:
    """Label of a ``jumd`` description box (None when it has none)."""
    if e - s < 17:
        raise C2PAParseError("jumbf: short description box")
    toggles = buf[s + 16]
    if not toggles & 0x02:
        return None
    nul = buf.find(b"\x00", s + 17, e)
    if nul < 0:
        raise C2PAParseError("jumbf: unterminated label")
    return bytes(buf[s + 17:nul]).decode("utf-8", "replace")


@dataclass
class _Super:
    label: str | None
    children: list  # of _Super or (type, start, end)


def _superbox(buf: bytes, s: int, e: int, depth: int = 0) -> _Super:
    if depth > _MAX_DEPTH:
        raise C2PAParseError("jumbf: too deep")
    boxes = list(_boxes(buf, s, e))
    if not boxes or boxes[0][0] != b"jumd":
        raise C2PAParseError("jumbf: superbox without description")
    label = _description(buf, boxes[0][1], boxes[0][2])
    children = []
    for t, cs, ce in boxes[1:]:
        children.append(_superbox(buf, cs, ce, depth + 1) if t == b"jumb" else (t, cs, ce))
    return _Super(label, children)


# ---------------------------------------------------------------------------------------------------------------
# Containers
# ---------------------------------------------------------------------------------------------------------------

def _png_jumbf(data: bytes) -> bytes | None:
    pos = 8
    while pos + 12 <= len(data):
        n = struct.unpack(">I", data[pos:pos + 4])[0]
        t = data[pos + 4:pos + 8]
        if pos + 12 + n > len(data):
            break
        if t == b"caBX":
            return data[pos + 8:pos + 8 + n]
        if t == b"IEND":
            break
        pos += 12 + n
    return None


def _jpeg_jumbf(data: bytes) -> bytes | None:
    pos = 2
    instances: dict[int, dict[int, bytes]] = {}
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan: metadata segments come before
            break
        seg_len = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        seg = data[pos + 4:pos + 2 + seg_len]
        if marker == 0xEB and len(seg) >= 16 and seg[:2] == b"JP":
            en = struct.unpack(">H", seg[2:4])[0]
            z = struct.unpack(">I", seg[4:8])[0]
            instances.setdefault(en, {})[z] = seg[8:]
        pos += 2 + seg_len
    for en in sorted(instances):
        parts = instances[en]
        first = parts.get(1) or parts[min(parts)]
        if first[4:8] != b"jumb":
            continue
        body = bytearray(first)
        for z in sorted(parts):
            if parts[z] is first:
                continue
            body += parts[z][8:]  # continuation segments repeat LBox/TBox
        if _label_of(bytes(body)) == "c2pa":
            return bytes(body)
    return None


def _webp_jumbf(data: bytes) -> bytes | None:
    pos = 12
    while pos + 8 <= len(data):
        t = data[pos:pos + 4]
        n = struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if t == b"C2PA":
            return data[pos + 8:pos + 8 + n]
        pos += 8 + n + (n & 1)
    return None


def _label_of(box: bytes) -> str | None:
    try:
        t, s, e = next(_boxes(box, 0, len(box)))
        if t != b"jumb":
            return None
        t2, s2, e2 = next(_boxes(box, s, e))
        return _description(box, s2, e2) if t2 == b"jumd" else None
    except (StopIteration, C2PAParseError, struct.error):
        return None


def _scan_jumbf(data: bytes) -> bytes | None:
    i = data.find(b"jumb")
    while i >= 4:
        if data[i + 8:i + 12] == b"jumd":
            start = i - 4
            lbox = struct.unpack(">I", data[start:start + 4])[0]
            if 8 < lbox <= len(data) - start:
                box = data[start:start + lbox]
                if _label_of(box) == "c2pa":
                    return box
        i = data.find(b"jumb", i + 4)
    return None


def find_manifest_store(data: bytes) -> bytes | None:
    """The JUMBF manifest-store box embedded in an image, or None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _png_jumbf(data)
    if data[:2] == b"\xff\xd8":
        return _jpeg_jumbf(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_jumbf(data)
    return _scan_jumbf(data)


def _base_label(label: str | None) -> str:
    if not label:
        return ""
    return label.split("__", 1)[0]


def inspect(data: bytes, uses=DEFAULT_USES, constrained_is_optout: bool = False) -> C2PAInfo:
    """Parse the C2PA manifest store of an image and report its training-mining preferences."""
    info = C2PAInfo()
    if not data:
        return info
    try:
        store = find_manifest_store(bytes(data))
        if store is None:
            return info
        t, s, e = next(_boxes(store, 0, len(store)))
        if t != b"jumb":
            raise C2PAParseError("jumbf: manifest store is not a superbox")
        root = _superbox(store, s, e)
        if root.label != "c2pa":
            raise C2PAParseError("jumbf: not a c2pa manifest store")
        info.found = True
        manifests = [c for c in root.children if isinstance(c, _Super)]
        info.manifests = len(manifests)
        if not manifests:
            return info
        active = manifests[-1]
        info.active_manifest = active.label
        bad = {"notAllowed"} | ({"constrained"} if constrained_is_optout else set())
        for store_box in active.children:
            if not isinstance(store_box, _Super) or store_box.label != "c2pa.assertions":
                continue
            for a in store_box.children:
                if not isinstance(a, _Super) or _base_label(a.label) not in ASSERTION_LABELS:
                    continue
                for c in a.children:
                    if isinstance(c, _Super):
                        continue
                    ct, cs, ce = c
                    if ct == b"cbor":
                        value = cbor_loads(store[cs:ce])
                    elif ct == b"json":
                        value = json.loads(store[cs:ce].decode("utf-8", "replace"))
                    else:
                        continue
                    entries = value.get("entries") if isinstance(value, dict) else None
                    if not isinstance(entries, dict):
                        continue
                    for name, entry in entries.items():
                        use = entry.get("use") if isinstance(entry, dict) else None
                        if not isinstance(name, str) or not isinstance(use, str):
                            continue
                        info.entries[name] = use
                        if use in bad and any(name.endswith(u) for u in uses):
                            info.not_allowed.append(name)
    except Exception as e:  # noqa: BLE001 - hostile bytes: any parse failure is a counted error, never a crash
        info.error = f"{type(e).__name__}: {e}"[:200]
        info.not_allowed = []
    return info


def training_not_allowed(data: bytes, uses=DEFAULT_USES, constrained_is_optout: bool = False) -> bool:
    return inspect(data, uses, constrained_is_optout).opted_out


def scan_image_table(path, uses=DEFAULT_USES, constrained_is_optout: bool = False, batch_rows: int = 64) -> dict:
    """Scan the ``data`` column of an image-table part (``url``, ``data``) in small batches (memory bounded).

    Returns ``{"opted_out": {url: "entry,entry"}, "errors": {url: message}, "with_manifest": n, "scanned": n}``.
    """
    import pyarrow.parquet as pq

    out = {"opted_out": {}, "errors": {}, "with_manifest": 0, "scanned": 0}
    pf = pq.ParquetFile(path)
    for batch in pf.iter_batches(batch_size=batch_rows, columns=["url", "data"]):
        urls = batch.column(0).to_pylist()
        datas = batch.column(1)
        for i, url in enumerate(urls):
            raw = datas[i].as_py()
            if not raw or not url:
                continue
            out["scanned"] += 1
            info = inspect(raw, uses, constrained_is_optout)
            if info.found:
                out["with_manifest"] += 1
            if info.error:
                out["errors"][url] = info.error
            if info.opted_out:
                out["opted_out"][url] = ",".join(info.not_allowed)
    return out
