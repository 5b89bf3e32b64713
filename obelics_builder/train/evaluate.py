"""Validation for ``train --eval-data``: the loss and perplexity of the model on a held-out shard set.

The held-out stream is the training stream's rendering and packing over the ``--eval-data`` shards, read in order
(no shuffle), one pass, capped at ``--eval-batches`` full batches: the same batches at every evaluation, so the
figures of two evaluations differ only by the model.  The loss is the next-token cross-entropy averaged over every
label token of those batches (pad and ``<image>`` ignored, no z-loss); the perplexity is ``exp`` of it.  Every process
evaluates the same batches (the same number of forward passes, as FSDP needs).  The model goes back to the mode it
was in (train) afterwards.
"""
from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import replace
from typing import Callable, Iterator

from .data import RowStream, StreamConfig, batches


def eval_config(base: StreamConfig, shards: list[str], reader=None) -> StreamConfig:
    """The held-out stream settings: the training stream's, over ``shards``, in order, one pass."""
    return replace(base, shards=list(shards), reader=reader, shuffle=False, max_epochs=1)


def eval_batches(cfg: StreamConfig, max_batches: int) -> Iterator[dict]:
    """The held-out batches (numpy), at most ``max_batches`` (0: all of one pass)."""
    for k, b in enumerate(batches(RowStream(cfg), cfg)):
        if max_batches and k >= max_batches:
            return
        yield b


def evaluate(model, cfg: StreamConfig, max_batches: int, device, input_keys: tuple[str, ...],
             autocast: Callable = nullcontext) -> dict:
    """``{"eval_loss", "eval_ppl", "eval_tokens", "eval_batches", "eval_s"}`` of ``model`` on the held-out stream."""
    import torch
    import torch.nn.functional as F

    t0 = time.time()
    was_training = model.training
    model.eval()
    ce_sum, n_tok, n_b = 0.0, 0, 0
    try:
        with torch.no_grad():
            for b in eval_batches(cfg, max_batches):
                inputs = {k: torch.from_numpy(b[k]).to(device) for k in input_keys if k in b}
                labels = torch.from_numpy(b["labels"]).to(device)
                with autocast():
                    logits = model(**inputs, use_cache=False).logits
                target = labels[:, 1:]
                mask = target != -100
                if bool(mask.any()):
                    sel = logits[:, :-1].float()[mask]
                    ce_sum += float(F.cross_entropy(sel, target[mask], reduction="sum"))
                    n_tok += int(mask.sum())
                n_b += 1
    finally:
        model.train(was_training)
    loss = ce_sum / n_tok if n_tok else float("nan")
    ppl = math.exp(loss) if n_tok and loss < 700 else float("inf") if n_tok else float("nan")
    return {"eval_loss": round(loss, 6), "eval_ppl": round(ppl, 4), "eval_tokens": n_tok, "eval_batches": n_b,
            "eval_s": round(time.time() - t0, 3)}
