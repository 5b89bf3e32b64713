"""Data mixtures for ``train --mix``: several sources, each with a weight (a proportion of *tokens*) and an optional
number of epochs, as IDEFICS was trained (OBELICS 73.85% of tokens, Wikipedia 6.15%, LAION 17.18%, PMD 2.82%).

A source is a crawl output / folder / glob of OBELICS shards (what ``--data`` takes) or an image-text pair set
(``pairs``: WebDataset ``jpg/png + txt`` or Parquet with image bytes + caption).  Its kind is detected from its first
shard unless ``kind=`` says.

Sampling.  Each consumer (rank x loader worker) runs one packed-row stream per source (``data.RowStream``, its own
seeded shard and block shuffles).  The next row always comes from the active source furthest behind its share:
the smallest ``tokens_seen / weight`` (ties: the earlier source), where a row's tokens are its sequence tokens (text
and image tokens, what the model consumes).  So the stream is deterministic, a function of the seed and the specs
only, and every source stays within one row's tokens of its share.  A source with ``epochs=N`` ends after N passes
over its shards; the others then share the rows by their own weights (renormalised).  When every source has ended,
the data is exhausted.

Cursor.  ``{"mix": [names], "sources": {name: data.Cursor}, "tokens": {name: n}, "done": [names]}`` after each
row: resuming from it replays the same decisions, hence the same rows, as the uninterrupted run.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

from ..errors import UsageError, did_you_mean
from .data import Cursor, DataError, RowStream, StreamConfig, consumer_slot, make_dataset, resolve_shards
from .data import sample_texts as _docs_sample_texts
from .pairs import PairReader, detect_kind

KEYS = ("epochs", "kind", "name", "image_column", "caption_column")
KINDS = ("auto", "docs", "pairs")


class MixError(UsageError):
    """A bad ``--mix`` / ``--eval-data`` specification (printed as one line, exit code 2)."""


@dataclass(frozen=True)
class MixSource:
    path: str
    weight: float
    shards: tuple[str, ...]
    kind: str                          # "docs" | "pairs"
    name: str
    epochs: int | None = None
    image_column: str | None = None
    caption_column: str | None = None

    def reader(self):
        """The ``StreamConfig.reader`` of this source (None: the OBELICS document reader)."""
        return PairReader(self.image_column, self.caption_column) if self.kind == "pairs" else None


@dataclass
class MixPlan:
    sources: list[MixSource]
    mixed: bool                        # False: the one-source ``--data`` stream (today's cursor format)
    eval: MixSource | None = None

    @property
    def weights(self) -> list[float]:
        tot = sum(s.weight for s in self.sources)
        return [s.weight / tot for s in self.sources]

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sources]

    def describe(self) -> str:
        parts = [f"{s.name} ({s.kind}, {len(s.shards)} shard(s), {w:.2%} of tokens"
                 + (f", {s.epochs} epoch(s)" if s.epochs else "") + ")" for s, w in zip(self.sources, self.weights)]
        return "data mixture: " + "; ".join(parts) if self.mixed else parts[0]


# ------------------------------------------------------------------------------------------------ specs

def _source(path: str, weight: float, opts: dict[str, Any], where: str) -> MixSource:
    """Validate one entry and resolve its shards (``where`` names it in messages)."""
    unknown = [k for k in opts if k not in KEYS]
    if unknown:
        raise MixError(f"{where}: unknown key {unknown[0]!r}{did_you_mean(unknown[0], KEYS)}; "
                       f"keys are {', '.join(KEYS)}")
    try:
        w = float(weight)
    except (TypeError, ValueError):
        raise MixError(f"{where}: the weight {weight!r} is not a number") from None
    if not w > 0 or w != w or w == float("inf"):
        raise MixError(f"{where}: the weight must be > 0 (got {weight})")
    epochs = opts.get("epochs")
    if epochs is not None:
        try:
            epochs = int(str(epochs))
        except ValueError:
            raise MixError(f"{where}: epochs={epochs!r} is not a whole number") from None
        if epochs < 1:
            raise MixError(f"{where}: epochs must be >= 1 (got {epochs})")
    kind = str(opts.get("kind", "auto"))
    if kind not in KINDS:
        raise MixError(f"{where}: kind={kind!r}{did_you_mean(kind, KINDS)}; kinds are {', '.join(KINDS)}")
    if not str(path).strip():
        raise MixError(f"{where}: empty path")
    if "://" not in path and not any(c in path for c in "*?[") and not Path(path).exists():
        raise MixError(f"{where}: {path}: no such file or folder")
    try:
        shards = resolve_shards(path)
        if kind == "auto":
            kind = detect_kind(shards[0])
        elif kind == "pairs":
            PairReader(opts.get("image_column"), opts.get("caption_column"))  # columns are checked on first read
    except DataError as e:
        raise MixError(f"{where}: {e}") from None
    name = str(opts.get("name") or Path(path.rstrip("/")).name or path)
    return MixSource(path=path, weight=w, shards=tuple(shards), kind=kind, name=name, epochs=epochs,
                     image_column=opts.get("image_column"), caption_column=opts.get("caption_column"))


def parse_entry(entry: str, index: int) -> MixSource:
    """``PATH:WEIGHT[:key=value...]`` (the path may itself hold ``:``, e.g. ``s3://...``)."""
    where = f"--mix entry {index} ({entry!r})"
    parts = entry.split(":")
    opts: dict[str, Any] = {}
    while parts and "=" in parts[-1]:
        k, _, v = parts.pop().partition("=")
        if k.strip() in opts:
            raise MixError(f"{where}: {k.strip()} given twice")
        opts[k.strip()] = v.strip()
    if len(parts) < 2 or not parts[-1].strip():
        raise MixError(f"{where}: expected PATH:WEIGHT[:epochs=N] (e.g. ./out:0.74 or pairs/:0.17:epochs=1)")
    weight = parts.pop().strip()
    return _source(":".join(parts), weight, opts, where)


def load_yaml(path: str) -> list[MixSource]:
    """A mixture file: a list of ``{path, weight, epochs?, kind?, name?, image_column?, caption_column?}`` (or
    ``{sources: [...]}``); relative paths are relative to the file's folder."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise MixError(f"--mix {path}: cannot read it ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise MixError(f"--mix {path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if isinstance(data, dict):
        extra = [k for k in data if k != "sources"]
        if extra:
            raise MixError(f"--mix {path}: unknown key {extra[0]!r}{did_you_mean(extra[0], ['sources'])}; "
                           f"the file is a list of sources or {{sources: [...]}}")
        data = data.get("sources")
    if not isinstance(data, list) or not data:
        raise MixError(f"--mix {path}: expected a non-empty list of sources ({{path, weight, epochs}})")
    out = []
    for i, e in enumerate(data, 1):
        where = f"--mix {path}: source {i}"
        if not isinstance(e, dict):
            raise MixError(f"{where}: expected a mapping with path and weight, got {e!r}")
        for k in ("path", "weight"):
            if k not in e:
                raise MixError(f"{where}: missing {k}")
        src = str(e["path"])
        if "://" not in src and not Path(src).is_absolute():
            src = str(p.parent / src)
        opts = {k: v for k, v in e.items() if k not in ("path", "weight")}
        out.append(_source(src, e["weight"], opts, where))
    return out


def _unique_names(sources: list[MixSource]) -> list[MixSource]:
    seen: Counter = Counter(s.name for s in sources)
    used: Counter = Counter()
    out = []
    for s in sources:
        if seen[s.name] > 1:
            used[s.name] += 1
            s = replace(s, name=f"{s.name}#{used[s.name]}")
        out.append(s)
    return out


def plan_from_args(args) -> MixPlan:
    """The sources of ``--data`` (one) or ``--mix`` (several), and of ``--eval-data``; MixError on a bad spec."""
    mix = getattr(args, "mix", None)
    if mix:
        if len(mix) == 1 and mix[0].lower().endswith((".yaml", ".yml")):
            sources = load_yaml(mix[0])
        else:
            sources = [parse_entry(e, i) for i, e in enumerate(mix, 1)]
        plan = MixPlan(_unique_names(sources), mixed=True)
    else:
        try:
            shards = resolve_shards(args.data)
        except DataError as e:
            raise MixError(str(e)) from None
        try:
            kind = detect_kind(shards[0])
        except DataError:  # an unreadable first shard: read as today (counted and skipped)
            kind = "docs"
        plan = MixPlan([MixSource(path=" ".join(args.data), weight=1.0, shards=tuple(shards), kind=kind,
                                  name="data")], mixed=False)
    if getattr(args, "eval_data", None):
        plan.eval = _source(args.eval_data, 1.0, {}, f"--eval-data {args.eval_data}")
    return plan


# ------------------------------------------------------------------------------------------------ streams

def source_config(base: StreamConfig, src: MixSource, index: int, mixed: bool = True) -> StreamConfig:
    """The stream settings of one source: its shards and reader, epochs, and a seed of its own (the one-source
    ``--data`` case keeps the run's seed, so its stream is today's)."""
    seed = base.seed if not mixed else int(hashlib.sha1(f"{base.seed}/{index}/{src.name}".encode()).hexdigest()[:8],
                                           16)
    return replace(base, shards=list(src.shards), reader=src.reader(), max_epochs=src.epochs, seed=seed)


@dataclass
class MixCursor:
    names: list[str]
    sources: dict[str, dict] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    done: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"mix": list(self.names), "sources": dict(self.sources), "tokens": dict(self.tokens),
                "done": list(self.done)}

    @classmethod
    def from_dict(cls, names: list[str], d: dict | None) -> "MixCursor":
        if not d:
            return cls(list(names))
        return cls(list(d["mix"]), dict(d["sources"]), {k: int(v) for k, v in d["tokens"].items()}, list(d["done"]))


class MixStream:
    """Packed rows of a mixture for one consumer; iterating yields ``(row, MixCursor after it)`` like RowStream.
    Ends when every source has ended (only possible when every source has ``epochs``)."""

    def __init__(self, cfgs: list[StreamConfig], names: list[str], weights: list[float], consumer: int = 0,
                 n_consumers: int = 1, cursor: MixCursor | None = None):
        self.names, self.weights = list(names), list(weights)
        self.cursor = cursor or MixCursor(list(names))
        self.streams = [RowStream(c, consumer, n_consumers, Cursor.from_dict(self.cursor.sources.get(n)))
                        for c, n in zip(cfgs, names)]

    @property
    def counts(self) -> Counter:
        total: Counter = Counter()
        for s in self.streams:
            total.update(s.counts)
        return total

    def __iter__(self) -> Iterator[tuple[Any, MixCursor]]:
        c = self.cursor
        tokens = [int(c.tokens.get(n, 0)) for n in self.names]
        done = {self.names.index(n) for n in c.done}
        positions = dict(c.sources)
        its = [iter(s) for s in self.streams]
        while len(done) < len(its):
            i = min((k for k in range(len(its)) if k not in done), key=lambda k: (tokens[k] / self.weights[k], k))
            try:
                row, cur = next(its[i])
            except StopIteration:
                done.add(i)
                continue
            tokens[i] += len(row.ids)
            positions[self.names[i]] = cur.to_dict()
            yield row, MixCursor(list(self.names), dict(positions), dict(zip(self.names, tokens)),
                                 [self.names[k] for k in sorted(done)])


def make_mix_dataset(plan: MixPlan, base: StreamConfig, rank: int = 0, world_size: int = 1,
                     cursors: dict | None = None, rotate: int = 0):
    """The torch ``IterableDataset`` of collated batches for ``plan`` (``data.make_dataset`` for one ``--data``
    source, with that source's reader)."""
    if not plan.mixed:
        return make_dataset(source_config(base, plan.sources[0], 0, mixed=False), rank, world_size, cursors, rotate)
    import numpy as np
    import torch
    from torch.utils.data import IterableDataset

    from .data import batches

    cfgs = [source_config(base, s, i) for i, s in enumerate(plan.sources)]
    names, weights = plan.names, plan.weights

    class MixedBatches(IterableDataset):
        def __iter__(self):
            logical, consumer, n = consumer_slot(rank, world_size, rotate)
            raw = (cursors or {}).get(str(logical)) or (cursors or {}).get(logical)
            stream = MixStream(cfgs, names, weights, consumer, n, MixCursor.from_dict(names, raw))
            for b in batches(stream, base):
                out = {k: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v) for k, v in b.items()}
                out["stream"] = logical
                yield out

    return MixedBatches()


def check_resume(plan: MixPlan, cursors: dict) -> None:
    """A checkpoint's cursors must come from the same kind of run: the same mixture sources, or one ``--data``."""
    vals = [v for v in (cursors or {}).values() if v]
    if not vals:
        return
    was_mix = "mix" in vals[0]
    if was_mix != plan.mixed:
        raise MixError("the checkpoint was written by a " + ("--mix" if was_mix else "--data") + " run; resume it "
                       "with " + ("the same --mix" if was_mix else "--data"))
    if was_mix and list(vals[0]["mix"]) != plan.names:
        raise MixError(f"the checkpoint's mixture has sources {vals[0]['mix']}, this --mix has {plan.names}; "
                       f"resume with the same --mix")


def tokens_by_source(plan: MixPlan, cursors: dict) -> dict[str, int]:
    """Tokens seen so far per source, summed over this rank's loader streams."""
    tot = dict.fromkeys(plan.names, 0)
    for v in (cursors or {}).values():
        for k, n in (v or {}).get("tokens", {}).items():
            if k in tot:
                tot[k] += int(n)
    return tot


def sample_texts(plan: MixPlan, max_docs: int = 2000, max_chars: int = 4_000_000) -> list[str]:
    """Texts for training the ``--tiny`` tokenizer: the first documents / captions of each source, an equal share
    each (one OBELICS ``--data`` source: ``data.sample_texts``, unchanged)."""
    if not plan.mixed and plan.sources[0].kind == "docs":
        return _docs_sample_texts(list(plan.sources[0].shards), max_docs, max_chars)
    per_docs, per_chars = max(1, max_docs // len(plan.sources)), max(1, max_chars // len(plan.sources))
    out: list[str] = []
    for s in plan.sources:
        out.extend(_docs_sample_texts(list(s.shards), per_docs, per_chars, read=s.reader()))
    return out


__all__ = ["MixError", "MixSource", "MixPlan", "MixStream", "MixCursor", "plan_from_args", "parse_entry",
           "load_yaml", "make_mix_dataset", "check_resume", "tokens_by_source", "sample_texts", "source_config"]
