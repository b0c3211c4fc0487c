"""Garbage collection on every backend."""

from __future__ import annotations

import datetime as dt
import os
import random
import time
from pathlib import Path

import pytest

from scribestore import (
    CorruptManifestError,
    MissingManifestError,
    ObjectStore,
    Project,
    Repository,
)
from scribestore.ops.gc import collect_garbage
from scribestore.storage import open_storage
from scribestore.store.layout import PACK_DIR, object_path
from support.clock import writer_clock_ahead
from support.helpers import spoil_pack_table
from support.locations import Location
from support.progress import Recorder

NOW = dt.timedelta(0)


def store_at(loc: Location) -> ObjectStore:
    return ObjectStore(loc.join("objects"), **loc.options)


def setup_store(loc: Location) -> tuple[Repository, Project, list[str]]:
    repo = Repository(loc.join("repository.json"), **loc.options)
    repo.log_artifact("model", b"model bytes v1" * 100, "bytes")
    repo.log_artifact("model", random.Random(1).randbytes(5 << 20), "bytes")  # chunked
    repo.save()
    project = Project(loc.join("project.json"), **loc.options)
    with project.log("exp") as exp:
        exp.log_artifact("preds", [1, 2, 3], "json")
    project.save()
    store = store_at(loc)
    orphans = [store.put(b"orphan %d" % i * 50) for i in range(3)]
    return repo, project, orphans


def all_load(loc: Location) -> None:
    repo = Repository(loc.join("repository.json"), mode="r", **loc.options)
    assert repo.load_artifact("model", version=0) == b"model bytes v1" * 100
    assert repo.load_artifact("model", version=1) == random.Random(1).randbytes(5 << 20)
    project = Project(loc.join("project.json"), mode="r", **loc.options)
    assert project["exp"].load_artifact("preds") == [1, 2, 3]


def test_gc_deletes_only_unreferenced_objects(location: Location) -> None:
    _, _, orphans = setup_store(location)
    store = store_at(location)
    report = collect_garbage(store, grace=NOW)
    assert set(report.deleted_objects) == set(orphans)
    assert len(report.manifests) == 2  # found from the store: repository and project
    assert report.freed_bytes > 0
    assert not any(store.has(d) for d in orphans)
    all_load(location)
    again = collect_garbage(store, grace=NOW)
    assert again.deleted_objects == () and again.freed_bytes == 0


def _phases(recorder: Recorder) -> list[tuple[str, int | None, int]]:
    """(description, total, advanced) of each phase the recorder saw."""
    phases: list[tuple[str, int | None, int]] = []
    for kind, arg in recorder.calls:
        if kind == "start":
            total, desc = arg  # type: ignore[misc]
            phases.append((desc, total, 0))
        elif kind == "advance":
            desc, total, done = phases[-1]
            phases[-1] = (desc, total, done + int(arg))  # type: ignore[call-overload]
    return phases


@pytest.mark.parametrize("dry_run", [False, True])
def test_gc_reports_each_phase_counting_files(location: Location, dry_run: bool) -> None:
    _, _, orphans = setup_store(location)
    store = store_at(location)
    files = len(list(store.storage.list()))
    recorder = Recorder()
    report = collect_garbage(store, grace=NOW, dry_run=dry_run, progress=recorder)
    names = [desc for desc, _, _ in _phases(recorder)]
    expected = ["gc: marking", "gc: surveying", "gc: checking" if dry_run else "gc: deleting"]
    if not dry_run:
        expected.insert(2, "gc: marking again (saves wait)")
    assert names == expected
    for desc, total, done in _phases(recorder):
        assert done == total, desc  # every bar ends full
    phases = {desc: total for desc, total, _ in _phases(recorder)}
    assert phases["gc: marking"] == 2  # the repository and the project
    assert phases["gc: surveying"] == files
    assert phases[expected[-1]] >= len(orphans) == len(report.deleted_objects)
    assert recorder.closed


def test_gc_bars_end_full_when_a_recipe_is_damaged(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json")
    repo.log_artifact("model", random.Random(7).randbytes(6 << 20), "bytes")
    repo.save()
    store = ObjectStore(tmp_path / "objects")
    digest = repo.saved_versions()["model"][0].hash
    path = tmp_path / "objects" / object_path(digest)
    path.write_bytes(path.read_bytes()[:-7])  # a truncated recipe
    recorder = Recorder()
    collect_garbage(store, grace=NOW, progress=recorder)
    assert all(done == total for _, total, done in _phases(recorder))


def test_grace_period_protects_young_objects(location: Location) -> None:
    _, _, orphans = setup_store(location)
    store = store_at(location)
    report = collect_garbage(store)  # default: one hour
    assert report.deleted_objects == ()
    assert report.kept_young >= len(orphans)
    assert all(store.has(d) for d in orphans)


def test_dry_run_changes_nothing(location: Location) -> None:
    _, _, orphans = setup_store(location)
    store = store_at(location)
    listing = list(store.storage.list())
    sizes = sum(store.storage.size(object_path(d)) for d in orphans)
    report = collect_garbage(store, grace=NOW, dry_run=True)
    assert report.dry_run and set(report.deleted_objects) == set(orphans)
    assert report.freed_bytes == sizes
    assert list(store.storage.list()) == listing


def test_dead_packs_are_condemned_then_deleted(location: Location) -> None:
    setup_store(location)
    store = store_at(location)
    orphan = store.put(random.Random(2).randbytes(6 << 20))
    packs_before = [p for p in store.storage.list(PACK_DIR) if p.endswith(".pack")]
    first = collect_garbage(store, grace=NOW)
    assert orphan in first.deleted_objects
    assert len(first.condemned_packs) == 1 and first.deleted_packs == ()
    all_load(location)
    second = collect_garbage(store, grace=NOW)
    assert second.deleted_packs == first.condemned_packs
    packs_after = [p for p in store.storage.list(PACK_DIR) if p.endswith(".pack")]
    assert len(packs_after) == len(packs_before) - 1
    all_load(location)


def test_condemned_pack_whose_chunks_were_stored_again_is_deleted(location: Location) -> None:
    setup_store(location)
    store = store_at(location)
    data = random.Random(3).randbytes(6 << 20)
    store.put(data)
    first = collect_garbage(store, grace=NOW)
    assert len(first.condemned_packs) == 1
    # A new version with the same bytes: writers do not reuse condemned chunks,
    # so it is stored again, and the condemned pack is needed by nothing.
    repo = Repository(location.join("repository.json"), **location.options)
    repo.log_artifact("again", data, "bytes")
    repo.save()
    second = collect_garbage(store, grace=NOW)
    assert second.rescued_packs == ()
    assert second.deleted_packs == first.condemned_packs
    reader = Repository(location.join("repository.json"), mode="r", **location.options)
    assert reader.load_artifact("again") == data


def test_condemned_pack_is_rescued_when_a_live_chunk_is_only_there(
    location: Location, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_store(location)
    store = store_at(location)
    data = random.Random(3).randbytes(6 << 20)
    src = tmp_path / "again.bin"
    src.write_bytes(data)
    past = time.time() - 60  # older than its hashing: the stat cache may trust it
    os.utime(src, (past, past))
    writer_clock_ahead(monkeypatch, 60)  # and its change time too
    digest = store.put(src)
    recipe = store.storage.read_bytes(object_path(digest))
    first = collect_garbage(store, grace=NOW)
    assert digest in first.deleted_objects and len(first.condemned_packs) == 1
    # A save that named the condemned chunks before the marker was written: the
    # stat cache names the file, its object is found intact and no chunk is
    # written, so the version saved needs the condemned pack.
    store.storage.write_new(object_path(digest), (recipe,))
    repo = Repository(location.join("repository.json"), **location.options)
    repo.log_artifact("again", src, "file")
    repo.save()
    second = collect_garbage(store, grace=NOW)
    assert second.rescued_packs == first.condemned_packs
    assert second.deleted_packs == ()
    reader = Repository(location.join("repository.json"), mode="r", **location.options)
    assert reader.load_artifact("again", dest=tmp_path / "out.bin").read_bytes() == data


def test_unreadable_manifest_stops_gc(location: Location) -> None:
    _, _, orphans = setup_store(location)
    open_storage(location.url, **location.options).write_atomic("repository.json", b"{trunc")
    store = store_at(location)
    with pytest.raises(CorruptManifestError):
        collect_garbage(store, grace=NOW)
    assert all(store.has(d) for d in orphans)


def test_missing_manifest_stops_gc_until_forgotten(location: Location) -> None:
    _, _, orphans = setup_store(location)
    # Moved away: neither the record nor a scan of the store's tree finds it.
    storage = open_storage(location.url, **location.options)
    storage.write_atomic("elsewhere.bin", storage.read_bytes("project.json"))
    storage.delete("project.json")
    store = store_at(location)
    with pytest.raises(MissingManifestError, match=r"project\.json"):
        collect_garbage(store, grace=NOW)
    assert all(store.has(d) for d in orphans)
    gone = location.join("project.json")
    if location.backend == "local":
        gone = str(Path(location.url) / "project.json")
    report = collect_garbage(store, grace=NOW, forget=[gone])
    assert report.forgotten == (gone,)
    assert len(report.manifests) == 1
    assert set(orphans) <= set(report.deleted_objects)
    # The record is gone: the next run does not stop on it.
    assert collect_garbage(store, grace=NOW).forgotten == ()


_WRITER = """
import json, sys
from scribestore import Repository
fpath, tag, n = (json.loads(a) for a in sys.argv[1:])
for i in range(n):
    repo = Repository(fpath, mode="a")
    repo.log_artifact(f"a{tag}", f"{tag}-{i}" * 1000, "text")
    repo.log_artifact("shared", "same bytes every time" * 100, "text")
    repo.save()
print("done")
"""


@pytest.mark.slow
def test_gc_while_writers_save(tmp_path) -> None:
    from support.helpers import python_child

    fpath = str(tmp_path / "repository.json")
    store = ObjectStore(tmp_path / "objects")
    stale = [store.put(b"stale %d" % i * 100) for i in range(5)]
    time.sleep(1.2)
    procs = [python_child(_WRITER, fpath, t, 15) for t in range(3)]
    grace = dt.timedelta(seconds=1)
    deleted: set[str] = set()
    while any(p.poll() is None for p in procs):
        deleted |= set(collect_garbage(store, grace=grace).deleted_objects)
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    deleted |= set(collect_garbage(store, grace=grace).deleted_objects)
    assert set(stale) <= deleted
    repo = Repository(fpath, mode="r")
    for t in range(3):
        assert [repo.load_artifact(f"a{t}", version=i) for i in range(15)] == [
            f"{t}-{i}" * 1000 for i in range(15)
        ]
    assert len([m for m in repo if m["name"] == "shared"]) == 45
    assert repo.verify().problems == ()


def test_packs_and_markers_without_an_index_are_reclaimed(location: Location) -> None:
    setup_store(location)
    store = store_at(location)
    killed_save, killed_gc = "1" * 32, "2" * 32
    store.storage.write_new(f"{PACK_DIR}/{killed_save}.pack", [b"SSPK" + b"\x02" + bytes(3)])
    store.storage.write_new(f"{PACK_DIR}/{killed_gc}.pack", [b"SSPK" + b"\x02" + bytes(3)])
    store.storage.write_new(f"{PACK_DIR}/{killed_gc}.condemned", [b""])
    report = collect_garbage(store, grace=NOW)
    assert sorted(report.orphaned_packs) == [killed_save, killed_gc]
    left = [p for p in store.storage.list(PACK_DIR) if killed_save in p or killed_gc in p]
    assert left == []
    all_load(location)


def _point_first_entry_past_the_pack(store: ObjectStore) -> str:
    idx = next(p for p in store.storage.list(PACK_DIR) if p.endswith(".idx"))
    data = bytearray(store.storage.read_bytes(idx))
    data[16 + 32 : 16 + 40] = (2**40).to_bytes(8, "little")  # first entry's offset
    store.storage.delete(idx)
    store.storage.write_new(idx, [bytes(data)])
    return idx.rsplit("/", 1)[-1].split(".")[0]


def test_index_pointing_past_its_pack_is_read_from_the_pack(location: Location) -> None:
    setup_store(location)
    store = store_at(location)
    _point_first_entry_past_the_pack(store)
    report = collect_garbage(store, grace=NOW)
    assert report.skipped_packs == ()
    assert report.deleted_packs == () and report.condemned_packs == ()
    all_load(location)


def test_index_and_pack_table_both_damaged_skip_the_pack(location: Location) -> None:
    setup_store(location)
    store = store_at(location)
    pack_id = _point_first_entry_past_the_pack(store)
    spoil_pack_table(store.storage, pack_id)
    report = collect_garbage(store, grace=NOW)
    assert report.skipped_packs == (pack_id,)
    assert report.deleted_packs == () and report.condemned_packs == ()


def test_storage_failure_during_gc_is_a_storage_error(
    location: Location, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scribestore import StorageError

    setup_store(location)
    store = store_at(location)

    def refuse(path: str) -> None:
        raise PermissionError(13, "Read-only file system", path)

    monkeypatch.setattr(store.storage, "delete", refuse)
    with pytest.raises(StorageError, match="writable"):
        collect_garbage(store, grace=NOW)


def test_dry_run_reports_what_the_runs_will_free_and_when(location: Location) -> None:
    setup_store(location)
    store = store_at(location)
    store.put(random.Random(3).randbytes(6 << 20))  # a chunked orphan: its pack dies
    pack_bytes = sum(
        store.storage.size(p) for p in store.storage.list(PACK_DIR) if not p.endswith(".condemned")
    )
    dry = collect_garbage(store, grace=NOW, dry_run=True)
    real = collect_garbage(store, grace=NOW)
    for field in ("deleted_objects", "condemned_packs", "freed_bytes", "later_bytes"):
        assert getattr(dry, field) == getattr(real, field), field
    assert 0 < real.later_bytes < pack_bytes and real.next_run_after is not None
    assert real.next_run_after <= dt.datetime.now(dt.timezone.utc)  # zero grace: at once
    second = collect_garbage(store, grace=NOW)
    assert second.freed_bytes >= real.later_bytes
    assert second.later_bytes == 0 and second.next_run_after is None


def test_a_condemned_pack_waits_out_its_grace_period(location: Location) -> None:
    setup_store(location)
    store = store_at(location)
    store.put(random.Random(4).randbytes(6 << 20))
    collect_garbage(store, grace=NOW)  # condemns
    hour = dt.timedelta(hours=1)
    waiting = collect_garbage(store, grace=hour, dry_run=True)
    assert waiting.deleted_packs == () and waiting.later_bytes > 0
    assert waiting.next_run_after is not None
    ahead = waiting.next_run_after - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(minutes=55) < ahead <= hour


def test_cli_gc_says_when_a_second_run_frees_more(tmp_path) -> None:
    from support.cli import invoke, make_repo

    manifest = make_repo(tmp_path / "s")
    ObjectStore(tmp_path / "s" / "objects").put(random.Random(5).randbytes(6 << 20))
    result = invoke("gc", str(manifest), "--grace", "0")
    assert result.exit_code == 0, result.output
    assert "a second run after" in result.output and "more" in result.output
