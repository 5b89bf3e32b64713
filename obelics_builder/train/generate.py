"""Few-shot captioning from a trained checkpoint: N in-context (image, caption) pairs, then a query image; greedy
decoding.  The plumbing a captioning evaluation needs (shots from files or from the shards, references kept)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator


from .data import iter_shard, resolve_shards
from .images import ImagePrep, ImageRef, default_image_processor
from .pack import PackedRow, collate
from .render import ArchSpec, render_document
from .tokenizer import token_ids

PROMPT = "Caption:"
_SENTENCE = re.compile(r"(.+?[.!?])(\s|$)")


@dataclass
class Loaded:
    model: object
    tokenizer: object
    spec: ArchSpec
    arch: str
    prep: ImagePrep
    processor: object = None


def load_checkpoint(path: str | Path) -> Loaded:
    """An output dir, a checkpoint dir or a model dir -> model (eval mode), its processor's tokenizer and image
    processor, and the arch spec (checkpoints without a processor: the tokenizer and the default image processor)."""
    from transformers import AutoConfig, AutoTokenizer

    from .loop import SPEC_FILE, resolve_model_dir
    from .models import arch_of_config, model_class
    from .processor import load_processor

    mdir = resolve_model_dir(path)
    config = AutoConfig.from_pretrained(mdir)
    arch = arch_of_config(config)
    model = model_class(arch).from_pretrained(mdir)
    model.eval()
    processor = load_processor(mdir)
    tokenizer = processor.tokenizer if processor is not None else AutoTokenizer.from_pretrained(mdir)
    meta = json.loads((mdir / SPEC_FILE).read_text())
    tokenizer.init_kwargs["obelics_base_vocab"] = meta["base_vocab"]
    spec = ArchSpec.from_dict(meta["spec"])
    ip = processor.image_processor if processor is not None else default_image_processor(spec)
    return Loaded(model, tokenizer, spec, arch, ImagePrep(spec, ip), processor)


def first_sentence(text: str, max_words: int = 30) -> str:
    text = " ".join(text.split())
    m = _SENTENCE.match(text)
    s = m.group(1) if m else text
    return " ".join(s.split()[:max_words])


def pairs_from_shards(data: list[str] | str, prep: ImagePrep) -> Iterator[tuple[ImageRef, str, str]]:
    """(image, caption, source) for every image directly followed by a text in the shards' documents."""
    from collections import Counter

    counts = Counter()
    for shard in resolve_shards(data):
        for doc in iter_shard(shard, 0, counts):
            for (k1, v1), (k2, v2) in zip(doc.items, doc.items[1:]):
                if k1 == "image" and k2 == "text":
                    arr = prep.decode(v1)
                    cap = first_sentence(v2)
                    if arr is not None and cap:
                        yield arr, cap, f"{doc.shard}#{doc.offset}"


def load_image_file(path: str, prep: ImagePrep) -> ImageRef:
    arr = prep.decode(Path(path).read_bytes())
    if arr is None:
        raise ValueError(f"{path}: not a decodable image")
    return arr


def build_prompt(shots: list[tuple[ImageRef, str]], query: ImageRef, tokenizer, spec: ArchSpec) -> PackedRow:
    """Shots rendered as ``<image-run>Caption: {caption}\\n`` then ``<image-run>Caption:`` (no EOS)."""
    tok = token_ids(tokenizer)
    items = []
    for img, cap in shots:
        items += [("image", img), ("text", f"{PROMPT} {cap}\n")]
    items += [("image", query), ("text", PROMPT)]
    doc = render_document(items, lambda t: tokenizer.encode(t, add_special_tokens=False), tok, spec)
    row = PackedRow()
    doc.ids = doc.ids[:-1]  # the prompt continues: drop EOS
    row.add(doc)
    return row


def greedy_generate(loaded: Loaded, row: PackedRow, max_new_tokens: int = 20) -> str:
    """Greedy decoding, recomputing the full prompt each step (simple and exact for every arch; no KV cache)."""
    import torch

    tok = token_ids(loaded.tokenizer)
    stop = {tok.eos, tok.pad, tok.end_of_utterance}
    newline = set(loaded.tokenizer.encode("\n", add_special_tokens=False))
    new: list[int] = []
    cache: dict[int, tuple] = {}

    def pixels(im):  # the prompt's images are preprocessed once
        if id(im) not in cache:
            cache[id(im)] = loaded.prep.pixels(im)
        return cache[id(im)]

    with torch.no_grad():
        for _ in range(max_new_tokens):
            r = PackedRow(ids=row.ids + new, doc=row.doc + [0] * len(new), spans=row.spans, images=row.images,
                          n_docs=1)
            b = collate([r], loaded.spec, tok, pixels=pixels)
            inputs = {k: torch.from_numpy(v) for k, v in b.items() if k != "labels"}
            logits = loaded.model(**inputs, use_cache=False).logits[0, -1]
            for t in (tok.image, tok.fake, tok.global_img, *tok.row_col):
                if t >= 0:  # never emit image tokens (-1: absent from this tokenizer)
                    logits[t] = float("-inf")
            nxt = int(torch.argmax(logits))
            if nxt in stop or (nxt in newline and new):
                break
            new.append(nxt)
    return loaded.tokenizer.decode(new, skip_special_tokens=True).strip()
