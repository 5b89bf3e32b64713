"""The training loop behind ``obelics-build train`` (accelerate-based: ``accelerate launch`` gives DDP/FSDP with no
code change).  Checkpoints ``DIR/checkpoint-NNNNNNN/``:

* ``model/``: ``save_pretrained`` safetensors + the processor (tokenizer, image processor, chat template) +
  ``obelics_train.json`` (arch spec): ``AutoProcessor`` / ``from_pretrained``-loadable (LoRA adapters merged);
* ``state/``: ``accelerator.save_state`` (model, optimizer, RNG);
* ``trainer_state.json``: step, scheduler, run settings; ``cursor-rank<R>.json``: the data cursor of each rank.

A checkpoint is written under a temporary name and renamed when complete; ``DIR/latest`` names the newest one.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

from .data import DataError, StreamConfig, batch_hash
from .evaluate import eval_batches, eval_config, evaluate
from .mix import MixError, check_resume, make_mix_dataset, plan_from_args, tokens_by_source
from .mix import sample_texts as mix_sample_texts
from .render import ArchSpec

log = logging.getLogger(__name__)

CKPT_PREFIX = "checkpoint-"
SPEC_FILE = "obelics_train.json"
MODEL_INPUTS = ("input_ids", "attention_mask", "pixel_values", "image_attention_mask", "pixel_attention_mask")


# ------------------------------------------------------------------------------------------------ checkpoints

def list_checkpoints(out_dir: Path) -> list[Path]:
    """Complete checkpoints in ``out_dir``, oldest first."""
    if not out_dir.is_dir():
        return []
    found = []
    for p in out_dir.iterdir():
        if p.is_dir() and p.name.startswith(CKPT_PREFIX) and (p / "trainer_state.json").is_file():
            try:
                found.append((int(p.name[len(CKPT_PREFIX):]), p))
            except ValueError:
                continue
    return [p for _, p in sorted(found)]


def find_resume(out_dir: Path, resume: str | None) -> Path | None:
    if not resume or resume == "none":
        return None
    if resume == "auto":
        ck = list_checkpoints(out_dir)
        return ck[-1] if ck else None
    p = Path(resume)
    if not (p / "trainer_state.json").is_file():
        raise SystemExit(f"--resume {resume}: not a complete checkpoint (no trainer_state.json)")
    return p


def resolve_model_dir(path: str | Path) -> Path:
    """An output dir, a checkpoint dir or a model dir -> the model dir (``from_pretrained``-loadable)."""
    p = Path(path)
    if (p / "config.json").is_file():
        return p
    if (p / "model" / "config.json").is_file():
        return p / "model"
    ck = list_checkpoints(p)
    if ck:
        return ck[-1] / "model"
    raise FileNotFoundError(f"{path}: no model (config.json), checkpoint or output dir with checkpoints")


# ------------------------------------------------------------------------------------------------ loss & schedule

def lm_loss(logits, labels, z_weight: float):
    """Next-token CE over labels != -100 plus ``z_weight * mean(logsumexp(logits)^2)`` on the same positions.
    Returns (total, ce, z)."""
    import torch
    import torch.nn.functional as F

    logits = logits[:, :-1].float()
    target = labels[:, 1:]
    mask = target != -100
    if not bool(mask.any()):
        zero = logits.sum() * 0.0
        return zero, zero, zero
    sel = logits[mask]
    ce = F.cross_entropy(sel, target[mask])
    z = torch.logsumexp(sel, dim=-1).pow(2).mean()
    return ce + z_weight * z, ce, z


def lr_lambda_factory(warmup: int, total: int, min_ratio: float = 0.0):
    def f(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        if total <= warmup:
            return 1.0
        frac = (step - warmup) / max(1, total - warmup)
        return max(min_ratio, 1.0 - frac * (1.0 - min_ratio))
    return f


# ------------------------------------------------------------------------------------------------ training

def train(args) -> int:
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from torch.utils.data import DataLoader
    from transformers import AutoConfig, AutoTokenizer

    from . import models as M
    from .tokenizer import ARCH_TOKENS, add_image_tokens, load_tokenizer, make_encoder, token_ids, train_tiny_tokenizer

    if args.threads:
        torch.set_num_threads(args.threads)
    use_bf16 = torch.cuda.is_available() and not args.no_bf16
    acc = Accelerator(mixed_precision="bf16" if use_bf16 else "no", gradient_accumulation_steps=args.grad_accum)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    say = (lambda *a: print(*a, flush=True)) if acc.is_main_process else (lambda *a: None)

    try:
        plan = getattr(args, "_mix_plan", None) or plan_from_args(args)
    except (DataError, MixError) as e:
        print(f"train: {e}", file=sys.stderr)
        return 2
    shards = [s for src in plan.sources for s in src.shards]
    if plan.mixed:
        say(plan.describe())
    resume_dir = find_resume(out, args.resume)
    set_seed(args.seed)
    preset = args.random_init or ("tiny" if args.tiny else None)

    # ---- tokenizer + model + image processor
    from .images import ImageConfigError, ImagePrep, configure, default_image_processor
    from .processor import build_processor, load_processor

    splitting = None if args.image_splitting is None else args.image_splitting == "on"
    processor = None
    try:
        if resume_dir is not None:
            mdir = resume_dir / "model"
            meta = json.loads((mdir / SPEC_FILE).read_text())
            processor = load_processor(mdir)
            tokenizer = processor.tokenizer if processor is not None else AutoTokenizer.from_pretrained(mdir)
            tokenizer.init_kwargs["obelics_base_vocab"] = meta["base_vocab"]
            config = AutoConfig.from_pretrained(mdir)
            arch = M.arch_of_config(config)
            if args.arch and arch != args.arch:
                print(f"train: checkpoint {resume_dir} is {arch}, not --arch {args.arch}", file=sys.stderr)
                return 2
            model = M.model_class(arch)(config)
            spec = ArchSpec.from_dict(meta["spec"])
            ip = processor.image_processor if processor is not None else default_image_processor(spec)
            origin = meta.get("origin", {})
            say(f"resuming from {resume_dir} (its processor and image settings)"
                + ("; --image-longest-edge/--image-splitting are ignored" if args.image_longest_edge is not None
                   or splitting is not None else ""))
        elif args.init_from:
            model, processor, arch, where = M.load_init(args.init_from)
            if args.arch and arch != args.arch:
                print(f"train: --init-from {args.init_from} is {arch}, not --arch {args.arch}", file=sys.stderr)
                return 2
            tokenizer = processor.tokenizer
            own = Path(where) / SPEC_FILE
            tokenizer.init_kwargs["obelics_base_vocab"] = (json.loads(own.read_text())["base_vocab"] if own.is_file()
                                                           else tokenizer.vocab_size)
            add_image_tokens(tokenizer, row_col=arch == "idefics3", only=ARCH_TOKENS[arch])
            M.fit_embeddings(model, len(tokenizer))
            spec = M.spec_for_init(model.config, processor)
            ip = configure(processor.image_processor, spec, args.image_longest_edge, splitting)
            origin = {"init_from": args.init_from}
            say(f"initialised from {where} ({arch}, its processor)")
        elif preset:
            tok_dir = out / "tokenizer"
            if acc.is_main_process and not (tok_dir / "tokenizer.json").is_file():
                vocab = M.PRESETS[preset]["vocab"]
                t0 = time.time()
                tk = train_tiny_tokenizer(mix_sample_texts(plan), vocab_size=vocab)
                tk.save_pretrained(tok_dir)
                (tok_dir / "base_vocab.txt").write_text(str(tk.init_kwargs["obelics_base_vocab"]))
                say(f"trained a byte-level BPE tokenizer ({len(tk)} tokens) on the shards' text in "
                    f"{time.time()-t0:.1f}s")
            acc.wait_for_everyone()
            tokenizer = AutoTokenizer.from_pretrained(tok_dir)
            tokenizer.init_kwargs["obelics_base_vocab"] = int((tok_dir / "base_vocab.txt").read_text())
            model, spec = M.build_random(args.arch, preset, token_ids(tokenizer))
            arch, origin = args.arch, {"random_init": preset}
            ip = default_image_processor(spec, args.image_longest_edge, splitting)
        else:
            if not (args.vision_model and args.lm):
                print("train: give --tiny (random init), --init-from, or both --vision-model and --lm",
                      file=sys.stderr)
                return 2
            tokenizer = load_tokenizer(args.tokenizer or args.lm, row_col=args.arch == "idefics3")
            try:
                model, spec, origin = M.build_from_backbones(args.arch, args.vision_model, args.lm, tokenizer,
                                                             token_ids(tokenizer))
            except ValueError as e:
                print(f"train: {e}", file=sys.stderr)
                return 2
            arch = args.arch
            ip = default_image_processor(spec, args.image_longest_edge, splitting)
            say(f"backbones: {origin}")
    except (ImageConfigError, M.InitFromError) as e:
        print(f"train: {e}", file=sys.stderr)
        return 2
    prep = ImagePrep(spec, ip)
    if processor is None:
        processor = build_processor(spec, tokenizer, prep)
    tok = token_ids(tokenizer)
    mode = "lora" if args.lora else ("all" if args.unfreeze == "all" else "frozen")
    policy = M.apply_policy(model, arch, mode, tok.base_vocab, lora_r=args.lora_r)
    say(f"model {arch}: {policy.total/1e6:.2f}M parameters, {policy.trainable/1e6:.2f}M trainable ({mode}); "
        f"{spec.tokens_per_image} tokens/crop, {prep.tile}px crops, up to {prep.max_crops_per_image} crop(s)/image "
        f"(longest edge {prep.longest_edge}px); {len(shards)} shard(s)")
    max_crops = args.max_images * prep.max_crops_per_image

    warmup = args.warmup_steps if args.warmup_steps is not None else max(1, args.max_steps // 20)
    optimizer = torch.optim.AdamW(M.parameter_groups(model, args.weight_decay), lr=args.lr, betas=(0.9, 0.95),
                                  eps=1e-8)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda_factory(warmup, args.max_steps))
    model, optimizer = acc.prepare(model, optimizer)

    step, cursors, rotate = 0, {}, 0
    if resume_dir is not None:
        st = json.loads((resume_dir / "trainer_state.json").read_text())
        if st.get("world_size") != acc.num_processes or st.get("num_workers") != args.num_workers:
            print(f"train: {resume_dir} was written by {st.get('world_size')} process(es) x {st.get('num_workers')} "
                  f"loader worker(s); resume with the same (now {acc.num_processes} x {args.num_workers})",
                  file=sys.stderr)
            return 2
        acc.load_state(str(resume_dir / "state"))
        scheduler.load_state_dict(st["scheduler"])
        step = int(st["step"])
        cf = json.loads((resume_dir / f"cursor-rank{acc.process_index}.json").read_text())
        cursors, rotate = cf["streams"], int(cf["next_stream"])
        try:
            check_resume(plan, cursors)
        except MixError as e:
            print(f"train: --resume {resume_dir}: {e}", file=sys.stderr)
            return 2

    cfg = StreamConfig(shards=shards, spec=spec, tok=tok, encoder=make_encoder(tokenizer),
                       max_seq_len=args.max_seq_len, max_images=max_crops, batch_size=args.batch_size,
                       shuffle_buffer=args.shuffle_buffer, seed=args.seed, shuffle=not args.no_shuffle, prep=prep)
    ds = make_mix_dataset(plan, cfg, rank=acc.process_index, world_size=acc.num_processes, cursors=cursors,
                          rotate=rotate)
    eval_cfg = eval_config(cfg, list(plan.eval.shards), plan.eval.reader()) if plan.eval else None
    if eval_cfg is not None and next(eval_batches(eval_cfg, 1), None) is None:
        print(f"train: --eval-data {plan.eval.path}: no full batch of {args.batch_size} packed rows in it",
              file=sys.stderr)
        return 2
    # a mixture whose every source has epochs can run out: the ranks then agree to stop at the same step
    finite = all(s.epochs for s in plan.sources)
    W = args.num_workers
    loader = DataLoader(ds, batch_size=None, num_workers=W, prefetch_factor=4 if W else None,
                        persistent_workers=False)
    meta = {"arch": arch, "spec": spec.to_dict(), "base_vocab": tok.base_vocab, "origin": origin,
            "trainable": mode, "max_seq_len": args.max_seq_len, "max_images": args.max_images,
            "max_crops_per_row": max_crops}
    settings = {k: v for k, v in vars(args).items() if not k.startswith("_") and not callable(v)}

    def save(step_: int) -> Path:
        final = out / f"{CKPT_PREFIX}{step_:07d}"
        tmp = out / f".tmp-{CKPT_PREFIX}{step_:07d}"
        acc.wait_for_everyone()
        state = acc.get_state_dict(model)
        if acc.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            unwrapped = acc.unwrap_model(model)
            unwrapped.save_pretrained(tmp / "model", state_dict=M.exportable_state_dict(unwrapped, state),
                                      safe_serialization=True)
            processor.save_pretrained(tmp / "model")  # tokenizer, image processor, chat template
            (tmp / "model" / SPEC_FILE).write_text(json.dumps(meta, indent=1))
        acc.wait_for_everyone()
        acc.save_state(str(tmp / "state"))
        (tmp / f"cursor-rank{acc.process_index}.json").write_text(json.dumps(
            {"streams": cursors, "next_stream": (last_stream + 1) % max(1, W) if last_stream is not None else rotate,
             "num_workers": W}, indent=1))
        acc.wait_for_everyone()
        if acc.is_main_process:
            (tmp / "trainer_state.json").write_text(json.dumps(
                {"step": step_, "scheduler": scheduler.state_dict(), "world_size": acc.num_processes,
                 "num_workers": W, "data_counts": dict(counts), "settings": settings}, indent=1, default=str))
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            (out / "latest").write_text(final.name + "\n")
            for old in list_checkpoints(out)[:-args.keep_last] if args.keep_last > 0 else []:
                shutil.rmtree(old, ignore_errors=True)
        acc.wait_for_everyone()
        return final

    logf = open(out / "log.jsonl", "a") if acc.is_main_process else None
    counts: Counter = Counter()
    last_stream = None
    it = iter(loader)
    t_last, tokens_acc, last_saved = time.time(), 0, None
    exhausted, last_eval = False, None

    def run_eval(step_: int) -> None:
        rec = {"step": step_, **evaluate(model, eval_cfg, args.eval_batches, acc.device, MODEL_INPUTS, acc.autocast)}
        if acc.is_main_process:
            print(json.dumps(rec), flush=True)
            logf.write(json.dumps(rec) + "\n")
            logf.flush()

    try:
        while step < args.max_steps:
            t_step = time.time()
            ces, zs, n_img, n_tok, n_pos, hashes = [], [], 0, 0, 0, []
            grad_norm = float("nan")
            for _ in range(args.grad_accum):
                batch = next(it, None)
                if finite and _any_rank(acc, batch is None):
                    exhausted = True
                    break
                if batch is None:
                    raise DataError("the training data stream ended")
                cursors[str(batch["stream"])] = batch["cursor"]
                last_stream = batch["stream"]
                counts.update(batch["counts"])
                hashes.append(batch_hash(batch["input_ids"].numpy()))
                inputs = {k: batch[k].to(acc.device) for k in MODEL_INPUTS if k in batch}
                labels = batch["labels"].to(acc.device)
                with acc.accumulate(model):
                    with acc.autocast():
                        outp = model(**inputs, use_cache=False)
                    loss, ce, z = lm_loss(outp.logits, labels, args.z_loss)
                    acc.backward(loss)
                    if acc.sync_gradients:
                        gn = acc.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], args.grad_clip)
                        grad_norm = float(gn) if gn is not None else float("nan")
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                ces.append(float(ce.detach()))
                zs.append(float(z.detach()))
                n_img += int(batch["n_images"])
                n_tok += int(batch["attention_mask"].sum())
                n_pos += int(batch["attention_mask"].numel())
            if exhausted:  # a partial accumulation is dropped, not applied
                optimizer.zero_grad(set_to_none=True)
                say(json.dumps({"step": step, "data_exhausted": True,
                                "note": "every --mix source has done its epochs"}))
                break
            scheduler.step()
            step += 1
            tokens_acc += n_tok
            if step % args.log_every == 0 or step == args.max_steps:
                import torch as _t
                stats = _t.tensor([sum(ces) / len(ces), sum(zs) / len(zs), tokens_acc, n_img, n_tok, n_pos],
                                  dtype=_t.float64, device=acc.device)
                red = acc.reduce(stats, "sum")
                P = acc.num_processes
                dt = max(1e-9, time.time() - t_last)
                rec = {"step": step, "loss": round(float(red[0]) / P, 6), "z_loss": round(float(red[1]) / P, 6),
                       "lr": scheduler.get_last_lr()[0], "grad_norm": round(grad_norm, 6),
                       "tokens_per_s": round(float(red[2]) / dt, 1),
                       "images_per_batch": round(float(red[3]) / (P * args.grad_accum), 3),
                       "padding_frac": round(1.0 - float(red[4]) / max(1.0, float(red[5])), 4),
                       "step_s": round(time.time() - t_step, 4), "batch_hash": ",".join(hashes)}
                if plan.mixed:
                    seen = tokens_by_source(plan, cursors)
                    tot = acc.reduce(_t.tensor([seen[n] for n in plan.names], dtype=_t.float64,
                                               device=acc.device), "sum").tolist()
                    rec["source_tokens"] = {n: int(v) for n, v in zip(plan.names, tot)}
                    rec["source_share"] = {n: round(v / max(1.0, sum(tot)), 4) for n, v in zip(plan.names, tot)}
                if not math.isfinite(rec["loss"]):
                    rec["warning"] = "non-finite loss"
                if acc.is_main_process:
                    print(json.dumps(rec), flush=True)
                    logf.write(json.dumps(rec) + "\n")
                    logf.flush()
                t_last, tokens_acc = time.time(), 0
            if eval_cfg is not None and args.eval_every and step % args.eval_every == 0:
                run_eval(step)
                last_eval = step
            if args.save_every and step % args.save_every == 0:
                last_saved = save(step)
        if eval_cfg is not None and last_eval != step:
            run_eval(step)
        if last_saved is None or not last_saved.name.endswith(f"{step:07d}"):
            last_saved = save(step)
    finally:
        if logf:
            logf.close()
    done = {"done": True, "step": step, "checkpoint": str(last_saved), "data_counts": dict(counts)}
    if plan.mixed:
        done["source_tokens"] = tokens_by_source(plan, cursors)
    say(json.dumps(done))
    return 0


def _any_rank(acc, flag: bool) -> bool:
    """True when ``flag`` is true on any process."""
    if acc.num_processes == 1:
        return flag
    import torch

    return bool(acc.reduce(torch.tensor([1.0 if flag else 0.0], device=acc.device), "sum").item() > 0)
