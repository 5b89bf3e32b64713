"""The bundled trainer: IDEFICS-family models on this project's shards (``obelics-build train`` / ``generate``).

Modules: ``tokenizer`` (image tokens, the offline BPE), ``render`` (per-arch token layouts), ``pack`` (greedy packing,
masks, collation), ``data`` (shard readers, rank/worker split, resumable cursor), ``models`` (builders, backbones,
trainable policy), ``loop`` (accelerate training loop, checkpoints), ``generate`` (few-shot captioning).
Needs the ``train`` extra (torch, transformers, tokenizers, safetensors, accelerate, peft).
"""
