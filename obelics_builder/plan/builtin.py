"""The built-in steps, declared (see :mod:`.model` for what each field means); :mod:`.execute` runs them.

The recipe's ``stages:`` list names the document stages (:data:`STAGES`, stats.json's names); a step runs one or
more of them in one task per unit, or is a run-wide reduction serving the step after it.
"""
from __future__ import annotations

from .model import RunInputs, Step

#: the built-in stages, in their order (the recipe's default ``stages:`` list)
STAGES = ("read", "extract", "text_scores", "page_consent", "text_filter", "url_dedup", "image_fetch", "image_rules",
          "images", "final", "paragraph_dedup", "cleanup", "image_set_dedup", "optout")
#: stages that count unique image URLs, not documents (outside the documents' accounting chain)
NOT_DOCUMENTS = ("image_fetch",)


def _filters(inp: RunInputs) -> dict:
    return inp.recipe["filters_config"]


def _warc_config(inp: RunInputs) -> list:
    from ..tasks import warc_config

    return warc_config(inp.recipe)


def _text_filter_config(inp: RunInputs) -> list:
    f = _filters(inp)
    return [f.get("node"), f.get("doc"), f.get("perplexity"), f.get("lang_id"), _page_consent(inp)]


def _page_consent(inp: RunInputs) -> dict:
    from ..optout.page import PageConsentConfig

    return PageConsentConfig.from_mapping(inp.recipe.get("page_consent")).as_dict()


def banned_words(fcfg: dict) -> list[str]:
    """The URL-ban words the image-URL plan leaves out of the fetch (``image.banned_url_substrings``)."""
    img = fcfg.get("image") or {}
    path = (fcfg.get("wordlists") or {}).get("url_ban_words")
    if not img.get("banned_url_substrings", True) or not path:
        return []
    from ..quality.wordlists import load_wordlist

    return sorted(load_wordlist(path))


def host_max_urls(inp: RunInputs) -> int:
    from ..images.hosts import HostPolicy

    return HostPolicy.from_config(fetch_settings(inp)).host_max_urls


def _image_plan_config(inp: RunInputs) -> list:
    return [(_filters(inp).get("image") or {}).get("max_documents_per_url", 10), banned_words(_filters(inp)),
            host_max_urls(inp)]


def _fetch_config(inp: RunInputs) -> list:
    from ..images.ledger import fetch_config

    return fetch_config(fetch_settings(inp), _filters(inp), list(inp.archive_names))


def fetch_settings(inp: RunInputs) -> dict:
    """The recipe's ``images:`` section with the command line's overrides (``--no-network``...)."""
    return {**(inp.recipe.get("images") or {}), **inp.fetch_overrides}


def _phash_config(inp: RunInputs) -> list:
    return [int((_filters(inp).get("image") or {}).get("phash_max_distance", 4))]


def _join_config(inp: RunInputs) -> list:
    from ..images.join import JoinConfig

    return JoinConfig.from_recipe(inp.recipe).as_list()


def _final_config(inp: RunInputs) -> list:
    f = _filters(inp)
    return [f.get("image"), f.get("final"), (f.get("doc") or {}).get("number_images")]


def _section(name: str):
    def config(inp: RunInputs) -> list:
        return [inp.recipe.get(name)]
    return config


def _lookups_config(inp: RunInputs) -> list:
    o = inp.recipe.get("optout") or {}
    return [o.get("spawning") or {}, o.get("c2pa"), bool(inp.env.get("spawning_key"))]


def _none(inp: RunInputs) -> list:
    return []


BUILTIN: tuple[Step, ...] = (
    Step("warc", "warcs", ("read", "extract", "text_scores"), (), "parts/scored",
         ("recipe: read, extract, text_scores", "filters: score parameters, word lists, models"), _warc_config,
         what="read the WARC's HTML records, extract documents, score their text"),
    Step("text_filter", "parts", ("page_consent", "text_filter"), ("warc",), "parts/text",
         ("recipe: page_consent", "filters: node, doc, perplexity, lang_id"), _text_filter_config, products=("keys",),
         what="page-level consent from the stored signals, text decisions from the stored scores"),
    Step("url_losers", "run", (), ("text_filter",), "parts/url_dedup/_losers", ("recipe: url_dedup",),
         _section("url_dedup"), marker="losers", what="rows whose URL has a later capture elsewhere in the run"),
    Step("near_dedup", "run", (), ("text_filter", "url_losers"), "parts/url_dedup/_near", ("recipe: near_dedup",),
         _section("near_dedup"), marker="near_losers", what="MinHash LSH near duplicates (before any image fetch)"),
    Step("url_dedup", "parts", ("url_dedup",), ("text_filter", "url_losers", "near_dedup"), "parts/url_dedup",
         (), _none, products=("pairs",), what="drop the URL and near-duplicate losers"),
    Step("image_plan", "run", (), ("url_dedup",), "images/plan",
         ("filters: image.max_documents_per_url, image.banned_url_substrings, wordlists.url_ban_words",
          "recipe: images.host_max_urls"), _image_plan_config, marker="plan",
         what="unique image URLs partitioned by host (large hosts split); URLs in too many documents"),
    Step("image_fetch", "images", ("image_fetch",), ("image_plan",), "images/table",
         ("recipe: images (+ --no-network...)", "filters: image (not the decisions), image.nsfw detector",
          "the image archives"), _fetch_config, output="content", by_content=("image_plan",),
         what="fetch each unique image URL once: decode, filters, sha256, pHash, NSFW"),
    Step("image_phash", "run", (), ("image_fetch",), "images/phash", ("filters: image.phash_max_distance",),
         _phash_config, output="content", marker="phash", what="near-duplicate image marks across the run"),
    Step("image_buckets", "run", (), ("image_phash",), "images/by_url_hash", ("recipe: image_join",), _join_config,
         marker="buckets", what="the image table (minus bytes) re-partitioned by URL hash, for the final join"),
    Step("final", "parts", ("image_rules", "images", "final"), ("url_dedup", "image_plan", "image_buckets"),
         "parts/final", ("filters: image, final, doc.number_images",), _final_config, products=("pcounts",),
         what="image rules, image results, final cleaning"),
    Step("paragraph_counts", "run", (), ("final",), "parts/paragraphs/_frequent", ("recipe: paragraph_dedup",),
         _section("paragraph_dedup"), marker="frequent", what="paragraphs seen min_count times in a domain"),
    Step("paragraphs", "parts", ("paragraph_dedup", "cleanup"), ("final", "paragraph_counts"), "parts/paragraphs",
         ("recipe: paragraph_dedup",), _section("paragraph_dedup"), products=("sets", "urls"),
         what="per-domain paragraph dedup, cleaning again"),
    Step("image_set_losers", "run", (), ("paragraphs",), "parts/paragraphs/_image_set_losers", (), _none,
         marker="losers", what="documents whose image-URL set another document has"),
    Step("optout_lookups", "run", (), ("paragraphs", "image_phash"), "parts/optout",
         ("recipe: optout.spawning, optout.c2pa", "whether SPAWNING_OPTS_KEY is set"), _lookups_config,
         output="content", marker="lookups", what="Spawning and C2PA opt-outs of every distinct URL, once"),
    Step("publish", "parts", ("image_set_dedup", "optout"), ("paragraphs", "image_set_losers", "optout_lookups"),
         "documents", ("recipe: optout",), _section("optout"), unit_name="part-{index:05d}",
         what="image-set dedup and opt-out -> documents/"),
    Step("manifest", "run", (), ("publish",), ".", (), _none,  # (it always runs: no marker)
         what="OUT/optout-manifest-DATE.parquet from the parts' opt-out rows and text_filter's page-consent rows"),
)

#: after which stages a stage of one's own may run: those that end a per-part step, but the last
CUSTOM_AFTER = tuple(s.stages[-1] for s in BUILTIN if s.kind in ("warcs", "parts") and s.name != "publish")
