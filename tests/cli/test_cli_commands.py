"""Every CLI command on a local store, in-process through click's CliRunner."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from scribestore import ObjectStore, Project, Repository
from scribestore.cli import EXIT_CODES
from scribestore.store.hashing import hash_bytes
from support.cli import (
    damage,
    error_line,
    invoke,
    invoke_json,
    make_project,
    make_repo,
    object_file,
)


@pytest.fixture
def repo_path(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "store")


# --- log --------------------------------------------------------------------------


def test_log_file_creates_manifest_and_file_version(tmp_path: Path) -> None:
    data = os.urandom(50_000)
    src = tmp_path / "weights.bin"
    src.write_bytes(data)
    manifest = tmp_path / "store" / "repository.json"
    result = invoke("log", manifest, "weights", src)
    assert result.exit_code == 0, result.stderr
    assert "logged weights@0" in result.stdout
    repo = Repository(manifest, mode="r")
    meta = repo.get_artifact_metadata("weights")
    assert (meta["handler"], meta["size"], meta["hash"]) == ("file", len(data), hash_bytes(data))
    with repo.open_artifact("weights") as stream:
        assert stream.read() == data
    again = invoke_json("log", manifest, "weights", src)
    assert [m["version"] for m in again] == [1]


def test_log_directory_is_one_artifact_per_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "dataset"
    (data_dir / "nested").mkdir(parents=True)
    (data_dir / "a.csv").write_text("x,y\n1,2\n")
    (data_dir / "nested" / "b.txt").write_text("hello")
    manifest = tmp_path / "repository.json"
    logged = invoke_json("log", manifest, "data", data_dir)
    assert [m["name"] for m in logged] == ["data/a.csv", "data/nested/b.txt"]
    repo = Repository(manifest, mode="r")
    with repo.open_artifact("data/nested/b.txt") as stream:
        assert stream.read() == b"hello"


def test_log_quiet_prints_nothing(tmp_path: Path) -> None:
    src = tmp_path / "f.bin"
    src.write_bytes(b"abc")
    result = invoke("log", tmp_path / "repository.json", "f", src, "--quiet")
    assert result.exit_code == 0
    assert result.stdout == ""


def test_log_bad_input(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    manifest = tmp_path / "repository.json"
    result = invoke("log", manifest, "x", empty)
    assert result.exit_code == 2
    assert "holds no files" in error_line(result)
    assert invoke("log", manifest, "x", tmp_path / "missing.bin").exit_code == 2
    src = tmp_path / "f.bin"
    src.write_bytes(b"abc")
    result = invoke("log", manifest, "../escape", src)
    assert result.exit_code == 2
    assert "invalid artifact name" in error_line(result)
    assert not manifest.exists()


def test_log_into_a_project_manifest_is_refused(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    src = tmp_path / "f.bin"
    src.write_bytes(b"abc")
    result = invoke("log", project, "x", src)
    assert result.exit_code == 2
    assert "project manifest" in error_line(result)


# --- listing ----------------------------------------------------------------------


def test_ls(repo_path: Path) -> None:
    result = invoke("ls", repo_path)
    assert result.exit_code == 0
    assert "features" in result.stdout and "model" in result.stdout
    rows = {r["name"]: r for r in invoke_json("ls", repo_path)}
    repo = Repository(repo_path, mode="r")
    for name in ("features", "model"):
        latest = repo.get_artifact_metadata(name)
        assert rows[name]["versions"] == 2
        assert rows[name]["latest_version"] == 1
        assert rows[name]["size"] == latest["size"]
        assert rows[name]["stored_size"] == repo.objects.stat(latest["hash"]).stored_size


def test_ls_empty_repository(tmp_path: Path) -> None:
    Repository(tmp_path / "repository.json", mode="w").save()
    assert "no artifacts" in invoke("ls", tmp_path / "repository.json").stdout
    assert invoke_json("ls", tmp_path / "repository.json") == []


def test_history(repo_path: Path) -> None:
    result = invoke("history", repo_path, "model")
    assert result.exit_code == 0
    assert len(result.stdout.strip().splitlines()) == 3  # header + 2 versions
    versions = invoke_json("history", repo_path, "model")
    assert [v["version"] for v in versions] == [0, 1]
    missing = invoke("history", repo_path, "nope")
    assert missing.exit_code == 3
    assert "no artifact named 'nope'" in error_line(missing)


def test_show_by_number_timestamp_and_asof(repo_path: Path) -> None:
    latest = invoke_json("show", repo_path, "features")
    assert latest["version"] == 1
    first = invoke_json("show", repo_path, "features@0")
    assert first["version"] == 0
    assert first["stored_size"] > 0
    assert invoke_json("show", repo_path, f"features@{first['timestamp']}")["version"] == 0
    model0 = invoke_json("show", repo_path, "model@0")
    asof = invoke_json("show", repo_path, f"model@{model0['timestamp']}", "--asof")
    assert asof["version"] == 0
    text = invoke("show", repo_path, "features@0")
    assert "hash:" in text.stdout and first["hash"] in text.stdout


@pytest.mark.parametrize(
    ("ref", "extra", "code"),
    [
        ("features@9", (), 3),
        ("nope", (), 3),
        ("features@yesterday", (), 3),  # an alias that does not exist
        ("features@2026-13-45T00:00:00", (), 2),
        ("features@bad alias!", (), 2),
        ("features@0", ("--asof",), 2),
        ("features@2000-01-01T00:00:00", ("--asof",), 3),
        ("@1", (), 2),
    ],
)
def test_show_errors(repo_path: Path, ref: str, extra: tuple[str, ...], code: int) -> None:
    result = invoke("show", repo_path, ref, *extra)
    assert result.exit_code == code
    error_line(result)


# --- export -----------------------------------------------------------------------


def test_get_to_file_and_directory(repo_path: Path, tmp_path: Path) -> None:
    repo = Repository(repo_path, mode="r")
    with repo.open_artifact("model", version=0) as stream:
        expected = stream.read()
    dest = tmp_path / "out.bin"
    result = invoke("get", repo_path, "model@0", dest)
    assert result.exit_code == 0, result.stderr
    assert "verified" in result.stdout
    assert dest.read_bytes() == expected
    outdir = tmp_path / "outdir"
    outdir.mkdir()
    meta = invoke_json("get", repo_path, "model@0", outdir)
    assert Path(meta["path"]) == outdir / meta["fname"]
    assert Path(meta["path"]).read_bytes() == expected


def test_get_refuses_to_overwrite_without_force(repo_path: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"keep me")
    result = invoke("get", repo_path, "model", dest)
    assert result.exit_code == 2
    assert "--force" in error_line(result)
    assert dest.read_bytes() == b"keep me"
    assert invoke("get", repo_path, "model", dest, "--force").exit_code == 0
    assert dest.read_bytes() != b"keep me"


def test_get_missing_directory(repo_path: Path, tmp_path: Path) -> None:
    result = invoke("get", repo_path, "model", tmp_path / "no" / "such" / "out.bin")
    assert result.exit_code == 3
    error_line(result)


def test_get_corrupt_version_leaves_dest_untouched(repo_path: Path, tmp_path: Path) -> None:
    meta = Repository(repo_path, mode="r").get_artifact_metadata("model", version=1)
    damage(object_file(repo_path, meta["hash"]))
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"previous")
    result = invoke("get", repo_path, "model@1", dest, "--force")
    assert result.exit_code == 4
    assert "integrity check failed" in error_line(result)
    assert dest.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out.bin")) == []


def test_cat(repo_path: Path) -> None:
    result = invoke("cat", repo_path, "features@0")
    assert result.exit_code == 0
    assert json.loads(result.stdout_bytes) == {"a": 1, "b": [1, 2]}
    repo = Repository(repo_path, mode="r")
    with repo.open_artifact("model") as stream:
        assert invoke("cat", repo_path, "model").stdout_bytes == stream.read()


def test_cat_corrupt_exits_4(repo_path: Path) -> None:
    meta = Repository(repo_path, mode="r").get_artifact_metadata("model", version=0)
    damage(object_file(repo_path, meta["hash"]))
    result = invoke("cat", repo_path, "model@0")
    assert result.exit_code == 4
    error_line(result)


# --- diff and promote --------------------------------------------------------------


def test_diff_text_and_binary(repo_path: Path) -> None:
    result = invoke("diff", repo_path, "features", "1", "0")
    assert result.exit_code == 0
    assert '-  "a": 1,' in result.stdout and '+  "a": 2,' in result.stdout
    assert result.stdout.startswith("--- features@0")
    same = invoke("diff", repo_path, "features", "0", "0")
    assert "no differences" in same.stdout
    binary = invoke_json("diff", repo_path, "model", "0", "1")
    assert binary["binary"] is True and binary["identical"] is False and binary["diff"] is None
    assert "differ" in invoke("diff", repo_path, "model", "0", "1").stdout
    assert invoke("diff", repo_path, "model", "0", "7").exit_code == 3


def test_promote(tmp_path: Path) -> None:
    project = make_project(tmp_path / "s")
    repo = tmp_path / "s" / "repository.json"
    result = invoke("promote", project, "exp", "config", repo)
    assert result.exit_code == 0, result.stderr
    assert "promoted config" in result.stdout
    reread = Repository(repo, mode="r")
    assert reread.load_artifact("config") == {"lr": 0.1}
    again = invoke("promote", project, "exp", "config", repo)
    assert again.exit_code == 1  # not newer than the repository's latest
    assert "not newer" in error_line(again)
    unknown = invoke("promote", project, "nope", "config", repo)
    assert unknown.exit_code == 3
    assert "no experiment" in error_line(unknown)
    wrong = invoke("promote", repo, "exp", "config", repo)
    assert wrong.exit_code == 2


def test_promote_to_another_store_copies(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    repo = tmp_path / "r" / "repository.json"
    meta = invoke_json("promote", project, "exp", "config", repo)
    assert meta["version"] == 0
    assert Repository(repo, mode="r").load_artifact("config") == {"lr": 0.1}


# --- verify, du, gc -----------------------------------------------------------------


def test_verify_ok(repo_path: Path) -> None:
    result = invoke("verify", repo_path)
    assert result.exit_code == 0, result.stderr
    assert "4 version(s) checked: 4 ok" in result.stdout
    report = invoke_json("verify", repo_path)
    assert report["versions"] == report["ok"] == 4
    assert {r["status"] for r in report["results"]} == {"ok"}


def test_verify_reports_corrupt_and_missing(repo_path: Path) -> None:
    repo = Repository(repo_path, mode="r")
    damage(object_file(repo_path, repo.get_artifact_metadata("model", version=0)["hash"]))
    object_file(repo_path, repo.get_artifact_metadata("features", version=1)["hash"]).unlink()
    result = invoke("verify", repo_path, "--json")
    assert result.exit_code == 4
    assert "2 of 4 version(s)" in error_line(result)
    report = json.loads(result.stdout)
    status = {(r["artifact"], r["version"]): r["status"] for r in report["results"]}
    assert status == {
        ("features", 0): "ok",
        ("features", 1): "missing",
        ("model", 0): "corrupt",
        ("model", 1): "ok",
    }
    quiet = invoke("verify", repo_path, "--quiet")
    assert "MISSING" in quiet.stdout and "CORRUPT" in quiet.stdout and "OK " not in quiet.stdout


def test_verify_project(tmp_path: Path) -> None:
    manifest = make_project(tmp_path / "p")
    report = invoke_json("verify", manifest)
    assert report["versions"] == report["ok"] == 2
    assert all(r["experiment"].startswith("exp-") for r in report["results"])
    assert {r["test"] for r in report["results"]} == {None, "holdout"}
    exp = Project(manifest, mode="r").experiments[0]
    object_file(manifest, exp.tests[0].to_dict()["artifacts"][0]["hash"]).unlink()
    result = invoke("verify", manifest, "--json")
    assert result.exit_code == 4
    status = {r["test"]: r["status"] for r in json.loads(result.stdout)["results"]}
    assert status == {None: "ok", "holdout": "missing"}


def test_du(repo_path: Path) -> None:
    data = invoke_json("du", repo_path)
    repo = Repository(repo_path, mode="r")
    sizes = [m["size"] for m in repo]
    stats = repo.objects.stats()
    assert data["versions"] == 4
    assert data["logical_bytes"] == sum(sizes)
    assert 0 < data["stored_bytes"] <= stats.stored_size == data["store"]["stored_bytes"]
    assert data["dedup_ratio"] == pytest.approx(sum(sizes) / data["stored_bytes"], rel=1e-3)
    assert data["missing_objects"] == 0
    text = invoke("du", repo_path).stdout
    assert "dedup ratio" in text and "logical" in text


def test_du_counts_duplicates_once(tmp_path: Path) -> None:
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(100_000))
    manifest = tmp_path / "s" / "repository.json"
    for _ in range(3):
        invoke("log", manifest, "f", src)
    data = invoke_json("du", manifest)
    assert data["versions"] == 3 and data["distinct_contents"] == 1
    assert data["logical_bytes"] == 300_000
    assert data["dedup_ratio"] > 2.5


def test_du_of_a_project_counts_its_own_bytes_not_the_shared_store(tmp_path: Path) -> None:
    """A project beside a large repository: its figures are its own."""
    repo = Repository(tmp_path / "s" / "repository.json", mode="w")
    repo.log_artifact("big", os.urandom(3 << 20), "bytes")
    repo.save()
    project = Project(tmp_path / "s" / "project.json", mode="w")
    for name in ("a", "b"):
        with project.log(name) as exp:
            exp.log_artifact("preds", list(range(20_000)), "json")  # the same bytes twice
    project.save()
    data = invoke_json("du", tmp_path / "s" / "project.json")
    assert data["versions"] == 2 and data["distinct_contents"] == 1
    assert data["stored_bytes"] < 200_000 < data["store"]["stored_bytes"]
    assert data["dedup_ratio"] > 1.9  # two copies of compressible JSON, stored once


def test_gc_stops_on_a_missing_manifest_until_forgotten(tmp_path: Path) -> None:
    manifest = make_repo(tmp_path / "s")
    project = tmp_path / "s" / "project.json"
    p = Project(project, mode="w")
    with p.log("exp") as exp:
        exp.log_artifact("preds", [1, 2], "json")
    p.save()
    project.rename(tmp_path / "moved-away.json")
    result = invoke("gc", manifest, "--grace", "0")
    assert result.exit_code != 0
    assert "project.json" in error_line(result) and "--forget" in error_line(result)
    report = invoke_json("gc", manifest, "--grace", "0", "--forget", str(project))
    assert report["forgotten"] == [str(project)]


def test_fsck_reports_and_repairs(tmp_path: Path) -> None:
    manifest = make_repo(tmp_path / "s")
    store = ObjectStore(tmp_path / "s" / "objects")
    assert invoke_json("fsck", manifest)["ok"] is True
    orphan = "3" * 32
    store.storage.write_new(f"packs/{orphan}.pack", [b"SSPK\x02\x00\x00\x00"])
    digest = next(iter(store))
    path = tmp_path / "s" / "objects" / digest[:2] / digest
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.unlink()
    path.write_bytes(bytes(data))
    os.symlink("/dev/zero", tmp_path / "s" / "objects" / "planted")
    result = invoke("fsck", manifest)
    assert EXIT_CODES[result.exit_code].startswith("integrity")
    assert digest in result.stdout and "planted" in result.stdout
    repaired = invoke("fsck", manifest, "--repair", "--json")
    assert EXIT_CODES[repaired.exit_code].startswith("integrity")
    report = json.loads(repaired.stdout)
    assert report["repaired"]["removed_orphan_packs"] == [orphan]
    assert not (tmp_path / "s" / "objects" / "packs" / f"{orphan}.pack").exists()
    assert report["ok"] is False  # the damaged object needs its artifact logged again


def test_fsck_repair_rebuilds_a_damaged_pack_index(tmp_path: Path) -> None:
    manifest = make_repo(tmp_path / "s", model=os.urandom(5 << 20))
    packs = tmp_path / "s" / "objects" / "packs"
    [index] = sorted(packs.glob("*.idx"))[:1]
    good = index.read_bytes()
    index.unlink()
    index.write_bytes(good[:-100])  # truncated, as by a power cut
    checked = invoke("fsck", manifest)
    assert EXIT_CODES[checked.exit_code].startswith("integrity")
    assert index.name in checked.stdout and "--repair" in checked.stdout
    report = invoke_json("fsck", manifest, "--repair")
    assert report["repaired"]["rebuilt_indexes"] == [index.stem]
    assert report["ok"] is True and index.read_bytes() == good


def _repo_with_stored_name(tmp_path: Path, fname: str) -> tuple[Path, str]:
    """A repository whose first artifact's version 0 records ``fname``, as a
    crafted manifest could: (the manifest, the artifact's name)."""
    from support.helpers import seal

    manifest = make_repo(tmp_path / "s")
    doc = json.loads(manifest.read_text())
    name = next(iter(doc["artifacts"]))
    doc["artifacts"][name][0]["fname"] = fname
    manifest.write_bytes(seal(doc))
    return manifest, name


def test_get_refuses_a_crafted_export_name(tmp_path: Path) -> None:
    manifest, name = _repo_with_stored_name(tmp_path, "../../escaped.bin")
    dest = tmp_path / "dest"
    dest.mkdir()
    result = invoke("get", manifest, f"{name}@0", dest)
    assert result.exit_code != 0
    assert not (tmp_path / "escaped.bin").exists() and list(dest.iterdir()) == []


def test_get_refuses_a_stored_name_through_a_symlink(tmp_path: Path) -> None:
    manifest, name = _repo_with_stored_name(tmp_path, "cfg/victim.bin")
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    (dest / "cfg").symlink_to(outside)
    result = invoke("get", manifest, f"{name}@0", dest, "--force")
    assert result.exit_code != 0 and "symlink" in result.stderr
    assert list(outside.iterdir()) == []


def test_gc_with_the_real_collector(tmp_path: Path) -> None:
    manifest = make_repo(tmp_path / "s")
    store = ObjectStore(tmp_path / "s" / "objects")
    stray = store.put(b"nobody references this object")
    before = invoke_json("du", manifest)["store"]["objects"]
    dry = invoke_json("gc", manifest, "--dry-run", "--grace", "0")
    assert dry["dry_run"] is True
    assert invoke_json("du", manifest)["store"]["objects"] == before
    result = invoke("gc", manifest, "--grace", "0")
    assert result.exit_code == 0, result.stderr
    assert not store.has(stray)
    assert invoke("verify", manifest).exit_code == 0  # everything referenced survived


# --- manifests that are not what they should be -----------------------------------------


def test_missing_and_corrupt_manifests(tmp_path: Path) -> None:
    missing = invoke("ls", tmp_path / "nothing.json")
    assert missing.exit_code == 3
    assert "no manifest" in error_line(missing)
    bad = tmp_path / "repository.json"
    bad.write_text("{not json")
    result = invoke("ls", bad)
    assert result.exit_code == 4
    error_line(result)
    lazy = tmp_path / "lazy.json"
    lazy.write_text("[]")
    result = invoke("verify", lazy)
    assert result.exit_code == 4
    assert "import-lazyscribe" in error_line(result)
