"""Experiment.promote_artifact: a manifest write when stores are shared, a
verified copy of only the missing objects when they are not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scribestore import (
    ArtifactLoadError,
    ArtifactLogError,
    IntegrityError,
    Project,
    ReadOnlyError,
    Repository,
    SaveError,
)
from scribestore.storage import open_storage
from scribestore.store.layout import object_path
from support.locations import Location, make_location


def objects_listing(loc: Location) -> list[tuple[str, int]]:
    """Object and pack files with their sizes (not the small records under
    manifests/ that say which manifests use the store)."""
    storage = open_storage(loc.join("objects"), **loc.options)
    return [(p, storage.size(p)) for p in storage.list() if not p.startswith("manifests/")]


def registrations(loc: Location) -> list[str]:
    return list(open_storage(loc.join("objects"), **loc.options).list("manifests"))


def saved_project(loc: Location, **artifacts: object) -> Project:
    project = Project(loc.join("project.json"), **loc.options)
    with project.log("exp") as exp:
        for name, value in artifacts.items():
            if isinstance(value, Path):
                exp.log_artifact(name, value, "file")
            else:
                exp.log_artifact(name, value, "bytes")
    project.save()
    return Project(loc.join("project.json"), mode="r", **loc.options)


@pytest.mark.slow
def test_shared_store_promotion_copies_no_bytes(location: Location, tmp_path: Path) -> None:
    big = tmp_path / "model.bin"
    block = os.urandom(1 << 20)
    with big.open("wb") as f:
        for i in range(256):
            f.write(block[i:] + block[:i])
    project = saved_project(location, model=big)
    before = objects_listing(location)
    repo = Repository(location.join("repository.json"), **location.options)
    assert repo.objects.same_location(project.objects)
    registered = registrations(location)
    project["exp"].promote_artifact(repo, "model")
    assert objects_listing(location) == before
    # The only new file: the record that the repository uses this store.
    assert len(registrations(location)) == len(registered) + 1
    reread = Repository(location.join("repository.json"), mode="r", **location.options)
    meta = reread.get_artifact_metadata("model")
    assert meta["size"] == 256 << 20
    assert meta["hash"] == project["exp"].to_dict()["artifacts"][0]["hash"]


def test_promoted_version_keeps_hash_handler_created_at(location: Location) -> None:
    project = saved_project(location, weights=b"\x01\x02" * 1000)
    before = objects_listing(location)
    repo = Repository(location.join("repository.json"), **location.options)
    exp = project["exp"]
    exp.promote_artifact(repo, "weights")
    assert objects_listing(location)[: len(before)] == before
    meta = Repository(
        location.join("repository.json"), mode="r", **location.options
    ).get_artifact_metadata("weights")
    source = exp.to_dict()["artifacts"][0]
    for key in ("hash", "handler", "timestamp", "size", "fname"):
        assert meta[key] == source[key]
    assert meta["version"] == 0


def test_promotion_errors(location: Location) -> None:
    project = saved_project(location, weights=b"abc")
    exp = project["exp"]
    repo = Repository(location.join("repository.json"), **location.options)
    with pytest.raises(ArtifactLoadError):
        exp.promote_artifact(repo, "missing")
    exp.promote_artifact(repo, "weights")
    with pytest.raises(ArtifactLogError, match="not newer"):
        exp.promote_artifact(repo, "weights")
    repo.log_artifact("other", b"x", "bytes")
    repo.save()
    ro = Repository(location.join("repository.json"), mode="r", **location.options)
    before = open_storage(location.url, **location.options).read_bytes("repository.json")
    project2 = Project(location.join("project.json"), **location.options)
    with project2.log("exp2") as exp2:
        exp2.log_artifact("other", b"y", "bytes")
    project2.save()
    with pytest.raises(ReadOnlyError):
        project2["exp2"].promote_artifact(ro, "other")
    after = open_storage(location.url, **location.options).read_bytes("repository.json")
    assert after == before


def test_failed_save_during_promotion_leaves_repository_unchanged(
    location: Location, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = saved_project(location, weights=b"abc" * 100)
    repo = Repository(location.join("repository.json"), **location.options)
    repo.log_artifact("keep", b"k", "bytes")
    repo.save()
    before = open_storage(location.url, **location.options).read_bytes("repository.json")

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    # Manifests are the only files written with update(): the commit fails.
    monkeypatch.setattr(type(repo.objects.storage), "update", fail)
    with pytest.raises(SaveError, match="disk full"):
        project["exp"].promote_artifact(repo, "weights")
    monkeypatch.undo()
    assert open_storage(location.url, **location.options).read_bytes("repository.json") == before
    assert "weights" not in repo
    project["exp"].promote_artifact(repo, "weights")  # a retry works
    assert "weights" in Repository(location.join("repository.json"), mode="r", **location.options)


@pytest.mark.parametrize("target_backend", ["memory", "s3", "local"])
def test_cross_store_promotion_copies_only_missing_objects(
    tmp_path: Path, request: pytest.FixtureRequest, target_backend: str
) -> None:
    source = Location("local", str(tmp_path / "src"))
    target = make_location(target_backend, tmp_path / "target-root", request)
    payload = os.urandom(300_000)
    project = saved_project(source, first=payload, second=payload, third=b"other bytes" * 10)
    repo = Repository(target.join("repository.json"), **target.options)
    assert not repo.objects.same_location(project.objects)
    exp = project["exp"]
    exp.promote_artifact(repo, "first")
    after_first = objects_listing(target)
    assert len(after_first) == 1
    exp.promote_artifact(repo, "second")  # same bytes: nothing to copy
    assert objects_listing(target) == after_first
    exp.promote_artifact(repo, "third")
    assert len(objects_listing(target)) == 2
    reread = Repository(target.join("repository.json"), mode="r", **target.options)
    assert reread.load_artifact("first") == payload
    assert reread.load_artifact("second") == payload


def test_cross_store_promotion_verifies_and_leaves_target_unchanged(tmp_path: Path) -> None:
    source = Location("local", str(tmp_path / "src"))
    target = Location("local", str(tmp_path / "dst"))
    project = saved_project(source, model=os.urandom(100_000))
    digest = project["exp"].to_dict()["artifacts"][0]["hash"]
    storage = open_storage(source.join("objects"))
    blob = storage.read_bytes(object_path(digest))
    storage.write_atomic(object_path(digest), blob[:-10] + bytes(10))
    repo = Repository(target.join("repository.json"))
    with pytest.raises(SaveError) as err:
        project["exp"].promote_artifact(repo, "model")
    assert isinstance(err.value.__cause__, IntegrityError)
    assert not (tmp_path / "dst" / "repository.json").exists()
    assert objects_listing(target) == []
    assert "model" not in repo


def test_unsaved_promotion_then_repository_save(location: Location) -> None:
    project = Project(location.join("project.json"), **location.options)
    repo = Repository(location.join("repository.json"), **location.options)
    with project.log("exp") as exp:
        exp.log_artifact("features", {"f": 1}, "json")
    exp.promote_artifact(repo, "features")
    assert objects_listing(location) == []
    repo.save()
    project.save()
    reread = Repository(location.join("repository.json"), mode="r", **location.options)
    assert reread.load_artifact("features") == {"f": 1}
    assert (
        reread.get_artifact_metadata("features")["hash"]
        == project["exp"].to_dict()["artifacts"][0]["hash"]
    )
