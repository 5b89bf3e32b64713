"""Trainer end to end on tiny models (offline): loss goes down for each arch, exact resume, from_pretrained
checkpoints, generate, backbone weight copy, LoRA export."""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")
sys.path.insert(0, str(Path(__file__).parent))

from train_fixtures import crawl_out  # noqa: E402

from obelics_builder.commands import generate as gen_cmd  # noqa: E402
from obelics_builder.commands import train as train_cmd  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory, shared_data):
    return crawl_out(tmp_path_factory.mktemp("crawl"), shared_data, n_docs=60, per_shard=20)


def run_train(data: Path, arch: str, run_dir: Path, *extra: str) -> int:
    p = argparse.ArgumentParser()
    train_cmd.add_arguments(p)
    args = p.parse_args(["--data", str(data), "--arch", arch, "--tiny", "--output-dir", str(run_dir),
                         "--num-workers", "0", "--threads", "2", "--batch-size", "2", "--max-seq-len", "64",
                         "--lr", "3e-3", "--warmup-steps", "2", "--shuffle-buffer", "16", *extra])
    return train_cmd.run(args)


def read_log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("arch", ["idefics", "idefics2", "idefics3"])
def test_tiny_run_loss_goes_down_and_checkpoint_loads(arch, out_dir, tmp_path, capsys):
    run = tmp_path / "run"
    # idefics3 splits every image into 32px tiles: a 64px longest edge (2 x 2 tiles + the global image) fits 64-token rows
    extra = ["--image-longest-edge", "64"] if arch == "idefics3" else []
    assert run_train(out_dir, arch, run, "--max-steps", "20", "--save-every", "0", *extra) == 0
    log = read_log(run)
    assert [r["step"] for r in log] == list(range(1, 21))
    for r in log:
        assert {"step", "loss", "z_loss", "lr", "grad_norm", "tokens_per_s", "images_per_batch",
                "padding_frac"} <= set(r)
    first, last = sum(r["loss"] for r in log[:5]) / 5, sum(r["loss"] for r in log[-5:]) / 5
    assert last < first - 0.2, (first, last)
    ck = run / "checkpoint-0000020" / "model"
    assert (ck / "model.safetensors").is_file() and (run / "latest").read_text().strip() == "checkpoint-0000020"
    from obelics_builder.train.models import model_class
    m = model_class(arch).from_pretrained(ck)
    assert m.config.model_type == arch
    # few-shot captioning from the checkpoint
    capsys.readouterr()
    p = argparse.ArgumentParser()
    gen_cmd.add_arguments(p)
    assert gen_cmd.run(p.parse_args(["--checkpoint", str(run), "--shots", "2", "--data", str(out_dir),
                                     "--queries", "1", "--max-new-tokens", "4"])) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{\"query\"")]
    assert len(lines) == 1 and lines[0]["shots"] == 2 and isinstance(lines[0]["caption"], str)


def test_resume_gives_same_batches_and_losses(out_dir, tmp_path):
    full = tmp_path / "full"
    assert run_train(out_dir, "idefics", full, "--max-steps", "4", "--save-every", "2", "--keep-last", "0",
                     "--grad-accum", "2") == 0
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(full / "checkpoint-0000002", resumed / "checkpoint-0000002")
    assert run_train(out_dir, "idefics", resumed, "--max-steps", "4", "--save-every", "2", "--grad-accum", "2",
                     "--resume", "auto") == 0
    a, b = read_log(full)[2:], read_log(resumed)
    assert [r["step"] for r in b] == [3, 4]
    for x, y in zip(a, b):
        assert x["batch_hash"] == y["batch_hash"]
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-5)
        assert x["lr"] == pytest.approx(y["lr"])


def test_bad_data_is_a_clear_error(tmp_path, capsys):
    assert run_train(tmp_path, "idefics2", tmp_path / "run", "--max-steps", "1") == 2
    assert "no training shards" in capsys.readouterr().err


def _tiny_tokenizer():
    from obelics_builder.train.tokenizer import train_tiny_tokenizer
    return train_tiny_tokenizer(["a photo of a red house near the river", "two dogs play in the park"] * 50, 300)


@pytest.mark.parametrize("arch,family", [("idefics", "clip"), ("idefics3", "siglip"), ("idefics2", "siglip")])
def test_backbone_weights_are_copied(arch, family, tmp_path):
    import transformers as tf

    from obelics_builder.train.models import build_from_backbones
    from obelics_builder.train.tokenizer import load_tokenizer, token_ids

    tk = _tiny_tokenizer()
    base_tok = tmp_path / "lm"
    # an LM with the tokenizer *before* image tokens would have fewer rows: save a plain BPE tokenizer
    lm_cfg = tf.LlamaConfig(vocab_size=len(tk) - 4, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=4 if arch == "idefics" else 2,
                            max_position_embeddings=256)
    lm = tf.LlamaForCausalLM(lm_cfg)
    lm.save_pretrained(base_tok)
    tk.save_pretrained(base_tok)
    vdir = tmp_path / "vision"
    vkw = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32,
               patch_size=8)
    vis = tf.CLIPVisionModel(tf.CLIPVisionConfig(**vkw)) if family == "clip" else \
        tf.SiglipVisionModel(tf.SiglipVisionConfig(**vkw))
    vis.save_pretrained(vdir)
    tokenizer = load_tokenizer(str(base_tok))
    model, spec, report = build_from_backbones(arch, str(vdir), str(base_tok), tokenizer, token_ids(tokenizer),
                                               preset="tiny")
    text = model.model if arch == "idefics" else model.model.text_model
    src_emb = lm.model.embed_tokens.weight
    assert torch.equal(text.embed_tokens.weight[:src_emb.shape[0]], src_emb)
    assert text.embed_tokens.weight.shape[0] == len(tokenizer)
    assert torch.equal(text.layers[1].self_attn.q_proj.weight, lm.model.layers[1].self_attn.q_proj.weight)
    assert torch.equal(model.lm_head.weight[:src_emb.shape[0]], lm.lm_head.weight)
    vsd = getattr(vis, "vision_model", vis).state_dict()
    tgt = model.model.vision_model.state_dict()
    key = next(k for k in vsd if k.endswith("layers.1.mlp.fc1.weight"))
    assert torch.equal(tgt[key], vsd[key])
    assert report["vision_family"] == family and spec.image_size == 32
    if arch != "idefics":  # wrong family is refused with a clear message
        with pytest.raises(ValueError, match="idefics takes a CLIP"):
            build_from_backbones("idefics", str(vdir), str(base_tok), tokenizer, token_ids(tokenizer), preset="tiny")


def test_lora_export_merges_into_a_loadable_model(tmp_path):
    from obelics_builder.train.models import apply_policy, build_random, exportable_state_dict, model_class
    from obelics_builder.train.tokenizer import token_ids

    tok = token_ids(_tiny_tokenizer())
    model, _ = build_random("idefics3", "tiny", tok)
    pol = apply_policy(model, "idefics3", "lora", tok.base_vocab, lora_r=4)
    lora = [n for n, p in model.named_parameters() if "lora_" in n]
    assert lora and all(p.requires_grad for n, p in model.named_parameters() if "lora_" in n)
    assert pol.mode == "lora" and pol.trainable < pol.total
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    model.save_pretrained(tmp_path / "m", state_dict=exportable_state_dict(model))
    loaded = model_class("idefics3").from_pretrained(tmp_path / "m")
    ids = torch.tensor([[tok.bos, 5, 6, 7, 8]])
    model.eval()
    with torch.no_grad():
        a = model(input_ids=ids).logits
        b = loaded(input_ids=ids).logits
    assert torch.allclose(a, b, atol=1e-4)
