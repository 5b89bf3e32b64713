"""Model builders for the IDEFICS family: random-init presets (``--tiny``, ``100m``) and composites whose vision tower
and language model weights are copied from hub ids or local folders (``--vision-model``, ``--lm``), with the image
tokens added and the embeddings resized; the trainable-parameter policy (frozen backbones, ``all``, LoRA); and the
export of a ``from_pretrained``-loadable state dict (LoRA merged)."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from .render import ARCHS, ArchSpec
from .tokenizer import TokenIds

log = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

#: random-init presets: text decoder, vision tower, perceiver and cross-attention sizes
PRESETS = {
    "tiny": dict(hidden=64, layers=4, heads=4, kv_heads=2, ffn=128, v_hidden=32, v_layers=2, v_heads=2, v_ffn=64,
                 image_size=32, patch=8, latents=8, p_depth=1, p_heads=2, p_head_dim=16, cross_interval=2,
                 vocab=1024),
    "100m": dict(hidden=768, layers=12, heads=12, kv_heads=4, ffn=2048, v_hidden=384, v_layers=6, v_heads=6,
                 v_ffn=1536, image_size=64, patch=8, latents=64, p_depth=2, p_heads=8, p_head_dim=48,
                 cross_interval=4, vocab=8000),
}


def model_class(arch: str):
    import transformers as tf

    return {"idefics": tf.IdeficsForVisionText2Text, "idefics2": tf.Idefics2ForConditionalGeneration,
            "idefics3": tf.Idefics3ForConditionalGeneration}[arch]


def arch_of_config(config) -> str:
    mt = getattr(config, "model_type", "")
    if mt not in ARCHS:
        raise ValueError(f"model type {mt!r} is not one of {ARCHS}")
    return mt


def spec_from_config(config) -> ArchSpec:
    """The data-side spec (tokens per image, image size, normalisation) of a composite config."""
    arch = arch_of_config(config)
    v = config.vision_config
    if arch == "idefics":
        return ArchSpec(arch, 1, int(v.image_size), CLIP_MEAN, CLIP_STD)
    if arch == "idefics2":
        return ArchSpec(arch, int(config.perceiver_config.resampler_n_latents), int(v.image_size))
    grid = int(v.image_size) // int(v.patch_size)
    return ArchSpec(arch, (grid * grid) // (config.scale_factor ** 2), int(v.image_size))


def _text_cfg(p: dict, tok: TokenIds) -> dict:
    return dict(model_type="llama", vocab_size=tok.vocab_size, hidden_size=p["hidden"], intermediate_size=p["ffn"],
                num_hidden_layers=p["layers"], num_attention_heads=p["heads"], num_key_value_heads=p["kv_heads"],
                max_position_embeddings=4096, pad_token_id=tok.pad, bos_token_id=tok.bos, eos_token_id=tok.eos,
                tie_word_embeddings=False, attention_dropout=0.0)


def _vision_cfg(p: dict) -> dict:
    return dict(hidden_size=p["v_hidden"], intermediate_size=p["v_ffn"], num_hidden_layers=p["v_layers"],
                num_attention_heads=p["v_heads"], image_size=p["image_size"], patch_size=p["patch"])


def composite_config(arch: str, tok: TokenIds, text: dict, vision: dict, p: dict):
    """Build the composite config from plain text/vision dicts (sizes) and the perceiver/cross-attention sizes."""
    import transformers as tf

    if arch == "idefics":
        if text.get("num_key_value_heads", text["num_attention_heads"]) != text["num_attention_heads"]:
            raise ValueError("--arch idefics needs an LM without grouped-query attention (Llama-style, kv heads == "
                             "heads); use idefics2/idefics3 for GQA models")
        return tf.IdeficsConfig(
            vocab_size=tok.vocab_size, additional_vocab_size=0, hidden_size=text["hidden_size"],
            intermediate_size=text["intermediate_size"], num_hidden_layers=text["num_hidden_layers"],
            num_attention_heads=text["num_attention_heads"], rms_norm_eps=text.get("rms_norm_eps", 1e-6),
            max_position_embeddings=text.get("max_position_embeddings", 4096),
            rope_parameters=text.get("rope_parameters"), hidden_act=text.get("hidden_act", "silu"),
            pad_token_id=tok.pad, bos_token_id=tok.bos, eos_token_id=tok.eos, tie_word_embeddings=False,
            cross_layer_interval=p["cross_interval"], use_resampler=True, dropout=0.0,
            freeze_text_layers=False, freeze_vision_layers=False, freeze_lm_head=False,
            vision_config=dict(embed_dim=vision["hidden_size"], image_size=vision["image_size"],
                               patch_size=vision["patch_size"], num_hidden_layers=vision["num_hidden_layers"],
                               num_attention_heads=vision["num_attention_heads"],
                               intermediate_size=vision["intermediate_size"],
                               hidden_act=vision.get("hidden_act", "quick_gelu"),
                               layer_norm_eps=vision.get("layer_norm_eps", 1e-5)),
            perceiver_config=dict(use_resampler=True, resampler_n_latents=p["latents"], resampler_depth=p["p_depth"],
                                  resampler_n_heads=p["p_heads"], resampler_head_dim=p["p_head_dim"]),
        )
    vis = {k: vision[k] for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                                  "image_size", "patch_size") if k in vision}
    for k in ("hidden_act", "layer_norm_eps"):
        if k in vision:
            vis[k] = vision[k]
    text = dict(text, vocab_size=tok.vocab_size, pad_token_id=tok.pad)
    if arch == "idefics2":
        return tf.Idefics2Config(
            text_config=text, vision_config=vis, image_token_id=tok.image, tie_word_embeddings=False,
            perceiver_config=dict(hidden_size=text["hidden_size"], resampler_n_latents=p["latents"],
                                  resampler_depth=p["p_depth"], resampler_n_heads=p["p_heads"],
                                  resampler_head_dim=p["p_head_dim"],
                                  num_key_value_heads=max(1, p["p_heads"] // 2),
                                  rms_norm_eps=text.get("rms_norm_eps", 1e-6)))
    if arch == "idefics3":
        grid = vis["image_size"] // vis["patch_size"]
        scale = 2 if grid % 2 == 0 else 1
        return tf.Idefics3Config(text_config=text, vision_config=vis, image_token_id=tok.image,
                                 tie_word_embeddings=False, scale_factor=scale)
    raise ValueError(f"unknown arch {arch!r}; expected one of {ARCHS}")


def build_random(arch: str, preset: str, tok: TokenIds):
    """Random-init model of a preset -> (model, spec)."""
    p = PRESETS[preset]
    text = _text_cfg(p, tok)
    if arch == "idefics":
        text["num_key_value_heads"] = text["num_attention_heads"]
    cfg = composite_config(arch, tok, text, _vision_cfg(p), p)
    model = model_class(arch)(cfg)
    return model, spec_from_config(cfg)


# ------------------------------------------------------------------------------------------------ backbones

def _vision_source(name: str):
    """(vision config as a dict, vision state dict, family) of a CLIP/SigLIP model or vision tower."""
    from transformers import AutoConfig, AutoModel

    cfg = AutoConfig.from_pretrained(name)
    vcfg = getattr(cfg, "vision_config", None) or cfg
    family = "siglip" if "siglip" in vcfg.model_type else "clip" if "clip" in vcfg.model_type else vcfg.model_type
    model = AutoModel.from_pretrained(name)
    tower = getattr(model, "vision_model", model)
    sd = tower.state_dict()
    return vcfg.to_dict(), sd, family


def build_from_backbones(arch: str, vision: str, lm: str, tokenizer, tok: TokenIds, preset: str = "100m"):
    """Composite of a pretrained vision tower and LM (hub ids or local folders) -> (model, spec, report).

    The LM's decoder and head are copied, the embedding and head grow to the tokenizer (old rows kept, new rows
    the mean of the old ones); the vision tower is copied; perceiver / cross-attention / connector start random."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    p = dict(PRESETS[preset])
    vdict, vsd, family = _vision_source(vision)
    if arch == "idefics" and family != "clip":
        raise ValueError(f"--arch idefics takes a CLIP vision tower, got {family!r}")
    if arch in ("idefics2", "idefics3") and family != "siglip":
        raise ValueError(f"--arch {arch} takes a SigLIP vision tower, got {family!r}")
    lm_cfg = AutoConfig.from_pretrained(lm)
    text = lm_cfg.to_dict()
    text.setdefault("num_key_value_heads", text.get("num_attention_heads"))
    cfg = composite_config(arch, tok, text, vdict, p)
    model = model_class(arch)(cfg)
    src = AutoModelForCausalLM.from_pretrained(lm)
    lm_sd = src.state_dict()
    body = {k[len("model."):]: v for k, v in lm_sd.items() if k.startswith("model.")}
    head = lm_sd.get("lm_head.weight", body.get("embed_tokens.weight"))

    def grow(w: torch.Tensor) -> torch.Tensor:
        if w.shape[0] >= tok.vocab_size:
            return w[:tok.vocab_size].clone()
        extra = w.mean(0, keepdim=True).expand(tok.vocab_size - w.shape[0], -1)
        return torch.cat([w, extra], 0)

    body["embed_tokens.weight"] = grow(body["embed_tokens.weight"])
    if arch == "idefics":
        text_target, vision_target = model.model, model.model.vision_model
    else:
        text_target, vision_target = model.model.text_model, model.model.vision_model
    r_text = text_target.load_state_dict(body, strict=False)
    vsd = {k: v for k, v in vsd.items() if not k.startswith("head.")}  # SigLIP's pooling head is unused
    r_vis = vision_target.load_state_dict(vsd, strict=False)
    with torch.no_grad():
        model.lm_head.weight.copy_(grow(head))
    new_prefixes = ("gated_cross_attn_layers.", "perceiver_resampler.", "vision_model.")
    missing_text = [k for k in r_text.missing_keys if not k.startswith(new_prefixes)]
    problems = {"text_missing": missing_text, "text_unexpected": list(r_text.unexpected_keys),
                "vision_missing": list(r_vis.missing_keys), "vision_unexpected": list(r_vis.unexpected_keys)}
    bad = {k: v for k, v in problems.items() if v}
    if bad:
        raise ValueError(f"backbone weights do not fit the {arch} composite: "
                         + "; ".join(f"{k}: {v[:5]}{'...' if len(v) > 5 else ''}" for k, v in bad.items()))
    return model, spec_from_config(cfg), {"vision": vision, "lm": lm, "vision_family": family,
                                          "copied_text_tensors": len(body), "copied_vision_tensors": len(vsd)}


# ------------------------------------------------------------------------------------------------ trainability

@dataclass
class TrainablePolicy:
    mode: str            # frozen | all | lora
    trainable: int
    total: int


def _is_vision(name: str) -> bool:
    return ".vision_model." in f".{name}"


def _is_text_backbone(arch: str, name: str) -> bool:
    if arch == "idefics":
        return name.startswith(("model.embed_tokens.", "model.layers.", "model.norm."))
    return name.startswith("model.text_model.")


def embedding_name(arch: str) -> str:
    return "model.embed_tokens.weight" if arch == "idefics" else "model.text_model.embed_tokens.weight"


def lora_targets(arch: str) -> str:
    prefix = r"model\.layers" if arch == "idefics" else r"model\.text_model\.layers"
    return prefix + r"\.\d+\.(self_attn\.(q_proj|k_proj|v_proj|o_proj)|mlp\.(gate_proj|up_proj|down_proj))"


def apply_policy(model, arch: str, mode: str, base_vocab: int, lora_r: int = 8, lora_alpha: int = 16):
    """Set ``requires_grad`` (and inject LoRA adapters): ``frozen`` (default, IDEFICS stage 1) trains everything but
    the vision tower and the LM body, plus the embedding rows of the added tokens (a gradient mask keeps the rows
    below ``base_vocab`` fixed); ``all`` trains everything; ``lora`` is ``frozen`` plus LoRA adapters on the LM's
    attention and MLP projections."""
    import torch

    if mode not in ("frozen", "all", "lora"):
        raise ValueError(f"unknown trainable policy {mode!r}")
    if mode == "lora":
        from peft import LoraConfig, inject_adapter_in_model

        inject_adapter_in_model(LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=0.0,
                                           target_modules=lora_targets(arch)), model)
    emb = embedding_name(arch)
    for name, prm in model.named_parameters():
        if mode == "all" or "lora_" in name:
            prm.requires_grad_(True)
        elif name == emb:
            prm.requires_grad_(True)
        else:
            prm.requires_grad_(not (_is_vision(name) or _is_text_backbone(arch, name)))
    if mode != "all":
        weight = dict(model.named_parameters())[emb]
        mask = torch.zeros(weight.shape[0], 1)
        mask[base_vocab:] = 1.0
        weight.register_hook(lambda g, m=mask: g * m.to(device=g.device, dtype=g.dtype))
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and n != emb)
    trainable += (dict(model.named_parameters())[emb].shape[0] - (0 if mode == "all" else base_vocab)) * \
        dict(model.named_parameters())[emb].shape[1]
    return TrainablePolicy(mode, trainable, total)


def exportable_state_dict(model, state: dict | None = None) -> dict:
    """The state dict to ``save_pretrained``: LoRA adapters merged into their base weights, adapter keys dropped."""
    import torch

    state = dict(state if state is not None else model.state_dict())
    lora_modules = {}
    for name, mod in model.named_modules():
        if hasattr(mod, "lora_A") and hasattr(mod, "base_layer") and hasattr(mod, "get_delta_weight"):
            lora_modules[name] = mod
    if not lora_modules:
        return state
    out = {}
    for k, v in state.items():
        if "lora_" in k:
            continue
        out[k.replace(".base_layer.", ".")] = v
    with torch.no_grad():
        for name, mod in lora_modules.items():
            key = f"{name}.weight"
            delta = sum(mod.get_delta_weight(a) for a in mod.active_adapters)
            out[key] = (out[key].to(delta.device) + delta.to(out[key].dtype)).contiguous()
    return out


def parameter_groups(model, weight_decay: float):
    """AdamW groups: decay on matrices of trainable params, none on biases, norms, embeddings, gates, latents."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim < 2 or "embed" in name or "norm" in name or "alpha" in name or "latents" in name:
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def check_name(arch: str) -> str:
    if arch not in ARCHS:
        raise ValueError(f"--arch must be one of {ARCHS}")
    return arch



# ------------------------------------------------------------------------------------------------ --init-from

class InitFromError(ValueError):
    """``--init-from`` names nothing loadable (reported as a usage error)."""


def resolve_init_source(src: str) -> str:
    """A ``save_pretrained`` folder, a ``checkpoint-N`` folder (or a training output dir) written by ``train``, or a
    hub id -> what ``from_pretrained`` takes."""
    from pathlib import Path

    p = Path(src)
    if p.exists():
        if (p / "config.json").is_file():
            return str(p)
        if (p / "model" / "config.json").is_file():
            return str(p / "model")
        ck = sorted(c for c in p.glob("checkpoint-*") if (c / "model" / "config.json").is_file())
        if ck:  # a training output dir: its newest checkpoint (zero-padded step numbers sort)
            return str(ck[-1] / "model")
        raise InitFromError(f"--init-from {src}: a folder without a model (no config.json, model/config.json or "
                            f"checkpoint-N/)")
    if src.startswith((".", "/", "~")) or src.count("/") > 1:
        raise InitFromError(f"--init-from {src}: no such folder")
    return src  # a hub id


def load_init(src: str):
    """Load a full Idefics/Idefics2/Idefics3 model and its processor -> (model, processor, arch, source dir/id).
    Raises ``InitFromError`` for a missing folder, an unreachable hub id or an unknown architecture."""
    from transformers import AutoConfig

    from .processor import load_processor

    where = resolve_init_source(src)
    try:
        config = AutoConfig.from_pretrained(where)
    except (OSError, ValueError) as e:
        raise InitFromError(f"--init-from {src}: cannot load a model config ({str(e).splitlines()[0]})") from None
    try:
        arch = arch_of_config(config)
    except ValueError:
        raise InitFromError(f"--init-from {src}: model type {getattr(config, 'model_type', '?')!r} is not one of "
                            f"{ARCHS}") from None
    processor = load_processor(where)
    if processor is None or getattr(processor, "tokenizer", None) is None:
        raise InitFromError(f"--init-from {src}: no processor (tokenizer + image processor) next to the model")
    model = model_class(arch).from_pretrained(where)
    return model, processor, arch, where


def spec_for_init(config, processor) -> ArchSpec:
    """The data-side spec of a loaded model: tokens per crop from its processor, tile size from its config."""
    spec = spec_from_config(config)
    n = int(getattr(processor, "image_seq_len", spec.tokens_per_image) or spec.tokens_per_image)
    ip = processor.image_processor
    mean = tuple(float(x) for x in getattr(ip, "image_mean", spec.image_mean))
    std = tuple(float(x) for x in getattr(ip, "image_std", spec.image_std))
    return ArchSpec(spec.arch, n, spec.image_size, mean, std)


def fit_embeddings(model, vocab_size: int) -> None:
    """Grow the model's token embeddings (and head) when the tokenizer gained tokens (e.g. ``<row_r_col_c>``)."""
    emb = model.get_input_embeddings()
    if emb.weight.shape[0] < vocab_size:
        model.resize_token_embeddings(vocab_size, mean_resizing=True)
