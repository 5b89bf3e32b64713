"""Data mixtures (``train --mix``) and validation (``--eval-data``): pair-set readers (WebDataset tar, Parquet),
token proportions, epochs, resume through a mixture, eval log lines, spec errors."""
from __future__ import annotations

import argparse
import io
import json
import math
import random
import shutil
import sys
import tarfile
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("tokenizers")
pytest.importorskip("transformers")
sys.path.insert(0, str(Path(__file__).parent))

from train_fixtures import WORDS, _photos, crawl_out  # noqa: E402

from obelics_builder.train import mix as MX  # noqa: E402
from obelics_builder.train.data import RowStream, StreamConfig, resolve_shards  # noqa: E402
from obelics_builder.train.pairs import PairReader, detect_kind  # noqa: E402


# ------------------------------------------------------------------------------------------------ pair sets

def _pil_images(n: int, seed: int = 0, fmt: str = "JPEG") -> list[bytes]:
    """Small distinct PIL images (solid colours with a square), encoded."""
    from PIL import Image, ImageDraw

    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        im = Image.new("RGB", (40, 30), tuple(rnd.randrange(256) for _ in range(3)))
        x, y = rnd.randrange(20), rnd.randrange(15)
        ImageDraw.Draw(im).rectangle([x, y, x + 12, y + 10], fill=tuple(rnd.randrange(256) for _ in range(3)))
        b = io.BytesIO()
        im.save(b, format=fmt)
        out.append(b.getvalue())
    return out


def _captions(n: int, seed: int = 0) -> list[str]:
    rnd = random.Random(seed)
    return [" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(3, 12))).capitalize() for _ in range(n)]


def write_pair_tars(out: Path, n: int, per_shard: int = 10, seed: int = 0, bad_every: int = 0) -> Path:
    """img2dataset-style WebDataset pairs: KEY.jpg / KEY.png, KEY.txt, KEY.json (metadata)."""
    out.mkdir(parents=True, exist_ok=True)
    jpgs, pngs, caps = _pil_images(n, seed), _pil_images(n, seed + 1, "PNG"), _captions(n, seed)
    for s in range(0, n, per_shard):
        with tarfile.open(out / f"{s // per_shard:05d}.tar", "w") as tf:
            for i in range(s, min(n, s + per_shard)):
                key = f"{i:09d}"
                members = {"json": json.dumps({"key": key, "caption": caps[i]}).encode()}
                if not (bad_every and i % bad_every == bad_every - 1):
                    members["txt"] = caps[i].encode()
                members["png" if i % 3 == 0 else "jpg"] = pngs[i] if i % 3 == 0 else jpgs[i]
                for suffix, data in members.items():
                    ti = tarfile.TarInfo(f"{key}.{suffix}")
                    ti.size = len(data)
                    tf.addfile(ti, io.BytesIO(data))
    return out


def write_pair_parquet(out: Path, n: int, seed: int = 0, hf_image: bool = False, per_file: int = 0) -> Path:
    """Parquet pairs: a binary ``jpg`` column + ``caption`` (img2dataset), or a Hugging Face ``Image`` struct
    ``image: {bytes, path}`` + ``text`` (as PMD is distributed)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    imgs, caps = _pil_images(n, seed + 7), _captions(n, seed + 7)
    per_file = per_file or n
    for s in range(0, n, per_file):
        sl = slice(s, min(n, s + per_file))
        if hf_image:
            t = pa.table({"image": [{"bytes": b, "path": None} for b in imgs[sl]], "text": caps[sl],
                          "source": ["test"] * len(caps[sl])})
        else:
            t = pa.table({"url": [f"https://example.org/{i}.jpg" for i in range(sl.start, sl.stop)],
                          "caption": caps[sl], "jpg": imgs[sl]})
        pq.write_table(t, out / f"part-{s // per_file:05d}.parquet", row_group_size=4)
    return out


@pytest.fixture(scope="module")
def sets(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("mix")
    return {"crawl": crawl_out(root / "crawl", shared_data, n_docs=40, per_shard=20),
            "heldout": crawl_out(root / "heldout", shared_data, n_docs=12, per_shard=12),
            "laion": write_pair_tars(root / "laion", 40, per_shard=10, bad_every=9),
            "pmd": write_pair_parquet(root / "pmd", 30, hf_image=True, per_file=15),
            "cc": write_pair_parquet(root / "cc", 24),
            "small": write_pair_tars(root / "small", 6, per_shard=6, seed=5)}


# ------------------------------------------------------------------------------------------------ readers

def test_pair_readers_and_kind_detection(sets):
    c = Counter()
    tar_docs = [d for s in resolve_shards(str(sets["laion"])) for d in PairReader()(s, 0, c)]
    assert len(tar_docs) == 40 and c["pair_without_caption"] == 4  # keys 8, 17, 26, 35 have no .txt
    good = [d for d in tar_docs if d.items]
    assert all([k for k, _ in d.items] == ["image", "text"] for d in good) and len(good) == 36
    from PIL import Image
    assert Image.open(io.BytesIO(good[0].items[0][1])).format == "PNG"  # key 0 is a .png
    assert good[1].items[1][1] == _captions(40)[1]
    # resuming inside a shard: offsets continue
    assert [d.offset for d in PairReader()(resolve_shards(str(sets["laion"]))[0], 7, Counter())] == [7, 8, 9]
    for name, n in (("pmd", 30), ("cc", 24)):
        docs = [d for s in resolve_shards(str(sets[name])) for d in PairReader()(s, 0, Counter())]
        assert len(docs) == n and all(d.items[0][0] == "image" and d.items[1][0] == "text" for d in docs)
    rg = list(PairReader()(resolve_shards(str(sets["cc"]))[0], 5, Counter()))
    assert [d.offset for d in rg][:2] == [5, 6] and len(rg) == 19
    assert detect_kind(resolve_shards(str(sets["laion"]))[0]) == "pairs"
    assert detect_kind(resolve_shards(str(sets["pmd"]))[0]) == "pairs"
    assert detect_kind(resolve_shards(str(sets["crawl"]))[0]) == "docs"


# ------------------------------------------------------------------------------------------------ streams

def _tokenizer_cfg(sets):
    """A real tiny tokenizer and the idefics2 stream settings of the trainer tests."""
    from obelics_builder.train import models as M
    from obelics_builder.train.tokenizer import make_encoder, token_ids, train_tiny_tokenizer

    tk = train_tiny_tokenizer(_captions(200) + [" ".join(WORDS)] * 20, 400)
    tok = token_ids(tk)
    _, spec = M.build_random("idefics2", "tiny", tok)
    return StreamConfig(shards=[], spec=spec, tok=tok, encoder=make_encoder(tk), max_seq_len=64, max_images=5,
                        batch_size=2, shuffle_buffer=16, seed=0)


@pytest.fixture(scope="module")
def base_cfg(sets):
    return _tokenizer_cfg(sets)


def _plan(entries: list[str]) -> MX.MixPlan:
    return MX.plan_from_args(argparse.Namespace(mix=entries, data=None, eval_data=None))


def _mix_stream(plan, base, cursor=None, consumer=0, n=1):
    cfgs = [MX.source_config(base, s, i) for i, s in enumerate(plan.sources)]
    return MX.MixStream(cfgs, plan.names, plan.weights, consumer, n, cursor)


def _take(stream, n):
    out = []
    for row, cur in stream:
        out.append((row, cur))
        if len(out) == n:
            break
    return out


def test_mixture_token_proportions_match_weights(sets, base_cfg):
    plan = _plan([f"{sets['crawl']}:0.6", f"{sets['laion']}:0.3", f"{sets['pmd']}:0.1"])
    assert [s.kind for s in plan.sources] == ["docs", "pairs", "pairs"]
    rows = _take(_mix_stream(plan, base_cfg), 400)
    tokens = rows[-1][1].tokens
    assert sum(tokens.values()) == sum(len(r.ids) for r, _ in rows)
    total = sum(tokens.values())
    for name, w in zip(plan.names, plan.weights):
        assert abs(tokens[name] / total - w) < 0.02, (name, tokens[name] / total, w)
    # deterministic: the same rows again
    again = _take(_mix_stream(plan, base_cfg), 400)
    assert [r.ids for r, _ in again] == [r.ids for r, _ in rows]
    # a pair row holds images and captions, image first in each pair
    pair_rows = [r for r, c in rows if r.n_docs > 1 and len(r.images) == r.n_docs]
    assert pair_rows


def test_epochs_stop_a_source_and_the_rest_renormalise(sets, base_cfg):
    plan = _plan([f"{sets['crawl']}:0.5", f"{sets['small']}:0.3:epochs=1", f"{sets['cc']}:0.2"])
    one_pass = sum(len(r.ids) for r, _ in RowStream(MX.source_config(base_cfg, plan.sources[1], 1)))
    assert one_pass > 0
    rows = _take(_mix_stream(plan, base_cfg), 300)
    last = rows[-1][1]
    assert last.tokens["small"] == one_pass and last.done == ["small"]
    # after "small" ended, crawl and cc keep 0.5 : 0.2 between themselves
    t_end = next(c for _, c in rows if c.tokens["small"] == one_pass)
    a = last.tokens["crawl"] - t_end.tokens["crawl"]
    b = last.tokens["cc"] - t_end.tokens["cc"]
    assert abs(a / (a + b) - 0.5 / 0.7) < 0.02
    # every source finite: the stream ends after the passes
    fin = _plan([f"{sets['small']}:1:epochs=2", f"{sets['cc']}:1:epochs=1"])
    rows = list(_mix_stream(fin, base_cfg))
    end = rows[-1][1]
    assert len(end.done) == 1  # the other source ended before the last row (which comes from the last one)
    cc_pass = sum(len(r.ids) for r, _ in RowStream(MX.source_config(base_cfg, fin.sources[1], 1)))
    small2 = sum(len(r.ids) for r, _ in RowStream(MX.source_config(base_cfg, fin.sources[0], 0)))
    assert end.tokens == {"small": small2, "cc": cc_pass} and small2 > one_pass


def test_resume_mid_mixture_gives_the_same_rows(sets, base_cfg):
    plan = _plan([f"{sets['crawl']}:0.5", f"{sets['small']}:0.3:epochs=1", f"{sets['laion']}:0.2"])
    for consumer, n in ((0, 1), (1, 2)):
        full = _take(_mix_stream(plan, base_cfg, consumer=consumer, n=n), 120)
        for k in (1, 17, 40, 77):  # before, across and after "small" ends
            cur = MX.MixCursor.from_dict(plan.names, json.loads(json.dumps(full[k - 1][1].to_dict())))
            resumed = _take(_mix_stream(plan, base_cfg, cur, consumer, n), 120 - k)
            assert [r.ids for r, _ in resumed] == [r.ids for r, _ in full[k:]], (consumer, k)
            assert resumed[-1][1].to_dict() == full[-1][1].to_dict()


# ------------------------------------------------------------------------------------------------ specs

def test_spec_parsing_and_yaml(sets, tmp_path):
    s = MX.parse_entry(f"{sets['laion']}/:0.17:epochs=1:name=laion", 1)
    assert (s.weight, s.epochs, s.name, s.kind, len(s.shards)) == (0.17, 1, "laion", "pairs", 4)
    y = tmp_path / "mix.yaml"
    shutil.copytree(sets["cc"], tmp_path / "cc")
    y.write_text(f"sources:\n  - path: {sets['crawl']}\n    weight: 73.85\n"
                 f"  - {{path: cc, weight: 17.18, epochs: 2}}\n")
    plan = _plan([str(y)])
    assert plan.names == ["crawl", "cc"] and plan.sources[1].epochs == 2
    assert plan.weights[0] == pytest.approx(73.85 / (73.85 + 17.18))
    same = _plan([f"{sets['cc']}:1", f"{sets['cc']}:1"])
    assert same.names == ["cc#1", "cc#2"]


@pytest.mark.parametrize("entry,msg", [
    ("{missing}:0.5", "no such file or folder"),
    ("{laion}:0", "weight must be > 0"),
    ("{laion}:-1", "weight must be > 0"),
    ("{laion}:abc", "is not a number"),
    ("{laion}", "expected PATH:WEIGHT"),
    ("{laion}:0.5:epoch=1", "unknown key 'epoch' (did you mean 'epochs'?)"),
    ("{laion}:0.5:epochs=0", "epochs must be >= 1"),
    ("{laion}:0.5:epochs=x", "is not a whole number"),
    ("{laion}:0.5:kind=pair", "did you mean 'pairs'"),
    ("{empty}:0.5", "no training shards"),
])
def test_bad_mix_specs_are_one_clear_error(sets, tmp_path, capsys, entry, msg):
    (tmp_path / "empty").mkdir()
    spec = entry.format(missing=tmp_path / "nope", empty=tmp_path / "empty", **{k: str(v) for k, v in sets.items()})
    run = tmp_path / "run"
    assert run_train(["--mix", f"{sets['crawl']}:1", spec], "idefics", run, "--max-steps", "1") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("train: --mix entry 2") and msg in err and len(err.splitlines()) == 1, err
    assert not run.exists()  # no work done


def test_bad_yaml_and_eval_options(sets, tmp_path, capsys):
    y = tmp_path / "m.yaml"
    y.write_text(f"- {{path: {sets['crawl']}, weight: 1, epochz: 2}}\n")
    assert run_train(["--mix", str(y)], "idefics", tmp_path / "r", "--max-steps", "1") == 2
    assert "source 1: unknown key 'epochz' (did you mean 'epochs'?)" in capsys.readouterr().err
    y.write_text(f"- {{path: {sets['crawl']}}}\n")
    assert run_train(["--mix", str(y)], "idefics", tmp_path / "r", "--max-steps", "1") == 2
    assert "source 1: missing weight" in capsys.readouterr().err
    assert run_train(["--data", str(sets["crawl"])], "idefics", tmp_path / "r", "--eval-every", "2") == 2
    assert "--eval-every needs --eval-data" in capsys.readouterr().err
    assert run_train(["--data", str(sets["crawl"])], "idefics", tmp_path / "r", "--eval-data",
                     str(tmp_path / "nope")) == 2
    assert "--eval-data" in capsys.readouterr().err and not (tmp_path / "r").exists()


# ------------------------------------------------------------------------------------------------ trainer runs

def run_train(source: list[str], arch: str, run_dir: Path, *extra: str) -> int:
    from obelics_builder.commands import train as train_cmd

    p = argparse.ArgumentParser()
    train_cmd.add_arguments(p)
    args = p.parse_args([*source, "--arch", arch, "--tiny", "--output-dir", str(run_dir),
                         "--num-workers", "0", "--threads", "2", "--batch-size", "2", "--max-seq-len", "64",
                         "--lr", "3e-3", "--warmup-steps", "2", "--shuffle-buffer", "16", *extra])
    return train_cmd.run(args)


def read_log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def test_mix_run_logs_tokens_per_source_and_eval(sets, tmp_path):
    pytest.importorskip("torch")
    run = tmp_path / "run"
    mix = ["--mix", f"{sets['crawl']}:0.6", f"{sets['laion']}:0.3", f"{sets['pmd']}:0.1"]
    assert run_train(mix, "idefics", run, "--max-steps", "30", "--save-every", "0", "--batch-size", "4",
                     "--eval-data", str(sets["heldout"]), "--eval-every", "10", "--eval-batches", "3") == 0
    log = read_log(run)
    steps = [r for r in log if "loss" in r]
    evals = [r for r in log if "eval_loss" in r]
    assert [r["step"] for r in steps] == list(range(1, 31))
    last = steps[-1]["source_tokens"]
    total = sum(last.values())
    for name, w in (("crawl", 0.6), ("laion", 0.3), ("pmd", 0.1)):
        assert abs(last[name] / total - w) < 0.02, (name, last[name] / total)
    assert [r["step"] for r in evals] == [10, 20, 30]
    for r in evals:
        assert r["eval_batches"] == 3 and r["eval_tokens"] > 0
        assert r["eval_ppl"] == pytest.approx(math.exp(r["eval_loss"]), rel=1e-4)
    assert evals[-1]["eval_tokens"] == evals[0]["eval_tokens"]  # the same held-out batches every time
    assert evals[-1]["eval_loss"] < evals[0]["eval_loss"] + 0.5


def test_resume_through_a_mixture(sets, tmp_path):
    pytest.importorskip("torch")
    mix = ["--mix", f"{sets['crawl']}:0.5", f"{sets['small']}:0.3:epochs=1", f"{sets['cc']}:0.2"]
    full = tmp_path / "full"
    assert run_train(mix, "idefics", full, "--max-steps", "6", "--save-every", "3", "--keep-last", "0") == 0
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(full / "checkpoint-0000003", resumed / "checkpoint-0000003")
    assert run_train(mix, "idefics", resumed, "--max-steps", "6", "--save-every", "3", "--resume", "auto") == 0
    a, b = read_log(full)[3:], read_log(resumed)
    assert [r["step"] for r in b] == [4, 5, 6]
    for x, y in zip(a, b):
        assert x["batch_hash"] == y["batch_hash"] and x["source_tokens"] == y["source_tokens"]
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-5)
    # the same checkpoint cannot be resumed as a --data run, nor with other sources
    assert run_train(["--data", str(sets["crawl"])], "idefics", resumed, "--max-steps", "7", "--resume",
                     str(full / "checkpoint-0000003")) == 2
    assert run_train(mix[:-1], "idefics", resumed, "--max-steps", "7", "--resume",
                     str(full / "checkpoint-0000003")) == 2


def test_data_exhausted_when_every_source_has_epochs(sets, tmp_path, capsys):
    pytest.importorskip("torch")
    run = tmp_path / "run"
    assert run_train(["--mix", f"{sets['small']}:1:epochs=1", f"{sets['cc']}:1:epochs=1"], "idefics", run,
                     "--max-steps", "100", "--save-every", "0") == 0
    out = capsys.readouterr().out
    assert '"data_exhausted": true' in out
    steps = [r for r in read_log(run) if "loss" in r]
    assert 0 < len(steps) < 100
    assert (run / f"checkpoint-{steps[-1]['step']:07d}").is_dir()


def test_data_with_a_pair_set_is_one_source(sets, tmp_path):
    pytest.importorskip("torch")
    run = tmp_path / "run"
    assert run_train(["--data", str(sets["laion"])], "idefics2", run, "--max-steps", "2", "--save-every", "0") == 0
    assert all("source_tokens" not in r for r in read_log(run))


def test_evaluate_is_deterministic_and_restores_train_mode(sets, base_cfg):
    torch = pytest.importorskip("torch")
    from obelics_builder.train import models as M
    from obelics_builder.train.evaluate import eval_config, evaluate
    from obelics_builder.train.loop import MODEL_INPUTS

    torch.manual_seed(0)
    model, _ = M.build_random("idefics2", "tiny", base_cfg.tok)
    model.train()
    src = MX.plan_from_args(argparse.Namespace(mix=None, data=[str(sets["crawl"])],
                                               eval_data=str(sets["laion"]))).eval
    assert src.kind == "pairs"  # a pair set can be the held-out set too
    cfg = eval_config(base_cfg, list(src.shards), src.reader())
    a = evaluate(model, cfg, 4, "cpu", MODEL_INPUTS)
    assert model.training
    b = evaluate(model, cfg, 4, "cpu", MODEL_INPUTS)
    assert (a["eval_loss"], a["eval_tokens"], a["eval_batches"]) == (b["eval_loss"], b["eval_tokens"], 4)
    assert a["eval_ppl"] == pytest.approx(math.exp(a["eval_loss"]), rel=1e-4) and a["eval_loss"] > 0
    whole = evaluate(model, cfg, 0, "cpu", MODEL_INPUTS)  # 0: one full pass
    assert whole["eval_batches"] > 4
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    assert evaluate(model, cfg, 4, "cpu", MODEL_INPUTS)["eval_loss"] != a["eval_loss"]


def test_a_source_with_nothing_usable_is_an_error_not_a_hang(tmp_path, base_cfg):
    from obelics_builder.train.data import DataError

    bad = tmp_path / "bad"
    write_pair_tars(bad, 8, per_shard=8, bad_every=1)  # no sample has a caption
    plan = _plan([f"{bad}:1"])
    assert plan.sources[0].kind == "pairs"  # an image member makes it a pair sample, caption or not
    with pytest.raises(DataError, match="no document gives a usable row"):
        _take(_mix_stream(plan, base_cfg), 1)
