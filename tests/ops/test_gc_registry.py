"""gc never deletes on an incomplete view of the manifests that use a store."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from scribestore import CorruptObjectError, MissingManifestError, ObjectStore, Project, Repository
from scribestore.ops.gc import collect_garbage
from scribestore.storage import open_storage
from scribestore.store.layout import MANIFESTS_DIR
from support.locations import Location

ZERO = dt.timedelta(0)


def _populate(url: str, options: dict) -> None:
    repo = Repository(f"{url}/repository.json", mode="w", **options)
    repo.log_artifact("model", b"repository bytes" * 300, "bytes")
    repo.save()
    project = Project(f"{url}/project.json", mode="w", **options)
    with project.log("exp") as exp:
        exp.log_artifact("preds", list(range(500)), "json")
    project.save()


def _all_load(url: str, options: dict) -> None:
    repo = Repository(f"{url}/repository.json", mode="r", **options)
    assert repo.load_artifact("model") == b"repository bytes" * 300
    project = Project(f"{url}/project.json", mode="r", **options)
    assert project["exp"].load_artifact("preds") == list(range(500))


def _records(loc_url: str, options: dict) -> list[str]:
    storage = open_storage(f"{loc_url}/objects", **options)
    return list(storage.list(MANIFESTS_DIR))


def test_records_of_manifests_in_the_tree_are_relative(location: Location) -> None:
    _populate(location.url, location.options)
    storage = open_storage(location.join("objects"), **location.options)
    paths = sorted(
        json.loads(storage.read_bytes(r))["path"] for r in _records(location.url, location.options)
    )
    assert paths == ["../project.json", "../repository.json"]


def test_deleted_record_does_not_lose_objects(location: Location) -> None:
    _populate(location.url, location.options)
    storage = open_storage(location.join("objects"), **location.options)
    for record in _records(location.url, location.options):
        storage.delete(record)  # every record gone: the tree scan still finds both
    report = collect_garbage(ObjectStore(location.join("objects"), **location.options), grace=ZERO)
    assert report.deleted_objects == ()
    _all_load(location.url, location.options)


def test_changed_record_url_stops_gc(location: Location) -> None:
    _populate(location.url, location.options)
    storage = open_storage(location.join("objects"), **location.options)
    for record in _records(location.url, location.options):
        ref = json.loads(storage.read_bytes(record))
        ref["path"] = ref["path"].replace("project", "projecT")
        storage.write_atomic(record, json.dumps(ref).encode())
    with pytest.raises(MissingManifestError, match="projecT"):
        collect_garbage(ObjectStore(location.join("objects"), **location.options), grace=ZERO)
    _all_load(location.url, location.options)


def test_damaged_record_stops_gc(location: Location) -> None:
    _populate(location.url, location.options)
    storage = open_storage(location.join("objects"), **location.options)
    record = _records(location.url, location.options)[0]
    storage.write_atomic(record, storage.read_bytes(record)[:-5])
    store = ObjectStore(location.join("objects"), **location.options)
    orphan = store.put(b"orphan" * 100)
    with pytest.raises(CorruptObjectError):
        collect_garbage(store, grace=ZERO)
    assert store.has(orphan)


def test_moved_store_keeps_every_object(tmp_path: Path) -> None:
    _populate(str(tmp_path / "a"), {})
    # A manifest outside the default layout: found through its record alone.
    repo = Repository(tmp_path / "a" / "sub" / "other.json", objects=tmp_path / "a" / "objects")
    repo.log_artifact("deep", b"deep bytes" * 100, "bytes")
    repo.save()
    shutil.move(tmp_path / "a", tmp_path / "b")
    report = collect_garbage(ObjectStore(tmp_path / "b" / "objects"), grace=ZERO)
    assert report.deleted_objects == ()
    assert len(report.manifests) == 3
    _all_load(str(tmp_path / "b"), {})
    moved = Repository(
        tmp_path / "b" / "sub" / "other.json", mode="r", objects=tmp_path / "b" / "objects"
    )
    assert moved.load_artifact("deep") == b"deep bytes" * 100


def test_copied_store_is_collected_on_its_own(tmp_path: Path) -> None:
    _populate(str(tmp_path / "a"), {})
    shutil.copytree(tmp_path / "a", tmp_path / "copy")
    report = collect_garbage(ObjectStore(tmp_path / "copy" / "objects"), grace=ZERO)
    assert report.deleted_objects == ()
    assert all(m.startswith(str(tmp_path / "copy")) for m in report.manifests)
    _all_load(str(tmp_path / "copy"), {})


def test_a_registration_that_cannot_be_written_is_a_save_error(tmp_path, monkeypatch) -> None:
    from scribestore import SaveError

    repo = Repository(tmp_path / "repository.json", mode="a")
    repo.log_artifact("a", 1, "json")
    real = repo.objects.storage.write_new

    def gone(path: str, chunks: object) -> bool:
        if path.startswith("manifests/"):
            raise FileNotFoundError(path)
        return real(path, chunks)  # type: ignore[arg-type]

    monkeypatch.setattr(repo.objects.storage, "write_new", gone)
    with pytest.raises(SaveError, match="could not register"):
        repo.save()
    assert not (tmp_path / "repository.json").exists()


def test_a_store_copied_to_another_backend_can_be_collected(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Records of manifests on local disk, in a store copied to S3: gc opens
    each manifest with the options of its own backend, not the store's."""
    import uuid

    from support.locations import S3_BUCKET

    objects = tmp_path / "store" / "objects"
    outside = Repository(tmp_path / "elsewhere" / "repository.json", mode="w", objects=objects)
    outside.log_artifact("model", b"weights" * 1000, "bytes")
    outside.save()  # registered by its absolute local path (outside the store's tree)
    server = request.getfixturevalue("s3_server")
    options = server.storage_options()
    url = f"s3://{S3_BUCKET}/{uuid.uuid4().hex[:12]}/objects"
    remote = open_storage(url, **options)
    local = open_storage(objects)
    for path in local.list():
        remote.write_new(path, (local.read_bytes(path),))
    report = collect_garbage(url, grace=ZERO, **options)
    assert str(tmp_path / "elsewhere" / "repository.json") in report.manifests
    assert report.deleted_objects == ()
    assert ObjectStore(url, **options).has(outside.get_artifact_metadata("model")["hash"])
