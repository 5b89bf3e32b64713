"""The pipeline as a declared plan: the recipe's stages list, stages of one's own by dotted path, one fingerprint
rule for resume and invalidation, ``obelics-build plan``."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from obelics_builder.errors import ConfigError
from obelics_builder.plan import build_plan
from obelics_builder.plan.builtin import BUILTIN, STAGES
from obelics_builder.recipe import load_recipe
from obelics_builder.resources import PIPELINES_DIR

from output_digest import parts_digest

DUMP = "CC-MAIN-2023-06"
#: two small WARCs of the bundled sample that keep documents with images to the end
WARCS = ("wget-2024-sample-0000", "wget-2024-sample-0001")


def recipe_file(tmp_path: Path, extra_stages=(), name="r", **sections) -> Path:
    """The packaged obelics recipe with stages of one's own appended to its list and sections set."""
    data = yaml.safe_load((PIPELINES_DIR / "obelics.yaml").read_text(encoding="utf-8"))
    data["stages"] = list(data["stages"]) + list(extra_stages)
    data.update(sections)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def crawl(out: Path, recipe_path: Path) -> dict:
    from obelics_builder.engine import Engine
    from obelics_builder.pipeline import run_pipeline
    from obelics_builder.sources import commoncrawl as cc

    mirror = cc.resolve_mirror("sample")
    refs = [r for r in cc.list_warcs(DUMP, mirror) if any(w in r.name for w in WARCS)]
    assert len(refs) == 2
    with Engine(scheduler="sync", quiet=True) as engine:
        return run_pipeline(refs, load_recipe(recipe_path), out, engine, dump=DUMP,
                            archive_refs=cc.image_archive_refs(DUMP, mirror), fetch_overrides={"network": False})


def markers(out: Path) -> dict[str, int]:
    """Every completion marker under OUT and when it was written."""
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob("_done/*.json")}


def changed(before: dict, after: dict) -> set[str]:
    """The top folders (steps) whose markers were rewritten."""
    return {k.rsplit("/_done/", 1)[0] for k in after if before.get(k) != after[k]}


# ---- the plan -----------------------------------------------------------------------------------------------

def test_default_plan_is_the_builtin_order():
    """The packaged recipe: the built-in steps, and its one stage of its own (image-text alignment) after final."""
    plan = build_plan(load_recipe("obelics", check_extractor=False))
    builtin = [s.name for s in BUILTIN]
    at = builtin.index("final") + 1
    assert [s.name for s in plan.steps] == builtin[:at] + ["image_text"] + builtin[at:]
    assert plan.step("image_text").custom.use == "obelics_builder.align:image_text"
    funnel = [s for s in STAGES if s != "image_fetch"]
    assert plan.funnel == tuple(funnel[:funnel.index("final") + 1] + ["image_text"] + funnel[funnel.index("final") + 1:])
    seen = set()
    for step in plan.steps:  # each step reads only steps before it
        assert set(step.reads) <= seen, step.name
        seen.add(step.name)
    # a recipe without stages: (an older one, or obelics-2023) has the built-in plan
    assert [s.name for s in build_plan(load_recipe("obelics-2023", check_extractor=False)).steps] == builtin


def test_custom_stage_is_inserted_and_read_by_the_steps_after_it(tmp_path):
    path = recipe_file(tmp_path, [{"use": "plan_stage_fixture:drop_urls", "after": "text_filter"},
                                  {"use": "plan_stage_fixture:identity", "after": "text_filter", "name": "second"}],
                       drop_urls={"drop": "x"})
    plan = build_plan(load_recipe(path, check_extractor=False))
    names = [s.name for s in plan.steps]
    assert names[:4] == ["warc", "text_filter", "drop_urls", "second"]  # several after one stage: in list order
    assert plan.step("second").reads == ("drop_urls",)
    for name in ("url_losers", "near_dedup", "url_dedup"):  # what read text_filter's parts and keys reads them now
        assert "text_filter" not in plan.step(name).reads and "second" in plan.step(name).reads
    assert plan.step("drop_urls").products == ("keys",)
    assert plan.funnel[:7] == ("read", "extract", "text_scores", "page_consent", "text_filter", "drop_urls", "second")


@pytest.mark.parametrize("stages, message", [
    (["text_scroes"], "stages[0]: unknown stage 'text_scroes' (did you mean 'text_scores'?)"),
    ([{"use": "plan_stage_fixture:identity", "after": "text_filtr"}],
     "stages[14].after: unknown stage 'text_filtr' (did you mean 'text_filter'?)"),
    ([{"use": "plan_stage_fixture:identity", "after": "images"}],
     "stages[14].after: a stage of your own runs between two per-part steps, after one of text_scores, text_filter, "
     "url_dedup, final, cleanup (or another of your own), not after 'images'"),
    ([{"use": "plan_stage_fixture:nosuch", "after": "final"}], "stages[14].use: cannot use 'plan_stage_fixture:nosuch'"),
    ([{"use": "no_such_module_x:f", "after": "final"}], "stages[14].use: cannot use 'no_such_module_x:f'"),
    ([{"use": "plan_stage_fixture:NOT_A_FUNCTION", "after": "final"}], "not a function"),
    ([{"use": "plan_stage_fixture:identity", "name": "final"}], "the name 'final' is taken"),
    ([{"use": "plan_stage_fixture:identity", "name": "paragraphs", "after": "final"}], "the name 'paragraphs' is taken"),
    ([{"use": "plan_stage_fixture:identity", "name": "scored", "after": "final"}], "the name 'scored' is taken"),
    ([{"use": "plan_stage_fixture:identity", "name": "images", "after": "final"}], "the name 'images' is taken"),
    ([{"use": "plan_stage_fixture:identity", "name": "write", "after": "final"}], "the name 'write' is taken"),
    ([{"use": "plan_stage_fixture:identity", "aftr": "final"}], "stages[14]: unknown key 'aftr' (did you mean 'after'?)"),
])
def test_stage_list_mistakes_are_one_clear_line(tmp_path, stages, message):
    data = yaml.safe_load((PIPELINES_DIR / "obelics.yaml").read_text(encoding="utf-8"))
    data["stages"] = stages if stages == ["text_scroes"] else data["stages"] + stages
    if stages == ["text_scroes"]:
        data["stages"] = ["text_scroes" if s == "text_scores" else s for s in
                          yaml.safe_load((PIPELINES_DIR / "obelics.yaml").read_text())["stages"]]
        message = message.replace("stages[0]", "stages[2]")
    else:  # the stage of one's own is appended: its index is the length of the packaged list
        n = len(yaml.safe_load((PIPELINES_DIR / "obelics.yaml").read_text())["stages"])
        message = message.replace("stages[14]", f"stages[{n}]")
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_recipe(path, check_extractor=False)
    assert len(e.value.problems) == 1, e.value.problems
    assert message in e.value.problems[0] and str(path) in e.value.problems[0]


def test_builtin_stages_keep_their_order_and_all_run(tmp_path):
    data = yaml.safe_load((PIPELINES_DIR / "obelics.yaml").read_text(encoding="utf-8"))
    for stages, message in ((["read", "text_scores", "extract"] + data["stages"][3:], "'text_scores' is out of place"),
                            ([s for s in data["stages"] if s != "cleanup"], "stages: cleanup is missing")):
        path = tmp_path / "r.yaml"
        path.write_text(yaml.safe_dump({**data, "stages": stages}), encoding="utf-8")
        with pytest.raises(ConfigError) as e:
            load_recipe(path, check_extractor=False)
        assert message in str(e.value)


def test_a_custom_stage_section_is_its_own(tmp_path):
    path = recipe_file(tmp_path, [{"use": "plan_stage_fixture:drop_urls", "after": "final"}],
                       drop_urls={"drop": "x", "anything": [1, 2]})
    assert load_recipe(path, check_extractor=False)["drop_urls"]["anything"] == [1, 2]
    with pytest.raises(ConfigError, match="drop_urls: expected a mapping"):
        load_recipe(recipe_file(tmp_path, [{"use": "plan_stage_fixture:drop_urls", "after": "final"}],
                                drop_urls=3), check_extractor=False)
    with pytest.raises(ConfigError, match="unknown key"):  # other unknown top-level keys are still mistakes
        load_recipe(recipe_file(tmp_path, [], drop_urlz={}), check_extractor=False)


def test_no_import_circles():
    """No two modules of the package import each other (tasks <-> images.ledger was one)."""
    import ast

    root = Path(__file__).resolve().parents[1] / "obelics_builder"
    mods = {".".join(p.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__"): p
            for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module
                for a in node.names:
                    deps.add(f"{target}.{a.name}" if f"{target}.{a.name}" in mods else target)
        graph[name] = deps & set(mods) - {name}
    pairs = {tuple(sorted((a, b))) for a in graph for b in graph[a] if a in graph.get(b, ())}
    known = {("obelics_builder.extract.stage", "obelics_builder.recipe")}  # ExtractConfig / MODES: left as it was
    assert pairs <= known, sorted(pairs - known)


# ---- running it -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plan")
    out = tmp / "base"
    stats = crawl(out, recipe_file(tmp))
    return out, stats


def test_identity_stages_everywhere_leave_the_documents_as_they_are(baseline, tmp_path):
    """A stage of one's own after each place it may go, keeping every document: the same documents, to the byte
    (it rewrites the side tables the reductions after it read exactly as the built-in step wrote them)."""
    out0, stats0 = baseline
    places = ("text_scores", "text_filter", "url_dedup", "final", "cleanup")
    path = recipe_file(tmp_path, [{"use": "plan_stage_fixture:identity", "after": a, "name": f"same_{a}"}
                                  for a in places])
    stats = crawl(tmp_path / "out", path)
    assert stats["summary"]["documents"] == stats0["summary"]["documents"] > 5
    assert parts_digest(tmp_path / "out" / "documents") == parts_digest(out0 / "documents")
    assert stats["summary"]["accounted"], stats["summary"]["accounting_problems"]
    names = list(stats["stages"])
    for a in places:  # (after final, the recipe's own image_text comes first: several after one run in list order)
        assert names.index(f"same_{a}") == names.index(a) + 1 + (a == "final")


def test_custom_stage_runs_resumes_is_counted_and_reruns_alone(baseline, tmp_path, capsys):
    out0, stats0 = baseline
    log = tmp_path / "calls.log"
    stage = [{"use": "plan_stage_fixture:drop_urls", "after": "text_filter"}]
    out = tmp_path / "out"
    # 1. it runs and is counted in the funnel, between text_filter and url_dedup
    stats = crawl(out, recipe_file(tmp_path, stage, drop_urls={"drop": "/nothing-matches/", "log": str(log)}))
    s = stats["stages"]["drop_urls"]
    assert stats["summary"]["accounted"], stats["summary"]["accounting_problems"]
    assert list(stats["stages"]).index("drop_urls") == list(stats["stages"]).index("text_filter") + 1
    assert s["documents_in"] == stats["stages"]["text_filter"]["documents_out"] == s["documents_out"]
    assert stats["summary"]["documents"] == stats0["summary"]["documents"]
    calls = log.read_text().splitlines()
    assert len(calls) == 2  # one batch per part
    # 2. a rerun resumes: nothing runs again
    before = markers(out)
    crawl(out, recipe_file(tmp_path, stage, drop_urls={"drop": "/nothing-matches/", "log": str(log)}))
    assert log.read_text().splitlines() == calls
    assert changed(before, markers(out)) == set()
    # 3. its config changed: it and the steps after it rerun, not those before it; what it drops is counted
    url = json.loads(next(iter(_documents(out0))) ["general_metadata"])["url"]
    from obelics_builder.cli import main

    before = markers(out)
    recipe = recipe_file(tmp_path, stage, name="r2", drop_urls={"drop": url, "log": str(log)})
    stats = crawl(out, recipe)
    rerun = changed(before, markers(out))
    assert "parts/scored" not in rerun and "parts/text" not in rerun
    assert {"parts/drop_urls", "parts/url_dedup", "parts/final", "parts/paragraphs", "documents"} <= rerun
    assert len(log.read_text().splitlines()) == 4
    s = stats["stages"]["drop_urls"]
    assert s["removed"] == {"dropped_by_test": 1} and s["documents_out"] == s["documents_in"] - 1
    assert stats["summary"]["accounted"] and stats["summary"]["documents"] <= stats0["summary"]["documents"]
    # its score column reaches the documents
    assert all("doc_test_images" in d for d in _documents(out))
    # 4. `plan` shows it and says a rerun now skips everything (the manifest is always rebuilt)
    capsys.readouterr()
    assert main(["plan", "--out", str(out), "--recipe", str(recipe), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    mine = next(s for s in plan["steps"] if s["step"] == "drop_urls")
    assert mine["custom"] == "plan_stage_fixture:drop_urls" and mine["reads"] == ["text_filter"]
    assert mine["writes"] == "OUT/parts/drop_urls/" and mine["skip"] == mine["units"] == 2
    assert plan["skip"] == plan["units"] - 1


def test_a_custom_stage_decision_in_the_filter_config_is_reapplied_by_filter(baseline, tmp_path):
    """A stage of one's own reads its decisions from the filter config's ``stages:`` section (ctx.filters):
    ``obelics-build filter`` reruns it and what follows, nothing before; a wrong section is refused first."""
    from obelics_builder.cli import main
    from obelics_builder.recipe import load_filters

    out0, stats0 = baseline
    out = tmp_path / "out"
    stats = crawl(out, recipe_file(tmp_path, [{"use": "plan_stage_fixture:drop_by_filter", "after": "final"}]))
    assert stats["stages"]["drop_by_filter"]["removed"] == {}
    url = json.loads(_documents(out0)[0]["general_metadata"])["url"]
    overlay = tmp_path / "decide.yaml"
    overlay.write_text(yaml.safe_dump({"stages": {"drop_by_filter": {"drop": url}}}), encoding="utf-8")
    before = markers(out)
    assert main(["filter", str(out), "--config", str(overlay), "--scheduler", "sync", "--no-dataset",
                 "--quiet"]) == 0
    rerun = changed(before, markers(out))
    assert "parts/final" not in rerun and "parts/scored" not in rerun and "parts/drop_by_filter" in rerun
    stats = json.loads((out / "stats.json").read_text())
    assert stats["stages"]["drop_by_filter"]["removed"] == {"dropped_by_filter": 1}
    assert stats["summary"]["documents"] == stats0["summary"]["documents"] - 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages:\n  drop_by_filter: 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="stages.drop_by_filter: expected a mapping"):
        load_filters(bad)


def test_changing_one_builtin_section_reruns_from_that_step_only(tmp_path):
    out = tmp_path / "out"
    crawl(out, recipe_file(tmp_path))
    before = markers(out)
    crawl(out, recipe_file(tmp_path, name="r2", paragraph_dedup={"enabled": True, "min_count": 2}))
    rerun = changed(before, markers(out))
    # (the opt-out URL plan, parts/optout/_urls, is only built when Spawning can be asked: with a key)
    assert rerun == {"parts/paragraphs/_frequent", "parts/paragraphs", "parts/paragraphs/_image_set_losers",
                     "parts/optout", "documents"} | ({"parts/optout/_urls"} if os.environ.get("SPAWNING_OPTS_KEY")
                                                    else set()), rerun


def test_plan_command_says_what_a_rerun_skips(baseline, capsys):
    from obelics_builder.cli import main

    out, _ = baseline
    assert main(["plan", "--out", str(out), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    steps = {s["step"]: s for s in plan["steps"]}
    # the built-in steps and the packaged recipe's own image_text
    assert [s["step"] for s in plan["steps"] if s["step"] != "image_text"] == [s.name for s in BUILTIN]
    assert steps["image_text"]["custom"] == "obelics_builder.align:image_text"
    assert steps["warc"]["units"] == 2 and steps["warc"]["skip"] == 2 and steps["warc"]["reads"] == ["the WARC files"]
    assert steps["final"]["writes"] == "OUT/parts/final/" and steps["final"]["stages"] == ["image_rules", "images", "final"]
    assert all(s["fingerprint"] for s in plan["steps"])
    assert plan["skip"] == plan["units"] - 1 and not plan["unknown"]  # all but the manifest (always rebuilt)
    for s in BUILTIN:  # what each step declares it writes is where its task wrote (markers included)
        if s.kind != "run" or s.marker:
            assert (out / s.writes / "_done").is_dir(), s.name
    # another config: what it changes and after would run, the rest is skipped
    assert main(["plan", "--out", str(out), "--json", "--filters", str(_filters_overlay(out))]) == 0
    steps = {s["step"]: s for s in json.loads(capsys.readouterr().out)["steps"]}
    assert steps["text_filter"]["skip"] == 2 and steps["url_dedup"]["skip"] == 2
    assert steps["final"]["skip"] == 0 and steps["publish"]["skip"] == 0
    # the text form names every step, what it reads and writes, and the funnel
    assert main(["plan"]) == 0
    text = capsys.readouterr().out
    for s in BUILTIN:
        assert f". {s.name}  [" in text
    assert "funnel (stats.json): read -> extract -> text_scores -> page_consent -> text_filter" in text


def _filters_overlay(out: Path) -> Path:
    path = out.parent / "overlay.yaml"
    path.write_text("final:\n  max_images: 3\n", encoding="utf-8")
    return path


def _documents(out: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return [row for p in sorted((out / "documents").glob("part-*.parquet")) for row in pq.read_table(p).to_pylist()]


def test_the_tasks_own_fingerprints_are_the_plans_rule():
    """process_warc and fetch_partition called without the plan (bench, tests) fingerprint as the plan does, and
    `filter` checks stored scores with the same rule."""
    from obelics_builder.commands.filter import _scored_fingerprint
    from obelics_builder.images.ledger import fetch_input_fingerprint, urls_digest
    from obelics_builder.io.markers import fingerprint
    from obelics_builder.pipeline import run_inputs
    from obelics_builder.plan.model import unit_fingerprint
    from obelics_builder.sources.commoncrawl import WarcRef
    from obelics_builder.tasks import warc_config

    recipe = load_recipe("obelics", check_extractor=False)
    plan = build_plan(recipe)
    ref = WarcRef(uri="/x/a.warc.gz", name="a.warc.gz")
    archive = [WarcRef(uri="/x/img.warc.gz", name="img.warc.gz")]
    inputs = run_inputs([ref], recipe, "CC-MAIN-2023-06", archive, {"network": False})
    warc = unit_fingerprint([ref.name, inputs.dump], [], plan.step("warc").config(inputs))
    assert warc == fingerprint(ref.name, inputs.dump, *warc_config(recipe)) == _scored_fingerprint(
        ref.name, recipe, inputs.dump)
    urls = ["http://a/1.png", "http://b/2.png"]
    fetch_cfg = {**recipe["images"], "network": False}
    # an image unit's identity is the digest of its URLs (what the plan's units.parquet holds: the driver never
    # holds the list)
    assert unit_fingerprint([urls_digest(urls)], [], plan.step("image_fetch").config(inputs)) == \
        fetch_input_fingerprint(urls, fetch_cfg, recipe["filters_config"], ["img.warc.gz"])


@pytest.mark.slow
def test_custom_stage_through_the_command_line_on_a_local_cluster(tmp_path):
    """`crawl --recipe` with a stage of one's own on a LocalCluster (the workers import it), then `status`, and
    `report` shows it in the funnel."""
    import os
    import subprocess
    import sys

    from obelics_builder.sources import commoncrawl as cc

    mirror = Path(cc.resolve_mirror("sample"))
    warcs = [str(p) for p in sorted((mirror / "crawl-data" / DUMP / "segments").rglob("*.warc.gz"))
             if any(w in p.name for w in WARCS)]
    archive = [str(p) for p in sorted((mirror / "crawl-data" / DUMP / "image-archive").glob("*.warc.gz"))]
    recipe = recipe_file(tmp_path, [{"use": "plan_stage_fixture:drop_urls", "after": "final", "name": "mine"}],
                         mine={"drop": "/nothing-matches/"})
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "obelics_builder.cli", *args], capture_output=True, text=True,
                              env=env, timeout=900)

    r = cli("crawl", "--warc", *warcs, "--image-archive", *archive, "--recipe", str(recipe), "--out", str(out),
            "--workers", "2", "--no-network", "--no-dataset")
    assert r.returncode == 0, r.stdout + r.stderr
    stats = json.loads((out / "stats.json").read_text())
    names = list(stats["stages"])
    # after final come the packaged stages of one's own that also follow it (image_text), then this one
    assert names.index("mine") > names.index("final") and names.index("mine") < names.index("paragraph_dedup")
    assert stats["summary"]["accounted"]
    assert "mine " in r.stdout  # the stage table of the summary
    r = cli("status", str(out))
    assert "mine (yours, per part)" in r.stdout and "2/2" in r.stdout.split("mine (yours, per part)")[1].split("\n")[0]
    r = cli("report", str(out))
    assert r.returncode == 0, r.stderr
    assert ">mine<" in (out / "report" / "index.html").read_text(encoding="utf-8")
