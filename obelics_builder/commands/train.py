"""``obelics-build train``: train an IDEFICS-family vision-language model on the shards of a crawl output."""
from __future__ import annotations

import argparse

DESCRIPTION = """\
Train an IDEFICS-family model (idefics: Flamingo-style cross-attention; idefics2/idefics3: image tokens inside the
sequence) on WebDataset or Parquet (with image bytes) shards.  Documents are packed greedily into rows of
--max-seq-len tokens with at most --max-images images; the vision tower and the LM are frozen by default.

Examples:
  obelics-build train --data ./out --arch idefics3 --tiny --max-steps 20 --output-dir ./run   # offline demo
  obelics-build train --data ./out --arch idefics2 --vision-model google/siglip-base-patch16-224 \\
      --lm HuggingFaceTB/SmolLM2-135M --max-steps 10000 --output-dir ./run
  obelics-build train --data ./out --init-from HuggingFaceM4/Idefics3-8B-Llama3 --lora --output-dir ./run
  accelerate launch --multi_gpu --num_processes 8 -m obelics_builder.cli train --data 's3://bucket/out/dataset/webdataset/*.tar' \\
      --arch idefics3 --vision-model ... --lm ... --output-dir ./run --resume auto

Token layouts and pixels are those of the arch's transformers processor (Idefics3 images split into tiles).

A mixture of sources (crawl outputs and image-text pair sets), weighted by their share of the tokens, as IDEFICS
was trained:
  obelics-build train --mix ./out:0.74 ./wiki:0.06 ./laion:0.17:epochs=1 ./pmd:0.03 --arch idefics --tiny ...
  obelics-build train --mix mixture.yaml --eval-data ./heldout --eval-every 200 ...

Logs go to stdout and DIR/log.jsonl; checkpoints to DIR/checkpoint-NNNNNNN/model (the model and its processor:
AutoProcessor / from_pretrained-loadable).
Rerun with --resume auto to continue from the newest checkpoint (same data order).
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", nargs="+",
                     help="crawl output folder (uses OUT/dataset/webdataset/*.tar, else OUT/dataset/data/*.parquet), "
                          "or shard paths / globs / fsspec URLs (one source; an image-text pair set works too)")
    src.add_argument("--mix", nargs="+", metavar="PATH:WEIGHT[:epochs=N]",
                     help="several sources instead of --data: PATH:WEIGHT[:key=value...] each, or one YAML file (a "
                          "list of {path, weight, epochs}).  A PATH is what --data takes or an image-text pair set "
                          "(WebDataset jpg/png + txt, or Parquet with image bytes + caption columns); a pair is "
                          "rendered as its image then its caption.  Weights are proportions of TOKENS (normalised); "
                          "epochs=N stops a source after N passes (the other weights renormalise); other keys: "
                          "kind=docs|pairs, name=, image_column=, caption_column=")
    p.add_argument("--arch", choices=["idefics", "idefics2", "idefics3"],
                   help="model architecture (required unless --init-from gives it)")
    p.add_argument("--output-dir", required=True, help="checkpoints and log.jsonl go here")
    m = p.add_argument_group("model")
    m.add_argument("--tiny", action="store_true",
                   help="random-init tiny model + byte-level BPE trained on the shards' text (offline)")
    m.add_argument("--random-init", choices=["tiny", "100m"], default=None,
                   help="random-init preset (--tiny is --random-init tiny)")
    m.add_argument("--vision-model", help="vision tower: hub id or local folder (CLIP for idefics, SigLIP for 2/3)")
    m.add_argument("--lm", help="language model: hub id or local folder (Llama-style for idefics)")
    m.add_argument("--tokenizer", help="tokenizer (default: the --lm's)")
    m.add_argument("--init-from", metavar="HUB_ID_OR_DIR",
                   help="continue from a full Idefics/Idefics2/Idefics3 model: a hub id, a save_pretrained folder or a "
                        "checkpoint-N folder written by train (its processor is reused)")
    m.add_argument("--unfreeze", choices=["none", "all"], default="none",
                   help="'all' trains every parameter (default: backbones frozen, IDEFICS stage-1 recipe)")
    m.add_argument("--lora", action="store_true", help="frozen backbones + LoRA adapters on the LM (peft)")
    m.add_argument("--lora-r", type=int, default=8)
    d = p.add_argument_group("data")
    d.add_argument("--max-seq-len", type=int, default=256)
    d.add_argument("--max-images", type=int, default=5,
                   help="images per packed row; with image splitting the cap counts crops: this many times the crops "
                        "of the largest image (as m4)")
    d.add_argument("--batch-size", type=int, default=8, help="rows per device per micro-batch")
    d.add_argument("--shuffle-buffer", type=int, default=256, help="documents per shuffled block")
    d.add_argument("--no-shuffle", action="store_true")
    d.add_argument("--num-workers", type=int, default=2, help="data loader worker processes per device")
    d.add_argument("--image-longest-edge", type=int, default=None, metavar="PX",
                   help="idefics3: resize images to this longest edge before cutting them into tiles of the vision "
                        "tower's size (a multiple of it; default 4 tiles, 4*364 for the released models)")
    d.add_argument("--image-splitting", choices=["on", "off"], default=None,
                   help="idefics2: 4 crops + the image per image (default off, as its processor); idefics3: tiles + "
                        "the global image (default on)")
    e = p.add_argument_group("validation")
    e.add_argument("--eval-data", metavar="PATH",
                   help="held-out shards (a crawl output, shard folder or pair set): validation loss and perplexity "
                        "in the log every --eval-every steps and at the end")
    e.add_argument("--eval-every", type=int, default=0, help="steps between evaluations (0: at the end only)")
    e.add_argument("--eval-batches", type=int, default=50,
                   help="full batches of --eval-data per evaluation, always the same ones (0: all of one pass)")
    o = p.add_argument_group("optimisation")
    o.add_argument("--max-steps", type=int, default=1000)
    o.add_argument("--lr", type=float, default=1e-4)
    o.add_argument("--warmup-steps", type=int, default=None, help="default: 5%% of --max-steps")
    o.add_argument("--weight-decay", type=float, default=0.1)
    o.add_argument("--grad-accum", type=int, default=1)
    o.add_argument("--grad-clip", type=float, default=1.0)
    o.add_argument("--z-loss", type=float, default=1e-3)
    o.add_argument("--no-bf16", action="store_true", help="no bf16 autocast on GPU (it is never used on CPU)")
    o.add_argument("--seed", type=int, default=0)
    o.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    c = p.add_argument_group("checkpoints and logs")
    c.add_argument("--save-every", type=int, default=500)
    c.add_argument("--keep-last", type=int, default=3, help="checkpoints to keep (0: all)")
    c.add_argument("--resume", default=None, help="'auto' (newest checkpoint in --output-dir) or a checkpoint dir")
    c.add_argument("--log-every", type=int, default=1)


def run(args: argparse.Namespace) -> int:
    import sys

    if args.batch_size < 1 or args.max_seq_len < 8 or args.max_images < 1 or args.grad_accum < 1:
        print("train: --batch-size, --max-images and --grad-accum must be >= 1, --max-seq-len >= 8", file=sys.stderr)
        return 2
    if args.lora and args.unfreeze == "all":
        print("train: --lora and --unfreeze all are exclusive", file=sys.stderr)
        return 2
    problem = check_model_options(args)
    if problem:
        print(f"train: {problem}", file=sys.stderr)
        return 2
    try:
        from ..train.loop import train
    except ImportError as e:
        print(f"train: missing dependency ({e}); install the extra: pip install 'obelics-builder[train]'",
              file=sys.stderr)
        return 2
    from ..train.data import DataError

    if args.eval_every < 0 or args.eval_batches < 0:
        print("train: --eval-every and --eval-batches must be >= 0", file=sys.stderr)
        return 2
    if args.eval_every and not args.eval_data:
        print("train: --eval-every needs --eval-data (the held-out shards)", file=sys.stderr)
        return 2
    from ..errors import UsageError
    from ..train.mix import plan_from_args

    try:  # every source resolved and checked before any work
        args._mix_plan = plan_from_args(args)
    except UsageError as e:
        print(f"train: {e}", file=sys.stderr)
        return 2
    try:
        return train(args)
    except DataError as e:
        print(f"train: {e}", file=sys.stderr)
        return 2


def check_model_options(args: argparse.Namespace) -> str | None:
    """The one usage message for model/image options that do not go together, None when they do."""
    sources = [name for name, on in (("--init-from", args.init_from), ("--tiny/--random-init", args.tiny or
               args.random_init), ("--vision-model/--lm", args.vision_model or args.lm)) if on]
    if len(sources) > 1:
        return f"give one model source, not {' and '.join(sources)}"
    if not args.arch and not args.init_from:
        return "give --arch (idefics, idefics2 or idefics3), or --init-from a model that has one"
    if args.arch == "idefics" and (args.image_longest_edge is not None or args.image_splitting is not None):
        return "--image-longest-edge and --image-splitting apply to idefics2/idefics3, not idefics"
    if args.arch == "idefics2" and args.image_longest_edge is not None:
        return "--image-longest-edge applies to idefics3 (idefics2 images are sized by the vision tower)"
    if args.image_longest_edge is not None and args.image_longest_edge < 1:
        return "--image-longest-edge must be a positive number of pixels"
    return None
