"""A tiny, randomly initialised SigLIP (and a CLIP, and a model that is neither) saved with its tokenizer and image
processor, for tests/test_align.py and bench/align (never downloaded)."""
from __future__ import annotations

import json
from pathlib import Path

#: the characters the tiny tokenizer knows (one token each, lower-cased; anything else is <unk>)
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def _tokenizer(max_len: int):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<unk>": 1, "</s>": 2, "<s>": 3}
    for c in ALPHABET:
        vocab[c] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="</s>",
                                   bos_token="<s>", model_max_length=max_len), len(vocab)


def save_tiny_siglip(folder: str | Path, seed: int = 0, image_size: int = 32, max_len: int = 16,
                     hidden: int = 32, layers: int = 2) -> Path:
    """A SigLIP of a few thousand random weights, image side ``image_size``, texts up to ``max_len`` tokens."""
    import torch
    from transformers import SiglipConfig, SiglipModel
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer, vocab = _tokenizer(max_len)
    torch.manual_seed(seed)
    text = dict(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                num_attention_heads=2, max_position_embeddings=max_len, pad_token_id=0, bos_token_id=3,
                eos_token_id=2)
    vision = dict(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers, num_attention_heads=2,
                  image_size=image_size, patch_size=8)
    SiglipModel(SiglipConfig(text_config=text, vision_config=vision)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    SiglipImageProcessorPil(size={"height": image_size, "width": image_size}).save_pretrained(folder)
    return folder


def save_tiny_clip(folder: str | Path, seed: int = 0, image_size: int = 32, max_len: int = 16) -> Path:
    """A CLIP of a few thousand random weights (its tokenizer: the tiny one above)."""
    import torch
    from transformers import CLIPConfig, CLIPModel
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer, vocab = _tokenizer(max_len)
    torch.manual_seed(seed)
    text = dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                max_position_embeddings=max_len, pad_token_id=0, bos_token_id=3, eos_token_id=2)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                  image_size=image_size, patch_size=8)
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    CLIPImageProcessorPil(size={"shortest_edge": image_size},
                          crop_size={"height": image_size, "width": image_size}).save_pretrained(folder)
    return folder


def save_not_clip(folder: str | Path) -> Path:
    """A folder whose config.json names a model that has no image tower (a BERT)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8, "num_hidden_layers": 1,
                                                    "num_attention_heads": 1, "intermediate_size": 8,
                                                    "vocab_size": 40}), encoding="utf-8")
    return folder
