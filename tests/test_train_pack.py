"""Trainer data side as pure functions: renderers, splitting, packing, masks, collation, cursor, rank split."""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tokenizers")
pytest.importorskip("transformers")
sys.path.insert(0, str(Path(__file__).parent))

from train_fixtures import _photos, crawl_out, make_docs, write_parquet, write_wds  # noqa: E402

from obelics_builder.train.data import (Cursor, DataError, RowStream, StreamConfig, batches, consumer_shards,  # noqa: E402
                                        iter_shard, resolve_shards)
from obelics_builder.train.pack import (IGNORE, PackedRow, collate, image_attention_index,  # noqa: E402
                                        pack_documents)
from obelics_builder.train.render import ArchSpec, render_document, split_document  # noqa: E402
from obelics_builder.train.tokenizer import TokenIds  # noqa: E402

TOK = TokenIds(pad=0, bos=1, eos=2, image=100, fake=101, global_img=102, end_of_utterance=103, base_vocab=100,
               vocab_size=104)
SPECS = {"idefics": ArchSpec("idefics", 1, 8), "idefics2": ArchSpec("idefics2", 6, 8),
         "idefics3": ArchSpec("idefics3", 4, 8)}


def enc(text: str) -> list[int]:
    return [10 + (len(w) % 80) for w in text.split()]


def img(v: float = 1.0) -> np.ndarray:
    return np.full((3, 8, 8), v, np.float32)


def doc_items(n_words: list[int | None]) -> list:
    """None = an image, an int = a text of that many words."""
    return [("image", img(k + 1)) if n is None else ("text", " ".join(["w"] * n)) for k, n in enumerate(n_words)]


@pytest.mark.parametrize("arch", list(SPECS))
def test_render_token_count_is_images_times_tokens(arch):
    spec = SPECS[arch]
    d = render_document(doc_items([5, None, None, 3, None, 4]), enc, TOK, spec)
    assert d.ids[0] == TOK.bos and d.ids[-1] == TOK.eos
    assert d.n_images == 3
    assert d.ids.count(TOK.image) == 3 * spec.tokens_per_image
    for s, e in d.spans:
        assert d.ids[s:e].count(TOK.image) == spec.tokens_per_image
    if arch == "idefics":  # adjacent images share the boundary token
        s2, e2 = d.spans[1]
        assert d.ids[s2:e2] == [TOK.image, TOK.fake] and d.ids[s2 - 1] == TOK.fake
    if arch == "idefics3":
        assert all(d.ids[s:s + 2] == [TOK.fake, TOK.global_img] for s, _ in d.spans)


@pytest.mark.parametrize("arch", list(SPECS))
def test_split_never_cuts_an_image_and_caps_images(arch):
    spec = SPECS[arch]
    d = render_document(doc_items([30, None, 20, None, None, 25, None, 40, None, 10]), enc, TOK, spec)
    windows, dropped = split_document(d, max_len=32, max_images=2, bos=TOK.bos, eos=TOK.eos)
    assert windows
    for w in windows:
        assert len(w.ids) <= 32 and 1 <= w.n_images <= 2
        assert w.ids.count(TOK.image) == w.n_images * spec.tokens_per_image
        for s, e in w.spans:
            assert w.ids[s:e].count(TOK.image) == spec.tokens_per_image
    assert all(w.ids[0] == TOK.bos for w in windows)
    # all image tokens survive somewhere or were dropped in counted windows
    assert sum(w.n_images for w in windows) + sum(dropped.values()) >= 1


def test_usable_rules():
    spec = SPECS["idefics2"]
    no_img = render_document(doc_items([10]), enc, TOK, spec)
    end_img = render_document(doc_items([10, None]), enc, TOK, spec)
    assert split_document(no_img, 64, 5, TOK.bos, TOK.eos) == ([], {"no_image": 1})
    assert split_document(end_img, 64, 5, TOK.bos, TOK.eos) == ([], {"image_only_at_end": 1})
    long_img = render_document(doc_items([None, 3]), enc, TOK, ArchSpec("idefics2", 100, 8))
    assert split_document(long_img, 64, 5, TOK.bos, TOK.eos)[1] == {"image_longer_than_row": 1}


@pytest.mark.parametrize("arch", list(SPECS))
def test_pack_rows_respect_limits_and_drop_imageless(arch):
    spec = SPECS[arch]
    rng = np.random.default_rng(0)
    docs = []
    for _ in range(40):
        layout = [int(rng.integers(2, 12)) if rng.random() < 0.6 else None for _ in range(int(rng.integers(2, 6)))]
        d = render_document(doc_items(layout), enc, TOK, spec)
        docs.extend(split_document(d, 48, 3, TOK.bos, TOK.eos)[0])
    rows = pack_documents(docs, 48, 3)
    assert rows and sum(r.n_docs for r in rows) == len(docs)
    for r in rows:
        assert len(r.ids) <= 48 and 1 <= len(r.images) <= 3
        assert r.ids.count(TOK.image) == len(r.images) * spec.tokens_per_image
        for s, e in r.spans:
            assert e <= len(r.ids) and r.ids[s:e].count(TOK.image) == spec.tokens_per_image
            assert len(set(r.doc[s:e])) == 1  # an image run belongs to one document


def test_image_attention_resets_after_document_end():
    spec = SPECS["idefics"]
    a = render_document(doc_items([3, None, 4]), enc, TOK, spec)
    b = render_document(doc_items([5, None, 2, None, 3]), enc, TOK, spec)
    row = PackedRow()
    row.add(a)
    row.add(b)
    idx = image_attention_index(row, TOK.image)
    first_img_a = a.ids.index(TOK.image)
    assert idx[:first_img_a] == [-1] * first_img_a       # before the first image: nothing
    assert idx[len(a.ids) - 1] == 0                       # a's EOS still sees a's image
    start_b = len(a.ids)
    first_img_b = start_b + b.ids.index(TOK.image)
    assert idx[start_b:first_img_b] == [-1] * (first_img_b - start_b)  # reset at the document boundary
    assert idx[first_img_b] == 1 and idx[-1] == 2
    batch = collate([row], spec, TOK)
    m = batch["image_attention_mask"][0]
    assert m.shape == (len(row.ids), 3) and (m.sum(-1) <= 1).all()
    assert m[start_b:first_img_b].sum() == 0


@pytest.mark.parametrize("arch", ["idefics2", "idefics3"])
def test_collate_labels_and_pixels(arch):
    spec = SPECS[arch]
    rows = pack_documents([render_document(doc_items([4, None, 6]), enc, TOK, spec),
                           render_document(doc_items([None, 9, None, 2]), enc, TOK, spec)], 40, 5)
    b = collate(rows, spec, TOK)
    ids, labels = b["input_ids"], b["labels"]
    assert (labels[ids == TOK.image] == IGNORE).all()
    assert (labels[b["attention_mask"] == 0] == IGNORE).all()
    assert ((labels != IGNORE) == ((ids != TOK.image) & (b["attention_mask"] == 1))).all()
    pv = b["pixel_values"]
    assert pv.flags["C_CONTIGUOUS"] and pv.dtype == np.float32
    for i, r in enumerate(rows):
        n = len(r.images)
        assert all(pv[i, k].any() for k in range(n))            # real slots never all-zero
        assert not pv[i, n:].any()                               # padding slots are zero
        assert b["pixel_attention_mask"][i, :n].all() and not b["pixel_attention_mask"][i, n:].any()
        assert (ids[i] == TOK.image).sum() == n * spec.tokens_per_image


# ------------------------------------------------------------------------------------------ shards and streams

@pytest.fixture(scope="module")
def out_dir(tmp_path_factory, shared_data):
    return crawl_out(tmp_path_factory.mktemp("crawl"), shared_data, n_docs=60, per_shard=20)


def _cfg(shards, **kw):
    from tokenizers import Tokenizer  # noqa: F401 - only to require the extra

    def encoder(texts):
        return [enc(t) for t in texts]
    base = dict(shards=shards, spec=ArchSpec("idefics2", 4, 16), tok=TOK, encoder=encoder, max_seq_len=64,
                max_images=3, batch_size=2, shuffle_buffer=8, seed=3)
    base.update(kw)
    return StreamConfig(**base)


def test_resolve_shards_prefers_webdataset(out_dir, tmp_path):
    shards = resolve_shards(str(out_dir))
    assert [Path(s).name for s in shards] == ["train-00000.tar", "train-00001.tar", "train-00002.tar"]
    with pytest.raises(DataError):
        resolve_shards(str(tmp_path))


def test_tar_reader_drops_missing_images_and_offsets(out_dir):
    counts = Counter()
    shard = resolve_shards(str(out_dir))[0]
    docs = list(iter_shard(shard, 0, counts))
    assert [d.offset for d in docs] == list(range(20))
    assert counts["image_missing"] > 0  # the fixture omits every 7th image member
    assert all(k in ("text", "image") and v for d in docs for k, v in d.items)
    later = list(iter_shard(shard, 15, Counter()))
    assert [d.offset for d in later] == list(range(15, 20)) and later[0].items == docs[15].items


def test_parquet_reader_and_missing_image_bytes(tmp_path, shared_data):
    photos = _photos(shared_data)
    docs = make_docs(10)
    good = write_parquet(tmp_path / "a" / "train-00000-of-00001.parquet", docs, photos)
    got = list(iter_shard(str(good), 3, Counter()))
    assert [d.offset for d in got] == list(range(3, 10))
    assert sum(k == "image" for k, _ in got[0].items) == sum(i is not None for i in docs[3]["image_idx"])
    bad = write_parquet(tmp_path / "b" / "train-00000-of-00001.parquet", docs, photos, embed=False)
    with pytest.raises(DataError, match="image_bytes"):
        list(iter_shard(str(bad), 0, Counter()))
    assert resolve_shards(str(tmp_path / "a")) == [str(good)]


def test_rank_worker_split_is_disjoint_and_complete(out_dir):
    shards = resolve_shards(str(out_dir))
    cfg = _cfg(shards)
    for n in (2, 3, 5):  # 5 consumers > 3 shards: document striding
        seen = Counter()
        for k in range(n):
            for shard, stride in consumer_shards(cfg, 0, k, n):
                for d in iter_shard(shard, 0, Counter()):
                    if stride is None or (d.offset + stride) % n == k:
                        seen[(shard, d.offset)] += 1
        assert len(seen) == 60 and set(seen.values()) == {1}


def test_cursor_round_trip_gives_the_same_rows(out_dir):
    cfg = _cfg(resolve_shards(str(out_dir)))
    stream = iter(RowStream(cfg, 0, 1))
    first = [next(stream) for _ in range(30)]  # crosses blocks, shards and the epoch boundary
    for k in (0, 4, 11, 23):
        cur = Cursor.from_dict(json.loads(json.dumps(first[k][1].to_dict())))
        assert cur == first[k][1]
        resumed = iter(RowStream(cfg, 0, 1, cur))
        for j in range(k + 1, min(k + 6, 30)):
            row, c = next(resumed)
            assert row.ids == first[j][0].ids and c == first[j][1]
            assert all(np.array_equal(a, b) for a, b in zip(row.images, first[j][0].images))
    assert any(c.epoch >= 1 for _, c in first) or any(c.shard_pos > 0 for _, c in first)


def test_batches_carry_cursor_and_counts(out_dir):
    cfg = _cfg(resolve_shards(str(out_dir)))
    b = next(batches(RowStream(cfg), cfg))
    assert b["input_ids"].shape[0] == 2 and b["n_images"] >= 2
    assert set(b["cursor"]) == {"epoch", "shard_pos", "shard", "offset", "rows_done"}
    assert b["counts"].get("documents", 0) >= 8
