"""The trainer against the transformers processors (offline, tiny tokenizer built here, default image-processor
configs): token-for-token layouts, library pixels and masks, crop-aware packing, checkpoints that AutoProcessor and
the model classes load and generate from, --init-from, and the image options' usage errors."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
sys.path.insert(0, str(Path(__file__).parent))

from train_fixtures import crawl_out  # noqa: E402

from obelics_builder.commands import train as train_cmd  # noqa: E402
from obelics_builder.train.images import ImagePrep, default_image_processor  # noqa: E402
from obelics_builder.train.pack import PackedRow, collate, pack_documents  # noqa: E402
from obelics_builder.train.processor import build_processor  # noqa: E402
from obelics_builder.train.render import ArchSpec, render_document, split_document  # noqa: E402
from obelics_builder.train.tokenizer import token_ids, train_tiny_tokenizer  # noqa: E402

torch.set_num_threads(2)

#: the released models' sizes: IDEFICS 224px, 1 token; Idefics2 64 latents, 980px tower; Idefics3 169 tokens, 364px
RELEASED = {"idefics": ArchSpec("idefics", 1, 224), "idefics2": ArchSpec("idefics2", 64, 980),
            "idefics3": ArchSpec("idefics3", 169, 364)}
CASES = {
    "mixed": ["Hello world.", (500, 300), "a red house", "by the river", (200, 900), "the end"],
    "adjacent": ["Two photos:", (640, 480), (300, 300), (90, 1200), "and some text after them."],
    "text_only": ["Just text here.", "A second paragraph."],
    "ends_with_image": ["<b>bold</b> start", (400, 400), " spaced text", (1000, 200)],
    "starts_with_image": [(64, 48), "caption (small image)."],
}


@pytest.fixture(scope="module")
def tokenizer():
    texts = ["a photo of a red house near the river.", "Two dogs play in the park!\n\nAnd more text (here)."] * 40
    return train_tiny_tokenizer(texts, 400)


def _image(w: int, h: int, seed: int):
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def _case(name: str):
    return [_image(*x, seed=k) if isinstance(x, tuple) else x for k, x in enumerate(CASES[name])]


def _processor_ids(arch: str, proc, parts, eos: str) -> list[int]:
    """What the transformers processor makes of the document: v1 takes the items (consecutive texts joined by a
    blank line, as our document text), 2/3 the text with one <image> per image."""
    joined: list = []
    for p in parts:
        if isinstance(p, str) and joined and isinstance(joined[-1], str):
            joined[-1] += "\n\n" + p
        else:
            joined.append(p)
    images = [p for p in parts if not isinstance(p, str)]
    if arch == "idefics":
        return proc(text=joined, add_eos_token=True, return_tensors="pt")["input_ids"][0].tolist()
    text = "".join(p if isinstance(p, str) else "<image>" for p in joined) + eos
    return proc(text=text, images=[images] if images else None)["input_ids"][0]


@pytest.mark.parametrize("arch,splitting", [("idefics", None), ("idefics2", False), ("idefics2", True),
                                            ("idefics3", None)])
@pytest.mark.parametrize("case", list(CASES))
def test_tokens_equal_the_transformers_processor(tokenizer, arch, splitting, case):
    spec = RELEASED[arch]
    prep = ImagePrep(spec, default_image_processor(spec, splitting=splitting))
    proc = build_processor(spec, tokenizer, prep)
    parts = _case(case)
    items = [("text", p) if isinstance(p, str) else ("image", prep.ref(p)) for p in parts]
    doc = render_document(items, lambda t: tokenizer.encode(t, add_special_tokens=False), token_ids(tokenizer), spec)
    assert doc.ids == _processor_ids(arch, proc, parts, tokenizer.eos_token)
    if arch == "idefics3":  # images of several sizes give different tile grids, each one atomic span
        grids = [(r.rows, r.cols) for r in doc.images]
        if case in ("mixed", "adjacent"):
            assert len(set(grids)) > 1 and all(r.crops == r.rows * r.cols + 1 for r in doc.images)
        tok = token_ids(tokenizer)
        for (s, e), ref in zip(doc.spans, doc.images):
            assert doc.ids[s:e].count(tok.image) == ref.crops * spec.tokens_per_image
            assert doc.ids[e - 1] == tok.fake and tok.global_img in doc.ids[s:e]


@pytest.mark.parametrize("arch,splitting", [("idefics", None), ("idefics2", False), ("idefics2", True),
                                            ("idefics3", None)])
def test_pixels_and_masks_are_the_image_processors(tokenizer, arch, splitting):
    spec = RELEASED[arch]
    prep = ImagePrep(spec, default_image_processor(spec, splitting=splitting))
    proc = build_processor(spec, tokenizer, prep)
    parts = _case("adjacent")
    images = [p for p in parts if not isinstance(p, str)]
    row = PackedRow()
    row.add(render_document([("text", p) if isinstance(p, str) else ("image", prep.ref(p)) for p in parts],
                            lambda t: tokenizer.encode(t, add_special_tokens=False), token_ids(tokenizer), spec))
    ours = collate([row], spec, token_ids(tokenizer), pixels=prep.pixels)
    if arch == "idefics":
        ref = proc(text=parts, add_eos_token=True, return_tensors="pt")
        np.testing.assert_array_equal(ours["pixel_values"], ref["pixel_values"].numpy())
        np.testing.assert_array_equal(ours["image_attention_mask"], ref["image_attention_mask"].numpy().astype(int))
        return
    text = "".join(p if isinstance(p, str) else "<image>" for p in parts)
    ref = proc(text=text, images=[images])
    pv, pam = np.asarray(ref["pixel_values"]), np.asarray(ref["pixel_attention_mask"]).astype(bool)
    assert ours["pixel_values"].shape == pv.shape == (1, row.n_crops, 3) + pv.shape[3:]
    np.testing.assert_array_equal(ours["pixel_values"], pv)
    np.testing.assert_array_equal(ours["pixel_attention_mask"], pam)
    assert row.n_crops == (5 * len(images) if splitting else
                           sum(r.crops for r in row.images) if arch == "idefics3" else len(images))


def test_idefics3_layout_matches_its_processing_over_many_sizes():
    spec = ArchSpec("idefics3", 4, 32)
    for le in (32, 64, 128, 192):
        prep = ImagePrep(spec, default_image_processor(spec, longest_edge=le))
        rng = np.random.default_rng(le)
        for _ in range(40):
            w, h = (int(x) for x in rng.integers(5, 700, 2))
            ref = prep.ref(_image(w, h, 0))
            pv, mask = prep.pixels(ref)
            assert pv.shape[0] == ref.crops and mask.shape == (ref.crops,) + pv.shape[2:]
            assert pv.shape[2] <= 32 and pv.shape[3] <= 32 and all(p.any() for p in pv)


def test_split_images_pack_as_units_and_caps_count_crops(tokenizer):
    spec = ArchSpec("idefics3", 4, 32)
    prep = ImagePrep(spec, default_image_processor(spec))  # 128px: up to 4 x 4 tiles + global = 17 crops
    tok = token_ids(tokenizer)
    enc = lambda t: tokenizer.encode(t, add_special_tokens=False)  # noqa: E731
    docs = []
    for k, (w, h) in enumerate([(300, 300), (200, 90), (40, 40), (600, 150), (128, 128)]):
        items = [("text", "some words here"), ("image", prep.ref(_image(w, h, k))), ("text", "after the image.")]
        docs.append(render_document(items, enc, tok, spec))
    crops = [d.n_crops for d in docs]
    assert len(set(crops)) > 2
    cap = 20
    windows = [w for d in docs for w in split_document(d, 512, cap, tok.bos, tok.eos)[0]]
    rows = pack_documents(windows, 512, cap)
    assert sum(r.n_docs for r in rows) == len(docs)
    for r in rows:
        assert r.n_crops <= cap and r.n_crops == sum(i.crops for i in r.images)
        for (s, e), ref in zip(r.spans, r.images):
            assert r.ids[s:e].count(tok.image) == ref.crops * spec.tokens_per_image  # the whole grid, one unit
    # an image with more crops than a row may hold is dropped with its reason, never cut
    assert split_document(docs[0], 512, docs[0].n_crops - 1, tok.bos, tok.eos) == \
        ([], {"image_more_crops_than_row": 1})
    # a long document splits between images, never inside a tile grid
    long_doc = render_document([x for d in range(3) for x in (("text", "word " * 30), ("image", docs[d].images[0]))]
                               + [("text", "tail")], enc, tok, spec)
    wins, _ = split_document(long_doc, 160, 40, tok.bos, tok.eos)
    assert wins and all(w.ids[s:e].count(tok.image) == ref.crops * 4 for w in wins
                        for (s, e), ref in zip(w.spans, w.images))


# ------------------------------------------------------------------------------------------ checkpoints & CLI

@pytest.fixture(scope="module")
def out_dir(tmp_path_factory, shared_data):
    return crawl_out(tmp_path_factory.mktemp("crawl"), shared_data, n_docs=30, per_shard=15)


def run_train(*argv: str) -> int:
    p = argparse.ArgumentParser()
    train_cmd.add_arguments(p)
    return train_cmd.run(p.parse_args(["--num-workers", "0", "--threads", "2", "--batch-size", "2",
                                       "--shuffle-buffer", "16", "--lr", "3e-3", *argv]))


def _photo(shared_data: Path):
    from PIL import Image

    p = next(q for q in sorted((shared_data / "images" / "cc0-photos").iterdir())
             if q.suffix.lower() in (".jpg", ".png"))
    return Image.open(p).convert("RGB")


@pytest.mark.parametrize("arch,extra", [("idefics", []), ("idefics2", ["--image-splitting", "on"]),
                                        ("idefics3", ["--image-longest-edge", "96"])])
def test_checkpoint_runs_the_seeds_generation_code(arch, extra, out_dir, tmp_path, shared_data):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    run = tmp_path / "run"
    assert run_train("--data", str(out_dir), "--arch", arch, "--tiny", "--output-dir", str(run), "--max-steps", "2",
                     "--max-seq-len", "128", *extra) == 0
    ckpt = run / "checkpoint-0000002" / "model"
    processor = AutoProcessor.from_pretrained(ckpt)
    assert type(processor).__name__ == {"idefics": "IdeficsProcessor", "idefics2": "Idefics2Processor",
                                        "idefics3": "Idefics3Processor"}[arch]
    assert (ckpt / "chat_template.jinja").is_file()
    # IdeficsProcessor drops a saved chat template when loading; its tokenizer keeps one
    assert (processor.tokenizer if arch == "idefics" else processor).chat_template
    image = _photo(shared_data)
    model = AutoModelForImageTextToText.from_pretrained(ckpt)  # the arch's own class
    assert type(model).__name__ == {"idefics": "IdeficsForVisionText2Text",
                                    "idefics2": "Idefics2ForConditionalGeneration",
                                    "idefics3": "Idefics3ForConditionalGeneration"}[arch]
    if arch == "idefics":  # the IDEFICS card's snippet (transformers 5 takes the prompts as text=)
        inputs = processor(text=[["User:", image, "Describe this image.<end_of_utterance>", "\nAssistant:"]],
                           return_tensors="pt")
    else:  # the Idefics2 / Idefics3 cards' snippet
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is in it?"}]}]
        prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
        assert prompt == "User:<image>What is in it?<end_of_utterance>\nAssistant:"
        inputs = processor(text=prompt, images=[image], return_tensors="pt")
    generated = model.generate(**inputs, max_new_tokens=4)
    assert generated.shape[1] > inputs["input_ids"].shape[1]
    texts = processor.batch_decode(generated, skip_special_tokens=True)
    assert len(texts) == 1 and "Assistant:" in texts[0]
    if arch == "idefics2":
        assert processor.image_processor.do_image_splitting


def test_init_from_a_saved_model_and_a_checkpoint(out_dir, tmp_path, capsys):
    import transformers as tf

    from obelics_builder.train.models import build_random

    tk = train_tiny_tokenizer(["a photo of a red house near the river", "two dogs play in the park"] * 50, 300)
    spec_model, spec = build_random("idefics3", "tiny", token_ids(tk))
    saved = tmp_path / "released"
    spec_model.save_pretrained(saved)
    build_processor(spec, tk, ImagePrep(spec, default_image_processor(spec, longest_edge=64))).save_pretrained(saved)
    run = tmp_path / "run"
    assert run_train("--data", str(out_dir), "--init-from", str(saved), "--output-dir", str(run), "--max-steps", "3",
                     "--max-seq-len", "96", "--lora", "--lora-r", "4") == 0
    out = capsys.readouterr().out
    assert "initialised from" in out and "(lora)" in out and "longest edge 64px" in out
    ck = run / "checkpoint-0000003" / "model"
    assert json.loads((ck / "tokenizer.json").read_text())["model"]["vocab"] == \
        json.loads((saved / "tokenizer.json").read_text())["model"]["vocab"]  # its processor reused
    assert tf.AutoProcessor.from_pretrained(ck).image_processor.size["longest_edge"] == 64
    first = tf.Idefics3ForConditionalGeneration.from_pretrained(saved).state_dict()
    after = tf.Idefics3ForConditionalGeneration.from_pretrained(ck).state_dict()
    key = "model.text_model.layers.0.self_attn.q_proj.weight"  # LoRA merged into it: changed, same shape
    assert after[key].shape == first[key].shape and not torch.equal(after[key], first[key])
    assert torch.equal(after["model.vision_model.embeddings.patch_embedding.weight"],
                       first["model.vision_model.embeddings.patch_embedding.weight"])  # frozen tower kept
    # a checkpoint-N folder (and the whole output dir) written by train, fully unfrozen
    again = tmp_path / "again"
    assert run_train("--data", str(out_dir), "--init-from", str(run / "checkpoint-0000003"), "--arch", "idefics3",
                     "--output-dir", str(again), "--max-steps", "2", "--max-seq-len", "96", "--unfreeze", "all") == 0
    log = [json.loads(x) for x in (again / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2] and all(np.isfinite(r["loss"]) for r in log)
    # wrong arch, missing folder, unknown architecture: one clear message each
    capsys.readouterr()
    assert run_train("--data", str(out_dir), "--init-from", str(run), "--arch", "idefics2",
                     "--output-dir", str(tmp_path / "x1"), "--max-steps", "1") == 2
    assert "is idefics3, not --arch idefics2" in capsys.readouterr().err
    assert run_train("--data", str(out_dir), "--init-from", str(tmp_path / "nope"),
                     "--output-dir", str(tmp_path / "x2"), "--max-steps", "1") == 2
    assert "--init-from" in capsys.readouterr().err
    llama = tmp_path / "llama"
    tf.LlamaForCausalLM(tf.LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                       num_attention_heads=2)).save_pretrained(llama)
    assert run_train("--data", str(out_dir), "--init-from", str(llama),
                     "--output-dir", str(tmp_path / "x3"), "--max-steps", "1") == 2
    assert "model type 'llama' is not one of" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["--arch", "idefics3", "--tiny", "--image-longest-edge", "100"], "must be a multiple of the vision tower's tile"),
    (["--arch", "idefics", "--tiny", "--image-splitting", "on"], "apply to idefics2/idefics3, not idefics"),
    (["--arch", "idefics2", "--tiny", "--image-longest-edge", "64"], "--image-longest-edge applies to idefics3"),
    (["--tiny"], "give --arch"),
    (["--arch", "idefics3", "--tiny", "--init-from", "x"], "give one model source"),
])
def test_image_and_model_options_are_validated(argv, message, out_dir, tmp_path, capsys):
    assert run_train("--data", str(out_dir), "--output-dir", str(tmp_path / "run"), "--max-steps", "1", *argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_rows_too_small_for_split_images_is_a_clear_error(out_dir, tmp_path, capsys):
    assert run_train("--data", str(out_dir), "--arch", "idefics3", "--tiny", "--output-dir", str(tmp_path / "run"),
                     "--max-steps", "1", "--max-seq-len", "32") == 2
    assert "no document gives a usable row" in capsys.readouterr().err
