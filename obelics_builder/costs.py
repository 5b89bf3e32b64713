"""What a crawl costs in CPU, by stage: measured profiles and the projection of a whole dump.

A :class:`CostProfile` holds CPU-seconds per page read for each group of CPU stages, CPU-seconds per unique image URL
for the image stage and how many unique image URLs a page read yields.  Profiles come from

- the figures shipped with the package (``data/throughput.json``: the JSON line of a ``bench/pipeline`` run on this
  project's reference machine, see bench/pipeline/README.md);
- a user's own ``bench/pipeline`` output (per stage, images included), ``bench/scale`` output (the CPU stages as one
  figure), ``bench/dump`` output (the whole crawl's CPU, driver and workers, of its largest run: everything but the
  image stage per page, the image stage per URL) or a crawl's ``stats.json`` (its stages' ``cpu_seconds``; older files: wall ``seconds``).

:func:`project` turns a profile and a page count into core-hours per stage group.  A benchmark's pages are all in
the filters' language and reach every stage; in a dump most pages leave at the text filters, so the per-page
figures of the later stages are an upper bound there.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

#: stage groups in pipeline order; the image stage is costed per unique image URL, the others per page read
GROUPS = ("read", "extract", "text scores", "decisions", "dedup", "final passes", "writing", "engine overhead")
IMAGE_GROUP = "image"
#: stats.json stage -> group (stages not listed are not CPU stages of their own)
STAGE_GROUP = {
    "read": "read", "extract": "extract", "text_scores": "text scores", "page_consent": "decisions",
    "text_filter": "decisions",
    "url_dedup": "dedup", "image_rules": "final passes", "images": "final passes", "final": "final passes",
    "paragraph_dedup": "final passes", "cleanup": "final passes", "image_set_dedup": "final passes",
    "optout": "final passes",
}
SHIPPED = "throughput.json"
#: unique image URLs per page read of a whole dump when no crawl of the user's measured it: OBELICS collected 3.6
#: billion image links from 41.2 billion Common Crawl documents of 25 dumps (HF card / paper, quoted in
#: docs/peers.md), i.e. after language, dedup and text filters comparable to ours.  A benchmark's generated pages
#: (all in the filters' language, images on most) are no measure of this.
DUMP_IMAGE_URLS_PER_PAGE = 3.6e9 / 41.2e9
DUMP_IMAGE_URLS_SOURCE = "OBELICS: 3.6 billion image links from 41.2 billion Common Crawl documents"


class ProfileError(ValueError):
    """A throughput file that cannot be read as a profile (the message says why)."""


@dataclass(frozen=True)
class CostProfile:
    #: CPU-seconds per page read, by group of CPU stages (GROUPS order)
    page_cpu_s: dict = field(default_factory=dict)
    #: CPU-seconds per unique image URL (fetch from archive or web, decode, checks, pHash, NSFW); None: not measured
    image_url_cpu_s: float | None = None
    #: unique image URLs fetched per page read (after the text filters and dedup); None: not measured
    image_urls_per_page: float | None = None
    #: whether ``image_urls_per_page`` describes real crawl input (a crawl's stats.json) rather than a
    #: benchmark's generated pages; only then does a dump projection use it
    image_urls_measured_on_crawl: bool = False
    #: HTML pages per WARC in the measured run (full-size WARCs only mean something here)
    pages_per_warc: float | None = None
    #: fixed CPU per worker process (interpreter, imports, models); None: not measured
    startup_cpu_s: float | None = None
    source: str = ""

    @property
    def cpu_stage_s_per_page(self) -> float:
        return sum(self.page_cpu_s.values())

    @property
    def pages_per_cpu_s(self) -> float:
        s = self.cpu_stage_s_per_page
        return 1.0 / s if s > 0 else 0.0


def shipped_profile() -> CostProfile:
    """The figures measured by ``bench/pipeline`` and shipped in the package."""
    text = resources.files("obelics_builder").joinpath("data", SHIPPED).read_text(encoding="utf-8")
    return from_bench_pipeline(json.loads(text), f"shipped figures (obelics_builder/data/{SHIPPED})")


def from_bench_pipeline(data: dict, source: str) -> CostProfile:
    pages = float(data.get("pages") or 0)
    groups = data.get("groups_cpu_s") or {}
    if pages <= 0 or not groups:
        raise ProfileError(f"{source}: a bench/pipeline output without pages or per-stage CPU seconds")
    urls = float(data.get("image_urls") or 0)
    image_cpu = float(groups.get(IMAGE_GROUP) or 0.0)
    page_cpu = {g: float(groups.get(g) or 0.0) / pages for g in GROUPS}
    page_cpu.update({g: float(v) / pages for g, v in groups.items() if g not in GROUPS and g != IMAGE_GROUP})
    started = data.get("started")
    return CostProfile(
        page_cpu_s=page_cpu,
        image_url_cpu_s=image_cpu / urls if urls and image_cpu else None,
        image_urls_per_page=urls / pages,
        startup_cpu_s=data.get("startup_cpu_s"),
        source=f"{source} (bench/pipeline{', ' + started if started else ''}: {int(pages):,} pages, "
               f"{int(urls):,} image URLs)",
    )


def from_stats(data: dict, source: str) -> CostProfile:
    stages = data.get("stages") or {}
    pages = int((stages.get("read") or {}).get("documents_out") or 0)
    key = "cpu_seconds" if any((s or {}).get("cpu_seconds") for s in stages.values()) else "seconds"
    page_cpu: dict = {}
    for stage, group in STAGE_GROUP.items():
        v = float((stages.get(stage) or {}).get(key) or 0.0)
        page_cpu[group] = page_cpu.get(group, 0.0) + v
    if pages <= 0 or page_cpu.get("extract", 0.0) + page_cpu.get("text scores", 0.0) <= 0:
        raise ProfileError(f"{source}: no pages read or no stage seconds recorded; cannot measure throughput")
    fetch = stages.get("image_fetch") or {}
    urls = int(fetch.get("documents_in") or 0)
    image_cpu = float(fetch.get(key) or 0.0)
    n_warcs = len((data.get("run") or {}).get("warcs") or [])
    what = "CPU seconds" if key == "cpu_seconds" else "wall seconds (an older stats.json: no cpu_seconds)"
    return CostProfile(
        page_cpu_s={g: v / pages for g, v in page_cpu.items()},
        image_url_cpu_s=image_cpu / urls if urls and image_cpu else None,
        image_urls_per_page=urls / pages if urls else None,
        image_urls_measured_on_crawl=bool(urls),
        pages_per_warc=pages / n_warcs if n_warcs else None,
        source=f"{source} (stats.json: {pages:,} pages, the stages' {what}; run-wide steps are not timed there)",
    )


def from_bench_dump(data: dict, source: str) -> CostProfile:
    """The largest run of a ``bench/dump`` output: every process's CPU (driver, scheduler, workers) less the image
    stage per page read, the image stage per unique image URL.  Its small generated WARCs say nothing of a real
    WARC's pages, and its pages' image URLs are a benchmark's, not a dump's."""
    proj = data.get("projection") or {}
    per_page = proj.get("cpu_s_per_page_less_images")
    if not per_page or per_page <= 0:
        raise ProfileError(f"{source}: a bench/dump output without cpu_s_per_page_less_images (an older bench_dump?)")
    runs = data.get("runs") or []
    big = max(runs, key=lambda r: r.get("warcs", 0)) if runs else {}
    return CostProfile(
        page_cpu_s={"all but images": float(per_page)},
        image_url_cpu_s=float(proj["cpu_s_per_image_url"]) if proj.get("cpu_s_per_image_url") else None,
        image_urls_per_page=proj.get("image_urls_per_page"),
        source=f"{source} (bench/dump: {big.get('warcs', 0):,} WARCs, {big.get('pages', 0):,} pages, the CPU of "
               f"every process)",
    )


def from_rate(pages_per_core_s: float, source: str, pages_per_warc: float | None = None) -> CostProfile:
    """The CPU stages as one measured rate (pages per CPU-second); no image figures."""
    if not pages_per_core_s or pages_per_core_s <= 0:
        raise ProfileError(f"{source}: throughput must be > 0 pages/s per core")
    return CostProfile(page_cpu_s={"CPU stages": 1.0 / pages_per_core_s}, pages_per_warc=pages_per_warc,
                       source=source)


def _json_of(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
        for line in reversed(text.strip().splitlines()):  # a bench prints its figures, then one JSON line
            line = line.strip()
            if line.startswith("{"):
                try:
                    data = json.loads(line)
                    break
                except json.JSONDecodeError:
                    continue
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: neither a stats.json nor the output of bench/pipeline, bench/scale or bench/dump")
    return data


def profile_from_file(path: str | Path) -> CostProfile:
    """A profile from a ``stats.json``, or the output (its JSON line) of ``bench/pipeline``, ``bench/scale`` or
    ``bench/dump``."""
    path = Path(path)
    data = _json_of(path)
    if data.get("bench") == "pipeline":
        return from_bench_pipeline(data, str(path))
    if "runs" in data and "projection" in data:  # bench/dump
        return from_bench_dump(data, str(path))
    if "pages_per_core_s" in data:  # bench/scale: wall time of read+extract+text scores per core
        ppw = data.get("pages_per_warc")
        return from_rate(float(data["pages_per_core_s"]),
                         f"{path} (bench_scale: wall time of read+extract+text scores per core)",
                         float(ppw) if ppw else None)
    if "stages" in data:
        return from_stats(data, str(path))
    raise ProfileError(f"{path}: neither a stats.json nor the output of bench/pipeline, bench/scale or bench/dump")


def project(pages: float, profile: CostProfile, images: CostProfile | None = None,
            image_urls_per_page: float | None = None) -> dict:
    """Core-hours by stage group for ``pages`` pages read.  The image stage's cost per URL comes from ``profile``
    when it measured one, else from ``images`` (e.g. the shipped figures); the image URLs per page from
    ``image_urls_per_page`` if given, else a crawl's own measure, else :data:`DUMP_IMAGE_URLS_PER_PAGE`."""
    by_group = {g: pages * s / 3600.0 for g, s in profile.page_cpu_s.items() if s > 0}
    img = profile if profile.image_url_cpu_s else images
    image = None
    if img is not None and img.image_url_cpu_s:
        if image_urls_per_page is not None:
            per_page, per_page_source = image_urls_per_page, "--image-urls-per-page"
        elif profile.image_urls_measured_on_crawl and profile.image_urls_per_page is not None:
            per_page, per_page_source = profile.image_urls_per_page, profile.source
        else:
            per_page, per_page_source = DUMP_IMAGE_URLS_PER_PAGE, DUMP_IMAGE_URLS_SOURCE
        urls = pages * per_page
        by_group[IMAGE_GROUP] = urls * img.image_url_cpu_s / 3600.0
        image = {"image_urls": urls, "image_urls_per_page": per_page, "image_urls_per_page_source": per_page_source,
                 "cpu_s_per_image_url": img.image_url_cpu_s, "image_urls_per_cpu_s": 1.0 / img.image_url_cpu_s,
                 "source": img.source}
    cpu_stages = sum(v for g, v in by_group.items() if g != IMAGE_GROUP)
    return {"core_hours_by_stage": by_group, "cpu_stages_core_hours": cpu_stages,
            "image_core_hours": by_group.get(IMAGE_GROUP, 0.0), "core_hours": sum(by_group.values()),
            "images": image}
