"""The dataset card (``OUT/dataset/README.md``, Hub format) and the funnel chart (``OUT/dataset/funnel.png``).

The card is generated from what the run recorded: ``OUT/stats.json`` (run info, funnel per stage, notes), the filter
config it names (thresholds), ``OUT/dataset/shards.json`` (counts, shards) and an opt-out manifest
(``OUT/optout-manifest-YYYY-MM-DD.parquet``) when one exists.  Nothing is invented: a missing input is stated.
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import yaml

log = logging.getLogger("obelics_builder")

FEATURES = [
    {"name": "images", "list": "string"},
    {"name": "metadata", "dtype": "string"},
    {"name": "general_metadata", "dtype": "string"},
    {"name": "texts", "list": "string"},
]
IMAGE_BYTES_FEATURE = {"name": "image_bytes", "list": "binary"}

OPTOUT_RE = re.compile(r"^optout-manifest-(\d{4}-\d{2}-\d{2})\.parquet$")

#: stage -> what it does (for the funnel table)
STAGE_HELP = {
    "read": "WARC records read (HTML responses)",
    "extract": "HTML -> interleaved documents",
    "text_scores": "text scores computed (no removal expected)",
    "page_consent": "pages whose archived headers or head withheld AI consent (see *Page-level consent*)",
    "text_filter": "paragraph and document text filters",
    "url_dedup": "duplicate document URLs",
    "image_rules": "image URL rules (banned substrings, too frequent URLs)",
    "image_fetch": "unique image URLs fetched and checked (unit: image URL)",
    "images": "image results applied to documents",
    "final": "final cleaning (in-document image dedup, spam paragraphs)",
}


def size_category(n: int) -> str:
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"),
              (10_000_000_000, "1B<n<10B")]
    for bound, name in bounds:
        if n < bound:
            return name
    return "n>1T" if n >= 10**12 else "10B<n<100B" if n < 10**11 else "100B<n<1T"


def optout_manifest_date(out: str | Path) -> str | None:
    dates = sorted(m.group(1) for p in Path(out).glob("optout-manifest-*.parquet") if (m := OPTOUT_RE.match(p.name)))
    return dates[-1] if dates else None


def _load_filters(stats: dict) -> tuple[dict | None, str]:
    path = (stats.get("run") or {}).get("filters")
    if not path:
        return None, "the run did not record its filter config"
    try:
        from ..recipe import load_filters

        return load_filters(path), ""
    except Exception as e:  # a moved or edited config must not break the card; say so instead
        return None, f"filter config {Path(str(path)).name} could not be read ({type(e).__name__})"


#: extract mode -> what it is (for the card; a mode not listed is shown by its name)
EXTRACTORS = {
    "default": "obelics-builder's extractor",
    "obelics": "the OBELICS reference extraction rules, as in the 2023 OBELICS build",
    "trafilatura": "trafilatura 2.3 with images kept, mapped into the interleaved schema by obelics-builder",
}


def _recipe_name(stats: dict) -> str:
    run = stats.get("run") or {}
    path = run.get("recipe")
    if not path:
        return "unknown (not recorded)"
    digest = f", sha256 `{run['recipe_sha256'][:16]}`" if run.get("recipe_sha256") else ""
    if run.get("recipe_name"):
        return f"{run['recipe_name']} (`{Path(str(path)).name}`{digest})"
    try:  # a stats.json written before the name was recorded: read it from the file
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        return f"{data.get('name', Path(path).stem)} (`{Path(path).name}`)"
    except Exception:
        return f"`{Path(str(path)).name}` (file no longer readable)"


def _extractor(stats: dict) -> str:
    mode = (stats.get("run") or {}).get("extract_mode")
    if not mode:
        return "not recorded"
    return f"`{mode}` ({EXTRACTORS[mode]})" if mode in EXTRACTORS else f"`{mode}`"


def languages(filters: dict | None) -> list[str]:
    for section in ("doc", "node"):
        lid = ((filters or {}).get(section) or {}).get("lang_id") or {}
        if lid.get("languages"):
            return [str(x) for x in lid["languages"]]
    return ["en"]


def _fmt(n) -> str:
    return f"{n:,}" if isinstance(n, int) else str(n)


def _human(nbytes: int) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if nbytes < 1000 or unit == "TB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    return f"{nbytes} B"


def _value(v) -> str:
    return "/".join(str(x) for x in v) if isinstance(v, (list, tuple)) else str(v)


def _threshold_text(value) -> str:
    if isinstance(value, dict):
        enabled = value.get("enabled", True)
        rest = ", ".join(f"{k}={_value(v)}" for k, v in value.items() if k != "enabled")
        return ("" if enabled else "**disabled** ") + rest
    return str(value)


def filters_section(filters: dict | None, problem: str) -> list[str]:
    if filters is None:
        return [f"Thresholds unavailable: {problem}.", ""]
    lines = [f"Filter config: `{filters.get('name', Path(filters.get('_path', '')).stem)}`. Paragraph (node) and "
             "document checks run in this order; a paragraph or document is removed at its first failing check.", ""]
    node, doc = filters.get("node") or {}, filters.get("doc") or {}
    checks = [k for k in node if isinstance(node[k], dict)] + [k for k in doc if k not in node and isinstance(doc[k], dict)]
    lines += ["| check | paragraph (node) | document |", "|---|---|---|"]
    for k in checks:
        lines.append(f"| {k} | {_threshold_text(node[k]) if k in node else '-'} | "
                     f"{_threshold_text(doc[k]) if k in doc else '-'} |")
    lines.append("")
    for section in ("image", "final"):
        values = filters.get(section) or {}
        if section == "image":  # NSFW: its own line, as it actually ran (see nsfw_status)
            values = {k: v for k, v in values.items() if k != "nsfw"}
        if values:
            lines.append(f"**{section}**: " + ", ".join(f"{k}={_value(v)}" for k, v in values.items()))
            lines.append("")
    for section, key in (("perplexity", "model"), ("lang_id", "model")):
        model = (filters.get(section) or {}).get(key)
        lines.append(f"**{section} model**: {Path(model).name if model else 'none configured (built-in default or disabled)'}")
        lines.append("")
    return lines


def nsfw_status(filters: dict | None, stats: dict | None) -> str:
    """How NSFW filtering ran, from what the run recorded (its notes and removals), not only from the config: a
    config that enables it says nothing when the detector was missing."""
    if stats is None:
        return "unknown (`stats.json` was not found)"
    notes = [str(n) for n in stats.get("notes") or []]
    why = next((n for n in notes if "nsfw filtering disabled" in n.lower()), None)
    cfg = ((filters or {}).get("image") or {}).get("nsfw")
    cfg = cfg if isinstance(cfg, dict) else {}
    if why is not None:
        return f"**DISABLED in this run**; the run noted: {why}"
    if filters is None:
        return "unknown (the filter config is unavailable, and the run noted no NSFW problem)"
    if not cfg.get("enabled", True):
        return "**disabled** by the filter config (image.nsfw.enabled: false)"
    stages = stats.get("stages") or {}
    removed = sum(int((st.get("removed") or {}).get("nsfw", 0)) for st in stages.values())
    usable = int((stages.get("image_fetch") or {}).get("documents_out", 0))
    if not usable:
        return (f"enabled (detector {cfg.get('detector', 'nudenet')}, threshold {cfg.get('threshold')}) but no "
                "usable image reached it: nothing was scored")
    return (f"applied: detector {cfg.get('detector', 'nudenet')}, a document with an image scoring over "
            f"{cfg.get('threshold')} is removed; {removed:,} document(s) removed (reason `nsfw`)")


def _reasons(d: dict) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(d.items(), key=lambda kv: (-kv[1], kv[0])))


def funnel_table(stages: dict) -> list[str]:
    lines = ["| stage | docs in | docs out | paragraphs in -> out | images in -> out | removed (documents) | "
             "removed (paragraphs) | removed (images) | errors |",
             "|---|---:|---:|---:|---:|---|---|---|---|"]
    for name, s in stages.items():
        lines.append(
            f"| {name} | {_fmt(s.get('documents_in', 0))} | {_fmt(s.get('documents_out', 0))} | "
            f"{_fmt(s.get('nodes_in', 0))} -> {_fmt(s.get('nodes_out', 0))} | "
            f"{_fmt(s.get('images_in', 0))} -> {_fmt(s.get('images_out', 0))} | "
            f"{_reasons(s.get('removed') or {})} | {_reasons(s.get('nodes_removed') or {})} | "
            f"{_reasons(s.get('images_removed') or {})} | {_reasons(s.get('errors') or {})} |")
    lines.append("")
    described = [f"- `{n}`: {STAGE_HELP[n]}" for n in stages if n in STAGE_HELP]
    return lines + described + [""]


#: page-level consent reasons (:mod:`obelics_builder.optout.page`) -> what the card calls them
PAGE_CONSENT_SIGNALS = (
    ("consent:page:x-robots-tag", "archived `X-Robots-Tag: noai` / `noml` (for everyone or for us)"),
    ("consent:page:meta-robots", "`<meta name=\"robots\">` or our agent's meta tag with `noai` / `noml`"),
    ("consent:page:tdm-reservation", "W3C TDMRep `tdm-reservation: 1` (header, meta tag or link)"),
    ("consent:page:noimageai", "`noimageai` (header or meta tag): images removed, text kept"),
)


def page_consent_section(stages: dict) -> list[str]:
    """How many documents (and images) each page-level consent signal removed, from the ``page_consent`` stage."""
    lines = ["### Page-level consent", ""]
    s = stages.get("page_consent")
    if s is None:
        return lines + ["Not checked: this output was built before obelics-builder read page-level consent "
                        "signals.", ""]
    lines += ["A page that withheld consent to AI use when it was crawled, in its archived response headers or in "
              "its own `<head>` (never a `<noscript>` or the body), was removed before any text filter; each "
              "removal is a row of the opt-out manifest. A document is counted under the first signal that "
              "applies.", "",
              "| signal | reason | documents removed | images removed |", "|---|---|---:|---:|"]
    docs, images = s.get("removed") or {}, s.get("images_removed") or {}
    for reason, what in PAGE_CONSENT_SIGNALS:
        lines.append(f"| {what} | `{reason}` | {_fmt(docs.get(reason, 0))} | "
                     f"{_fmt(images.get(reason, 0)) if reason.endswith('noimageai') else '-'} |")
    lines.append("")
    lines += [f"- {n}" for n in s.get("notes") or []]
    return lines + ([""] if s.get("notes") else [])


def funnel_series(stages: dict) -> tuple[list[str], list[int], list[int]]:
    """Labels and document / image-position counts through the document stages (``image_fetch``, whose unit is
    the unique image URL, is left out): the input of the first stage, then each stage's output."""
    doc_stages = [(n, s) for n, s in stages.items() if n != "image_fetch"]
    if not doc_stages:
        return [], [], []
    first_name, first = doc_stages[0]
    labels = [f"{first_name} (input)"] + [n for n, _ in doc_stages]
    docs = [int(first.get("documents_in", 0))] + [int(s.get("documents_out", 0)) for _, s in doc_stages]
    images = [int(first.get("images_in", 0))] + [int(s.get("images_out", 0)) for _, s in doc_stages]
    return labels, docs, images


def write_funnel_png(stages: dict, path: str | Path) -> Path:
    """The funnel chart of ``stages`` (:func:`funnel_series`) -> ``path`` (see :mod:`.funnel_chart`)."""
    from .funnel_chart import draw_funnel

    return draw_funnel(funnel_series(stages), path)


def card_metadata(summary: dict, filters: dict | None, license: str | None = None) -> dict:
    lic = license or "other"
    features = FEATURES + ([IMAGE_BYTES_FEATURE] if summary.get("embed_images") else [])
    download = sum(f["bytes"] for f in summary.get("parquet", []))
    meta: dict = {"license": lic}
    if lic == "other":
        meta["license_name"] = "web-content-various"
        meta["license_link"] = "https://commoncrawl.org/terms-of-use"
    meta.update({
        "task_categories": ["image-to-text", "text-generation"],
        "language": languages(filters),
        "size_categories": [size_category(int(summary.get("documents", 0)))],
        "pretty_name": "OBELICS-style interleaved image-text documents",
        "tags": ["multimodal", "interleaved", "common-crawl", "obelics"],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}],
        "dataset_info": {
            "features": features,
            "splits": [{"name": "train", "num_bytes": int(summary.get("arrow_bytes", 0)),
                        "num_examples": int(summary.get("documents", 0))}],
            "download_size": int(download),
            "dataset_size": int(summary.get("arrow_bytes", 0)),
        },
    })
    return meta


def render_card(out: str | Path, summary: dict, license: str | None = None, chart: bool = True) -> str:
    out = Path(out)
    stats_path = out / "stats.json"
    stats = json.loads(stats_path.read_text(encoding="utf-8")) if stats_path.exists() else None
    filters, problem = _load_filters(stats or {})
    meta = card_metadata(summary, filters, license)
    run = (stats or {}).get("run") or {}
    stages = (stats or {}).get("stages") or {}
    optout = optout_manifest_date(out)
    wds = summary.get("webdataset") or []
    lines = ["---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(), "---", "",
             "# OBELICS-style interleaved image-text documents", "",
             "Web documents from Common Crawl with their text paragraphs and images in page order, extracted, "
             "filtered and deduplicated by [obelics-builder](https://github.com/obelics-builder/obelics-builder) "
             "following the OBELICS recipe (*How it was built* names the recipe and the extractor). Images are "
             "given as URLs (the columns have the published OBELICS "
             "schema); " + ("the `image_bytes` column holds the image bytes (null at text positions and where "
                            "the image could not be kept)." if summary.get("embed_images") else
                            "the image bytes are not in the Parquet shards."), ""]
    lines += ["## Contents", "",
              "| | count |", "|---|---:|",
              f"| documents | {_fmt(summary.get('documents', 0))} |",
              f"| images (image positions) | {_fmt(summary.get('images', 0))} |",
              f"| images with bytes in the WebDataset shards | {_fmt(summary.get('images_with_bytes', 0)) if wds else 'no WebDataset shards'} |",
              f"| text positions | {_fmt(summary.get('text_positions', 0))} |",
              f"| tokens | {_fmt(summary.get('tokens', 0))} |", "",
              f"Tokens are counted with a {summary.get('tokenizer', 'regex word tokenizer')} over all texts; "
              "this is not a model tokenizer, and a subword tokenizer gives more tokens.", ""]
    lines += ["## Files", "",
              f"- `data/train-NNNNN-of-{len(summary.get('parquet', [])):05d}.parquet`: "
              f"{len(summary.get('parquet', []))} Parquet shard(s), {_human(sum(f['bytes'] for f in summary.get('parquet', [])))} "
              f"(target {_human(int(summary.get('shard_size_bytes', 0)))} per shard); columns `images` "
              "(list of URL or null), `metadata` (JSON list, one entry per position), `general_metadata` (JSON "
              "object), `texts` (list of text or null)" + (", `image_bytes`" if summary.get("embed_images") else "") + "."]
    if wds:
        lines.append(f"- `webdataset/train-NNNNN.tar`: {len(wds)} WebDataset shard(s), "
                     f"{_human(sum(f['bytes'] for f in wds))}; one sample per document, always the same two "
                     "members: `KEY.json`, an object with `texts`, `images`, `metadata`, `general_metadata`, each a "
                     "string (`metadata` and `general_metadata` exactly as in the Parquet shards; `texts` and "
                     "`images` are the Parquet lists as JSON arrays), and `KEY.images.tar`, an uncompressed tar of "
                     "the image files `<position>.<ext>` whose bytes are available (empty when there are none). "
                     "The fields are strings so that every sample has the same types whatever its number of images "
                     "(the `datasets` WebDataset loader infers them from the first samples).")
    lines += ["- `shards.json`: every shard with its rows, size and sha256."]
    lines += ["- `funnel.png`: the chart below.", ""] if chart else [""]
    lines += ["Load the Parquet shards:", "", "```python", "from datasets import load_dataset",
              "ds = load_dataset(\"parquet\", data_files=\"data/train-*.parquet\", split=\"train\")  "
              "# or load_dataset(<this repository's id>, split=\"train\")",
              "```", ""]
    if wds:
        lines += ["Load the WebDataset shards (`datasets` or the `webdataset` package read the same tars):", "",
                  "```python", "import io, json, tarfile", "from datasets import load_dataset",
                  "ds = load_dataset(\"webdataset\", data_files=\"webdataset/train-*.tar\", split=\"train\")",
                  "doc = ds[0][\"json\"]",
                  "texts, images = json.loads(doc[\"texts\"]), json.loads(doc[\"images\"])",
                  "with tarfile.open(fileobj=io.BytesIO(ds[0][\"images.tar\"])) as tar:  # position -> bytes",
                  "    image_bytes = {int(m.name.split(\".\")[0]): tar.extractfile(m).read() for m in tar}",
                  "```", ""]
    lines += ["## How it was built", ""]
    if stats is None:
        lines += ["`stats.json` was not found: the run information and the funnel are unavailable.", ""]
    else:
        warcs = run.get("warcs") or []
        lines += [f"- obelics-builder version: {run.get('obelics_builder_version', 'unknown')}",
                  f"- Common Crawl dump: {run.get('dump') or 'local WARC files'}",
                  f"- WARC files: {len(warcs)}",
                  f"- recipe: {_recipe_name(stats)}",
                  f"- extractor: {_extractor(stats)}",
                  f"- run started: {run.get('started', 'unknown')}",
                  "- opt-out manifest: " + (f"`optout-manifest-{optout}.parquet` (opt-outs as of {optout})"
                                             if optout else "none found in the output folder"), ""]
    lines += ["### Thresholds", ""] + filters_section(filters, problem)
    lines += [f"**NSFW filtering**: {nsfw_status(filters, stats)}", ""]
    lines += custom_stages_section(out, stats or {})
    if stats is not None:
        lines += ["### Removal funnel", ""]
        lines += (["![Documents and image positions through the stages](funnel.png)", ""] if chart else
                  ["(No chart: Pillow is not installed.)", ""])
        lines += funnel_table(stages)
        lines += page_consent_section(stages)
        notes = stats.get("notes") or []
        lines += ["### Notes", ""]
        lines += [f"- {n}" for n in notes] if notes else ["- none: every configured filter ran."]
        lines.append("")
    lines += ["## Licensing and use", "",
              "The documents are derived from web pages crawled by Common Crawl; the texts and the images they "
              "link to remain the property of their authors, and use is subject to the "
              "[Common Crawl terms of use](https://commoncrawl.org/terms-of-use). Remove content on request "
              "and honour opt-outs when you redistribute it.", ""]
    return "\n".join(lines)


def custom_stages_section(out: Path, stats: dict) -> list[str]:
    """The stages of the run's own (e.g. image-text alignment): what configured each, and what it said and
    removed (a disabled one says so here, as in stats.json)."""
    from ..plan.stages import build_plan

    try:
        recipe = json.loads((Path(out) / "run.json").read_text(encoding="utf-8")).get("recipe_config") or {}
        custom = build_plan(recipe).custom
    except Exception:  # noqa: BLE001 - no run.json or an old one: nothing to say
        return []
    if not custom:
        return []
    lines = ["**Stages of the run's own**:", ""]
    for step in custom:
        st = (stats.get("stages") or {}).get(step.name) or {}
        section = recipe.get(step.name) or {}
        conf = ", ".join(f"{k}: {v}" for k, v in section.items()) or "no settings"
        removed = {**st.get("removed", {}), **st.get("images_removed", {})}
        said = "; ".join(st.get("notes") or []) or "ran"
        gone = ", ".join(f"{r}: {n:,}" for r, n in sorted(removed.items())) or "nothing"
        lines.append(f"- `{step.name}` (`{step.custom.use}`; {conf}): {said}; removed {gone}")
    return lines + [""]


def write_card(out: str | Path, summary: dict | None = None, license: str | None = None) -> Path:
    """Write ``OUT/dataset/README.md`` and ``OUT/dataset/funnel.png``; ``summary`` defaults to
    ``OUT/dataset/shards.json``."""
    out = Path(out)
    root = out / "dataset"
    if summary is None:
        summary = json.loads((root / "shards.json").read_text(encoding="utf-8"))
    stats_path = out / "stats.json"
    stages = json.loads(stats_path.read_text(encoding="utf-8")).get("stages", {}) if stats_path.exists() else {}
    try:
        write_funnel_png(stages, root / "funnel.png")
        chart = True
    except ImportError:
        log.warning("Pillow is not installed: the dataset card has no funnel chart")
        (root / "funnel.png").unlink(missing_ok=True)
        chart = False
    text = render_card(out, summary, license, chart=chart)
    path = root / "README.md"
    tmp = path.with_name(".README.md.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
