"""A CLIP or SigLIP checkpoint loaded with ``transformers``: embeddings of images and texts, batched, and the cosine
similarity of an image to a text.

``image_text.model`` is a local folder (``config.json``, the weights, the tokenizer and the image processor, as
``save_pretrained`` writes them) or a Hub id (``google/siglip-base-patch16-224``: read from the local Hugging Face
cache, or downloaded by ``transformers`` when the machine may).  :func:`model_problem` says, before any work, why
one cannot be used (one line); :func:`load_scorer` loads it once per process.  Images go through the model's own
image processor on its Pillow backend (no torchvision), texts through its tokenizer (SigLIP: padded to its maximum
length, as it was trained; CLIP: padded to the longest, with the attention mask), both truncated to the model's
maximum.  The score is the cosine similarity of the two projected embeddings, in [-1, 1] (for SigLIP, before its
learned scale and bias: comparable across models of one family, not a probability).
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

#: the model types this stage can score with (``config.json``'s ``model_type``)
MODEL_TYPES = ("clip", "siglip")

_LOADED: dict[tuple, "Scorer"] = {}


def _looks_like_path(spec: str) -> bool:
    return spec.startswith((".", "/", "~")) or spec.count("/") != 1 or "\\" in spec


def model_problem(spec: str) -> str | None:
    """Why ``spec`` cannot be scored with (None: it can): a missing folder, a folder without a model, a model that
    is not CLIP or SigLIP, a missing tokenizer or image processor."""
    path = Path(spec).expanduser()
    if not path.exists() and _looks_like_path(spec):
        return f"model {spec!r}: no such folder (give a folder saved by save_pretrained, or a Hub id org/name)"
    if path.exists() and not path.is_dir():
        return f"model {spec!r} is a file: give the folder holding config.json, the weights and the tokenizer"
    if path.is_dir() and not (path / "config.json").is_file():
        return f"model {spec!r}: the folder has no config.json (not a transformers model folder)"
    try:
        from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer
    except ImportError as e:  # pragma: no cover - transformers is a dependency
        return f"transformers is not installed ({e}): pip install transformers torch"
    where = str(path) if path.is_dir() else spec
    try:
        config = AutoConfig.from_pretrained(where)
    except Exception as e:  # noqa: BLE001 - any failure is the user's model spec: one line
        return (f"model {spec!r}: cannot load its config (not a local folder; as a Hub id it is neither in the "
                f"local cache nor downloadable here): {type(e).__name__}: {str(e).splitlines()[0][:200]}")
    kind = getattr(config, "model_type", None)
    if kind not in MODEL_TYPES:
        return (f"model {spec!r} is a {kind!r} model, not CLIP or SigLIP (image-text alignment needs a model with "
                f"an image and a text tower: model_type {' or '.join(MODEL_TYPES)})")
    for what, load in (("tokenizer", lambda: AutoTokenizer.from_pretrained(where)),
                       ("image processor", lambda: AutoImageProcessor.from_pretrained(where, backend="pil"))):
        try:
            load()
        except Exception as e:  # noqa: BLE001
            return f"model {spec!r}: cannot load its {what}: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
    return None


@lru_cache(maxsize=8)
def model_revision(spec: str) -> str:
    """What identifies the weights ``spec`` names (a cached score is reused only for the same): a local folder's
    files (names, sizes, modification times) and config, or a Hub id's resolved commit."""
    path = Path(spec).expanduser()
    h = hashlib.sha256()
    if path.is_dir():
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            st = f.stat()
            h.update(json.dumps([str(f.relative_to(path)), st.st_size, st.st_mtime_ns]).encode())
        h.update((path / "config.json").read_bytes())
    else:
        from transformers import AutoConfig

        h.update(json.dumps([spec, getattr(AutoConfig.from_pretrained(spec), "_commit_hash", None)]).encode())
    return h.hexdigest()[:16]


def processor_side(processor) -> int:
    """The side of the images the processor hands the model (its crop, else its resize), what images are decoded
    down to (never below)."""
    def get(size, key):
        if size is None:
            return None
        return size.get(key) if isinstance(size, dict) else getattr(size, key, None)

    for size in (getattr(processor, "crop_size", None), getattr(processor, "size", None)):
        side = get(size, "height") or get(size, "shortest_edge")
        if side:
            return int(side)
    return 224


class Scorer:
    """A loaded model: ``image_embeddings(images)`` / ``text_embeddings(texts)`` (L2-normalised float tensors,
    batched by ``batch_size``), ``side`` (the image size the processor resizes to)."""

    def __init__(self, spec: str, device: str = "auto", threads: int | None = 1, batch_size: int = 32,
                 max_text_tokens: int | None = None) -> None:
        import torch
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

        where = str(Path(spec).expanduser()) if Path(spec).expanduser().is_dir() else spec
        if threads:
            torch.set_num_threads(int(threads))
        self.torch = torch
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.model = AutoModel.from_pretrained(where).eval().to(self.device)
        self.kind = self.model.config.model_type
        self.tokenizer = AutoTokenizer.from_pretrained(where)
        self.processor = AutoImageProcessor.from_pretrained(where, backend="pil")
        limit = int(getattr(self.model.config.text_config, "max_position_embeddings", 64))
        self.max_len = min(limit, int(max_text_tokens)) if max_text_tokens else limit
        self.side = processor_side(self.processor)
        self.batch_size = max(1, int(batch_size))
        self.revision = model_revision(spec)

    def _features(self, out):
        t = out if self.torch.is_tensor(out) else out.pooler_output  # transformers 5 returns an output object
        return self.torch.nn.functional.normalize(t.float(), dim=-1).cpu()

    def image_embeddings(self, images: list) -> "object":
        parts = []
        with self.torch.inference_mode():
            for i in range(0, len(images), self.batch_size):
                px = self.processor(images=images[i:i + self.batch_size], return_tensors="pt")["pixel_values"]
                parts.append(self._features(self.model.get_image_features(pixel_values=px.to(self.device))))
        return self.torch.cat(parts) if parts else self.torch.zeros((0, 1))

    def text_embeddings(self, texts: list[str]) -> "object":
        parts = []
        padding = "max_length" if self.kind == "siglip" else True
        with self.torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                enc = self.tokenizer(texts[i:i + self.batch_size], padding=padding, truncation=True,
                                     max_length=self.max_len, return_tensors="pt")
                kwargs = {"input_ids": enc["input_ids"].to(self.device)}
                if self.kind != "siglip" and "attention_mask" in enc:
                    kwargs["attention_mask"] = enc["attention_mask"].to(self.device)
                parts.append(self._features(self.model.get_text_features(**kwargs)))
        return self.torch.cat(parts) if parts else self.torch.zeros((0, 1))


def load_scorer(spec: str, device: str = "auto", threads: int | None = 1, batch_size: int = 32,
                max_text_tokens: int | None = None) -> Scorer:
    """The model ``spec``, loaded once per process (a worker scores many parts with it)."""
    key = (spec, device, threads, batch_size, max_text_tokens)
    if key not in _LOADED:
        _LOADED.clear()  # one model at a time
        _LOADED[key] = Scorer(spec, device, threads, batch_size, max_text_tokens)
    return _LOADED[key]
