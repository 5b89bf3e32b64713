"""`publish`: refusal of incomplete outputs, the dry-run plan, and the real huggingface_hub client path against a
stand-in for the Hub's HTTP endpoints on 127.0.0.1 (repo create, YAML validation, preupload, LFS batch + upload +
verify, commit, tree, revision, branch)."""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml

from obelics_builder.dataset.publish import CommitPacer, check_complete, plan_upload, publish, PublishError
from obelics_builder.dataset.shards import write_dataset
from test_dataset import make_fake_out

REPO_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hf_TESTtokenNeverPrinted0123456789abcdef"
LFS_SUFFIXES = (".parquet", ".tar", ".png")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    """Just enough of the Hub for huggingface_hub's create_repo / create_commit / list_repo_files."""

    def __init__(self) -> None:
        self.repos: dict[str, dict] = {}  # "ns/name" -> {"type", "private", "branches": {rev: {path: entry}}}
        self.lfs: dict[str, bytes] = {}
        self.lfs_uploads: list[str] = []
        self.commits: list[dict] = []
        self.requests: list[tuple[str, str]] = []
        self.auth: list[str | None] = []
        self.unknown: list[tuple[str, str]] = []
        self.fail_commit: dict[int, int] = {}  # commit attempt number (1-based) -> HTTP status to answer once
        self.commit_attempts = 0
        self.validated_yaml: list[dict] = []
        self.lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().strip().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _send(self, status: int, payload=None, headers: dict | None = None) -> None:
                body = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_PUT(self):
                self._handle("PUT")

            def _handle(self, method: str) -> None:
                body = self._body()
                with hub.lock:
                    status, payload, headers = hub.route(method, self.path, body, self.headers)
                self._send(status, payload, headers)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeHub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    # ---- routing -----------------------------------------------------------------------------------------------
    def route(self, method: str, raw_path: str, body: bytes, headers) -> tuple[int, object, dict | None]:
        url = urlparse(raw_path)
        path = unquote(url.path)
        self.requests.append((method, path))
        self.auth.append(headers.get("Authorization"))
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/api/repos/create":
            req = json.loads(body)
            repo = f"{req['organization']}/{req['name']}" if req.get("organization") else f"user/{req['name']}"
            if repo in self.repos:
                # like the Hub: the conflict answer carries the existing repo's URL
                return 409, {"error": "You already created this dataset repo",
                             "url": f"{self.endpoint}/datasets/{repo}"}, None
            self.repos[repo] = {"type": req.get("type"), "private": req.get("visibility") == "private",
                                "branches": {"main": {}}, "head": "0" * 40}
            return 200, {"url": f"{self.endpoint}/datasets/{repo}"}, None
        if method == "POST" and path == "/api/validate-yaml":
            req = json.loads(body)
            text = req["content"]
            try:
                header = yaml.safe_load(text.split("---\n")[1]) if text.startswith("---\n") else None
            except yaml.YAMLError:
                header = None
            if not isinstance(header, dict):
                return 400, {"errors": [{"message": "invalid YAML metadata"}]}, None
            self.validated_yaml.append(header)
            return 200, {"errors": [], "warnings": []}, None
        if method == "PUT" and parts[0] == "lfs-upload":
            oid = parts[1]
            if hashlib.sha256(body).hexdigest() != oid:
                return 400, {"error": "sha256 mismatch"}, None
            self.lfs[oid] = body
            self.lfs_uploads.append(oid)
            return 200, {}, None
        if method == "POST" and parts[0] == "lfs-verify":
            req = json.loads(body)
            return (200, {}, None) if req["oid"] in self.lfs else (404, {"error": "not uploaded"}, None)
        if method == "POST" and parts[0] == "datasets" and path.endswith(".git/info/lfs/objects/batch"):
            req = json.loads(body)
            objects = []
            for o in req["objects"]:
                entry = {"oid": o["oid"], "size": o["size"], "authenticated": True}
                if o["oid"] not in self.lfs:
                    entry["actions"] = {"upload": {"href": f"{self.endpoint}/lfs-upload/{o['oid']}"},
                                        "verify": {"href": f"{self.endpoint}/lfs-verify"}}
                objects.append(entry)
            return 200, {"transfer": "basic", "objects": objects}, None
        if len(parts) >= 5 and parts[:2] == ["api", "datasets"]:
            repo, action, rev = f"{parts[2]}/{parts[3]}", parts[4], "/".join(parts[5:]) or "main"
            if repo not in self.repos:
                return 404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"}
            r = self.repos[repo]
            if action == "branch" and method == "POST":
                if rev in r["branches"]:
                    return 409, {"error": "branch exists"}, None
                r["branches"][rev] = dict(r["branches"]["main"])
                return 200, {}, None
            files = r["branches"].get(rev)
            if files is None:
                return 404, {"error": "Revision not found"}, {"X-Error-Code": "RevisionNotFound"}
            if action == "preupload" and method == "POST":
                out = []
                for f in json.loads(body)["files"]:
                    lfs = f["path"].endswith(LFS_SUFFIXES)
                    have = files.get(f["path"])
                    out.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
                                "oid": None if have is None else (have["sha256"] if lfs else have["oid"])})
                return 200, {"files": out, "commitOid": r["head"]}, None
            if action == "commit" and method == "POST":
                self.commit_attempts += 1
                fail = self.fail_commit.pop(self.commit_attempts, None)
                if fail:
                    return fail, {"error": "try again later"}, ({"Retry-After": "1"} if fail == 429 else None)
                lines = [json.loads(x) for x in body.decode().splitlines() if x.strip()]
                commit = {"revision": rev, "summary": lines[0]["value"]["summary"], "added": [], "deleted": []}
                for item in lines[1:]:
                    v = item["value"]
                    if item["key"] == "file":
                        data = base64.b64decode(v["content"])
                        files[v["path"]] = {"size": len(data), "oid": git_blob_sha1(data),
                                            "sha256": hashlib.sha256(data).hexdigest(), "data": data}
                    elif item["key"] == "lfsFile":
                        if v["oid"] not in self.lfs:
                            return 422, {"error": f"LFS object {v['oid']} not uploaded"}, None
                        data = self.lfs[v["oid"]]
                        files[v["path"]] = {"size": len(data), "oid": git_blob_sha1(b"pointer" + data),
                                            "sha256": v["oid"], "data": data, "lfs": True}
                    elif item["key"] == "deletedFile":
                        files.pop(v["path"], None)
                        commit["deleted"].append(v["path"])
                        continue
                    else:
                        return 400, {"error": f"unknown key {item['key']}"}, None
                    commit["added"].append(v["path"])
                r["head"] = hashlib.sha1(json.dumps(lines).encode() + r["head"].encode()).hexdigest()
                commit["oid"] = r["head"]
                self.commits.append(commit)
                return 200, {"commitUrl": f"{self.endpoint}/datasets/{repo}/commit/{r['head']}",
                             "commitOid": r["head"], "pullRequestUrl": None}, None
            if action == "tree" and method == "GET":
                items = []
                for p, e in sorted(files.items()):
                    item = {"type": "file", "path": p, "size": e["size"], "oid": e["oid"]}
                    if e.get("lfs"):
                        item["lfs"] = {"oid": e["sha256"], "size": e["size"], "pointerSize": 134}
                    items.append(item)
                return 200, items, None
            if action == "revision" and method == "GET":
                return 200, {"id": repo, "sha": r["head"], "private": r["private"],
                             "siblings": [{"rfilename": p} for p in sorted(files)]}, None
        self.unknown.append((method, raw_path))
        return 404, {"error": f"not handled by the stand-in: {method} {path}"}, None


# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture()
def built_out(tmp_path, shared_data):
    out = tmp_path / "out"
    make_fake_out(out, shared_data / "images" / "cc0-photos", n_docs=12)
    write_dataset(out, shard_size_bytes="1kB", embed_images=False)
    return out


def run_publish(out: Path, endpoint: str, *extra: str, token: str | None = TOKEN, home: Path) -> subprocess.CompletedProcess:
    """`publish` in a fresh interpreter (HF_ENDPOINT must be set before huggingface_hub is imported), with debug
    logging on, so every log line the run makes is captured."""
    code = ("import argparse, logging, sys\n"
            "logging.basicConfig(level=logging.DEBUG)\n"
            "from obelics_builder.commands import publish as c\n"
            "p = argparse.ArgumentParser(); c.add_arguments(p)\n"
            "sys.exit(c.run(p.parse_args(sys.argv[1:])))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update({"HF_ENDPOINT": endpoint, "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(home),
                "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
                "PYTHONPATH": str(REPO_ROOT)})
    for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(k, None)
    if token:
        env["HF_TOKEN"] = token
    return subprocess.run([sys.executable, "-c", code, str(out), *extra], env=env, capture_output=True,
                          text=True, timeout=120)


def local_files(out: Path) -> dict[str, bytes]:
    root = out / "dataset"
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()
            and not any(x.startswith(".") for x in p.relative_to(root).parts)}


def test_incomplete_output_is_refused(built_out, capsys):
    from obelics_builder.commands import publish as cmd

    p = argparse.ArgumentParser()
    cmd.add_arguments(p)
    assert check_complete(built_out) == []
    (built_out / "dataset" / "README.md").rename(built_out / "card.bak")
    assert cmd.run(p.parse_args([str(built_out), "--repo-id", "me/ds", "--dry-run"])) == 2
    err = capsys.readouterr().err
    assert "refusing to publish" in err and "README.md is missing" in err
    (built_out / "card.bak").rename(built_out / "dataset" / "README.md")

    shard = next((built_out / "dataset" / "data").glob("train-00001-*.parquet"))
    shard.rename(built_out / "shard.bak")
    problems = check_complete(built_out)
    assert any("incomplete" in p for p in problems) and any("listed in shards.json is missing" in p for p in problems)
    (built_out / "shard.bak").rename(shard)

    (built_out / "stats.json").rename(built_out / "stats.bak")
    assert any("stats.json is missing" in p for p in check_complete(built_out))
    (built_out / "stats.bak").rename(built_out / "stats.json")

    (built_out / "dataset" / "data" / ".train-00009.parquet.tmp").write_bytes(b"partial")
    assert any("interrupted" in p for p in check_complete(built_out))
    (built_out / "dataset" / "data" / ".train-00009.parquet.tmp").unlink()
    assert check_complete(built_out) == []
    with pytest.raises(PublishError, match="invalid repository id"):
        publish(built_out, "bad id!", dry_run=True)


def test_dry_run_prints_the_plan(built_out, capsys, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    result = publish(built_out, "me/ds", dry_run=True, max_files=3)  # no token needed, nothing sent
    out = capsys.readouterr().out
    files = local_files(built_out)
    assert sum(len(b) for b in result["batches"]) == len(files)
    assert all(len(b) <= 3 for b in result["batches"])
    assert result["batches"][-1] == ["shards.json", "funnel.png", "README.md"]  # the card goes last
    for path, data in files.items():
        assert f"  {path}  {len(data)} bytes" in out
    assert f"in {len(result['batches'])} commit(s)" in out


def test_commit_pacer_keeps_under_the_rate():
    now = [0.0]
    slept = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    pacer = CommitPacer(3, sleep=sleep, clock=lambda: now[0])
    for _ in range(3):
        pacer.wait()
        now[0] += 10
    pacer.wait()  # 4th commit within the hour: waits until the first is an hour old
    assert slept == [3600 - 30]


def test_publish_through_the_real_client(built_out, tmp_path):
    with FakeHub() as hub:
        # an earlier publication left a shard this build does not have
        hub.repos["me/obelics-test"] = {"type": "dataset", "private": False, "head": "0" * 40,
                                        "branches": {"main": {"data/train-00005-of-00009.parquet": {
                                            "size": 3, "oid": "x", "sha256": "y", "data": b"old", "lfs": True}}}}
        hub.fail_commit = {2: 500}  # the 2nd commit fails once: an interrupted upload
        r1 = run_publish(built_out, hub.endpoint, "--repo-id", "me/obelics-test", "--private",
                         "--max-files-per-commit", "3", home=tmp_path / "hf")
        assert r1.returncode == 1, r1.stderr
        assert "rerun the same command to resume" in r1.stderr
        assert len(hub.commits) == 1
        uploaded_before = set(hub.lfs_uploads)

        r2 = run_publish(built_out, hub.endpoint, "--repo-id", "me/obelics-test", "--private",
                         "--max-files-per-commit", "3", home=tmp_path / "hf")
        assert r2.returncode == 0, r2.stderr
        assert hub.unknown == []
        assert ("POST", "/api/repos/create") in hub.requests
        files = local_files(built_out)
        remote = hub.repos["me/obelics-test"]["branches"]["main"]
        assert {p: e["data"] for p, e in remote.items()} == files  # every file, same bytes; the stale shard is gone
        assert all(remote[p].get("lfs") for p in files if p.endswith(LFS_SUFFIXES))
        # resumed: nothing uploaded twice, the first commit's files were not committed again
        assert len(hub.lfs_uploads) == len(set(hub.lfs_uploads))
        assert not set(hub.commits[0]["added"]) & {p for c in hub.commits[1:] for p in c["added"]}
        assert uploaded_before <= set(hub.lfs_uploads)
        n_batches = len(plan_upload(built_out, max_files=3))
        assert len(hub.commits) == n_batches >= 3
        assert all(len(c["added"]) <= 3 for c in hub.commits)
        assert hub.commits[-1]["added"] == ["shards.json", "funnel.png", "README.md"]
        assert hub.commits[-1]["deleted"] == ["data/train-00005-of-00009.parquet"]
        assert hub.validated_yaml and hub.validated_yaml[-1]["configs"][0]["data_files"][0]["path"] == "data/train-*"
        # the token reached the server, and nothing else
        assert f"Bearer {TOKEN}" in hub.auth
        for r in (r1, r2):
            assert TOKEN not in r.stdout and TOKEN not in r.stderr
            assert TOKEN[3:20] not in r.stdout + r.stderr
        assert "debug" in r2.stderr.lower() or "DEBUG" in r2.stderr  # logging was really on

        # a third run changes nothing: no upload, no commit
        n_commits, n_uploads = len(hub.commits), len(hub.lfs_uploads)
        r3 = run_publish(built_out, hub.endpoint, "--repo-id", "me/obelics-test", home=tmp_path / "hf")
        assert r3.returncode == 0, r3.stderr
        assert (len(hub.commits), len(hub.lfs_uploads)) == (n_commits, n_uploads)


def test_publish_new_repo_on_a_branch_with_rate_limit_retry(built_out, tmp_path):
    with FakeHub() as hub:
        hub.fail_commit = {1: 429}
        r = run_publish(built_out, hub.endpoint, "--repo-id", "org/fresh", "--revision", "v1", home=tmp_path / "hf")
        assert r.returncode == 0, r.stderr
        assert hub.unknown == []
        repo = hub.repos["org/fresh"]
        assert repo["type"] == "dataset" and repo["private"] is False
        assert ("POST", "/api/datasets/org/fresh/branch/v1") in hub.requests
        assert {p: e["data"] for p, e in repo["branches"]["v1"].items()} == local_files(built_out)
        assert repo["branches"]["main"] == {}
        assert hub.commit_attempts == len(hub.commits) + 1  # the 429 was retried
        assert TOKEN not in r.stdout + r.stderr


def test_publish_without_token_is_refused(built_out, tmp_path):
    with FakeHub() as hub:
        r = run_publish(built_out, hub.endpoint, "--repo-id", "me/x", token=None, home=tmp_path / "empty-hf-home")
        assert r.returncode == 2
        assert "no Hugging Face token" in r.stderr
        assert hub.requests == []
