"""The journal: what a save replaces while dropping something stays restorable until gc
after the journal's retention."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from scribestore import (
    CorruptManifestError,
    IntegrityError,
    ObjectStore,
    Project,
    ReadOnlyError,
    Repository,
    VersionNotFoundError,
)
from scribestore.ops.gc import collect_garbage
from scribestore.storage import open_storage
from scribestore.store.layout import object_path
from support.cli import error_line, invoke, invoke_json
from support.locations import Location

NOW = dt.timedelta(0)


def _history(fpath: object, **options: object) -> Repository:
    repo = Repository(fpath, mode="a", **options)
    repo.log_artifact("model", b"first weights" * 50, "bytes")
    repo.save()
    repo.log_artifact("model", b"second weights" * 50, "bytes")
    repo.save()
    return repo


def _rewrite(fpath: object, **options: object) -> None:
    """What re-running a script that opens in mode "w" does."""
    again = Repository(fpath, mode="w", **options)
    again.log_artifact("model", b"rerun weights" * 50, "bytes")
    again.save()


def test_a_w_save_keeps_the_history_it_replaced_restorable(location: Location) -> None:
    fpath = location.join("repository.json")
    _history(fpath, **location.options)
    _rewrite(fpath, **location.options)
    repo = Repository(fpath, mode="a", **location.options)
    assert [m["version"] for m in repo] == [0]
    (entry,) = repo.journal()
    assert entry.reason == "save in mode 'w'"
    assert entry.replaced_by == getpass.getuser()
    assert entry.kind == "repository"
    repo.restore(entry.id)
    assert repo.load_artifact("model", version=1) == b"second weights" * 50
    fresh = Repository(fpath, mode="r", **location.options)
    assert [fresh.load_artifact("model", version=v) for v in (0, 1)] == [
        b"first weights" * 50,
        b"second weights" * 50,
    ]
    # The restore journaled the state it replaced: it can be undone.
    undo = fresh.journal()[-1]
    assert undo.reason == f"restore of {entry.id}"
    repo.restore(undo.id)
    assert Repository(fpath, mode="r", **location.options).load_artifact("model") == (
        b"rerun weights" * 50
    )


def test_saves_that_drop_nothing_write_no_journal(tmp_path: Path) -> None:
    fpath = tmp_path / "repository.json"
    repo = _history(fpath)
    repo.set_artifact_expiry("model", version=0)
    repo.save()
    repo.set_alias("model", "production")
    w_fresh = Repository(tmp_path / "other.json", mode="w")  # nothing to replace
    w_fresh.log_artifact("x", "y", "text")
    w_fresh.save()
    assert repo.journal() == [] and w_fresh.journal() == []
    assert not (tmp_path / "objects" / "journal").exists()


def test_gc_keeps_journaled_states_for_their_retention(tmp_path: Path) -> None:
    fpath = tmp_path / "repository.json"
    _history(fpath)
    _rewrite(fpath)
    report = collect_garbage(tmp_path / "objects", grace=NOW)
    assert report.deleted_objects == () and report.expired_journal == 0
    repo = Repository(fpath, mode="a")
    repo.restore(repo.journal()[0].id)
    assert repo.load_artifact("model", version=0) == b"first weights" * 50


def test_gc_past_the_retention_deletes_the_entries_then_what_only_they_kept(
    tmp_path: Path,
) -> None:
    fpath = tmp_path / "repository.json"
    old = _history(fpath)
    dropped = [m["hash"] for m in old]
    _rewrite(fpath)
    dry = collect_garbage(tmp_path / "objects", grace=NOW, keep_journal=NOW, dry_run=True)
    assert dry.expired_journal == 1
    assert Repository(fpath, mode="r").journal() != []
    report = collect_garbage(tmp_path / "objects", grace=NOW, keep_journal=NOW)
    assert report.expired_journal == 1
    assert set(dropped) <= set(report.deleted_objects)
    assert Repository(fpath, mode="r").journal() == []
    store = ObjectStore(tmp_path / "objects")
    assert not any(store.has(d) for d in dropped)
    assert Repository(fpath, mode="r").load_artifact("model") == b"rerun weights" * 50


def test_a_damaged_journaled_state_is_reported_and_fails_its_restore(tmp_path: Path) -> None:
    fpath = tmp_path / "repository.json"
    _history(fpath)
    _rewrite(fpath)
    repo = Repository(fpath, mode="a")
    (entry,) = repo.journal()
    path = tmp_path / "objects" / object_path(entry.digest)
    data = bytearray(path.read_bytes())
    data[-2] ^= 0xFF
    path.write_bytes(bytes(data))
    before = fpath.read_bytes()
    # It cannot be restored, so it must not stop gc: it is counted, and kept.
    report = collect_garbage(tmp_path / "objects", grace=NOW)
    assert report.unreadable_journal == 1 and entry.digest not in report.deleted_objects
    assert Repository(fpath, mode="r").load_artifact("model") == b"rerun weights" * 50
    with pytest.raises(IntegrityError):
        repo.restore(entry.id)
    assert fpath.read_bytes() == before


def test_a_replaced_damaged_manifest_does_not_stop_gc(tmp_path: Path) -> None:
    fpath = tmp_path / "repository.json"
    _history(fpath)
    fpath.write_bytes(fpath.read_bytes()[:100])  # truncated
    _rewrite(fpath)
    report = collect_garbage(tmp_path / "objects", grace=NOW)
    assert report.unreadable_journal == 0 and report.expired_journal == 0
    assert Repository(fpath, mode="r").load_artifact("model") == b"rerun weights" * 50


def test_retention_is_judged_by_the_storage_clock(tmp_path: Path) -> None:
    fpath = tmp_path / "repository.json"
    _history(fpath)
    _rewrite(fpath)
    (entry,) = Repository(fpath, mode="r").journal()
    journal = tmp_path / "objects" / "journal"
    (path,) = (p for p in journal.rglob("*.json"))
    # A writer whose clock is a year slow named the entry: it is still young.
    stale = path.with_name(
        f"{entry.replaced_at.timestamp() * 1e9 - 3.2e16:020.0f}-{entry.digest}.json"
    )
    path.rename(stale)
    assert collect_garbage(tmp_path / "objects", grace=NOW).expired_journal == 0
    old = time.time() - 8 * 86400
    os.utime(stale, (old, old))
    assert collect_garbage(tmp_path / "objects", grace=NOW).expired_journal == 1


def test_restore_errors_change_nothing(tmp_path: Path) -> None:
    fpath = tmp_path / "repository.json"
    _history(fpath)
    fpath.write_bytes(fpath.read_bytes().replace(b'"size"', b'"sise"', 1))  # corrupt
    _rewrite(fpath)  # mode "w" replaces a corrupt manifest, and journals it
    repo = Repository(fpath, mode="a")
    (entry,) = repo.journal()
    before = fpath.read_bytes()
    with pytest.raises(CorruptManifestError):
        repo.restore(entry.id)
    with pytest.raises(VersionNotFoundError, match="no journal entry"):
        repo.restore("0" * 20 + "-" + "0" * 64)
    with pytest.raises(ReadOnlyError):
        Repository(fpath, mode="r").restore(entry.id)
    assert fpath.read_bytes() == before


def test_projects_journal_dropped_and_edited_experiments(tmp_path: Path) -> None:
    fpath = tmp_path / "project.json"
    project = Project(fpath, mode="w", author="me")
    with project.log("baseline") as exp:
        exp.log_metric("auc", 0.7)
    project.save()
    editor = Project(fpath, mode="w+", author="me")
    editor.experiments[0].log_metric("auc", 0.9)
    editor.save()
    rerun = Project(fpath, mode="w", author="me")
    with rerun.log("other") as exp:
        exp.log_metric("auc", 0.5)
    rerun.save()
    entries = Project(fpath, mode="a").journal()
    assert [e.reason for e in entries] == ["save in mode 'w+'", "save in mode 'w'"]
    restored = Project(fpath, mode="a")
    restored.restore(entries[0].id)
    assert [(e.name, e.metrics["auc"]) for e in restored.experiments] == [("baseline", 0.7)]


def test_the_journal_moves_with_the_store(tmp_path: Path) -> None:
    _history(tmp_path / "a" / "repository.json")
    _rewrite(tmp_path / "a" / "repository.json")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    moved = Repository(tmp_path / "b" / "repository.json", mode="a")
    moved.restore(moved.journal()[0].id)
    assert moved.load_artifact("model", version=0) == b"first weights" * 50


def test_cli_lists_and_restores_even_a_deleted_manifest(tmp_path: Path) -> None:
    fpath = tmp_path / "repository.json"
    _history(fpath)
    _rewrite(fpath)
    listed = invoke_json("journal", "ls", fpath)
    assert [e["reason"] for e in listed] == ["save in mode 'w'"]
    assert "REASON" in invoke("journal", "ls", fpath).stdout
    fpath.unlink()
    result = invoke("journal", "restore", fpath, listed[0]["id"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(fpath.read_text())["artifacts"]["model"][1]["version"] == 1
    missing = invoke("journal", "restore", fpath, "nope")
    assert missing.exit_code == 3
    error_line(missing)
    # Without an ID: the newest entry, here the state the second rerun replaced.
    _rewrite(fpath)
    assert [m["version"] for m in Repository(fpath, mode="r")] == [0]
    assert invoke("journal", "restore", fpath).exit_code == 0
    assert [m["version"] for m in Repository(fpath, mode="r")] == [0, 1]
    assert invoke("journal", "restore", tmp_path / "elsewhere.json").exit_code == 3


def test_journal_entries_are_plain_files_gc_and_fsck_understand(tmp_path: Path) -> None:
    fpath = tmp_path / "repository.json"
    _history(fpath)
    _rewrite(fpath)
    storage = open_storage(tmp_path / "objects")
    names = list(storage.list("journal"))
    assert len(names) == 1 and names[0].endswith(".json")
    storage.write_new("journal/stray.txt", (b"not an entry",))  # never touched
    collect_garbage(tmp_path / "objects", grace=NOW, keep_journal=NOW)
    assert list(storage.list("journal")) == ["journal/stray.txt"]
    result = invoke("fsck", fpath)  # fsck reports the stray file, as under packs/
    assert result.exit_code == 4 and "journal/stray.txt" in result.stdout
    storage.delete("journal/stray.txt")
    assert invoke("fsck", fpath).exit_code == 0


def test_fsck_checks_the_journal(location: Location) -> None:
    from scribestore.ops.fsck import check_store
    from scribestore.store.layout import JOURNAL_DIR, parse_journal_name

    fpath = location.join("repository.json")
    _history(fpath, **location.options)
    _rewrite(fpath, **location.options)
    _history(fpath, **location.options)
    _rewrite(fpath, **location.options)
    store = ObjectStore(location.join("objects"), **location.options)
    assert check_store(store).ok
    storage = store.storage
    first, second = sorted(storage.list(JOURNAL_DIR))
    storage.write_atomic(first, b"{not json")
    gone = parse_journal_name(second)
    assert gone is not None
    storage.delete(object_path(gone.digest))
    storage.write_atomic(f"{JOURNAL_DIR}/stray.txt", b"x")
    found = {(p.kind, p.path) for p in check_store(store).problems}
    assert found == {
        ("corrupt", first),
        ("missing", second),
        ("corrupt", f"{JOURNAL_DIR}/stray.txt"),
    }


def test_fsck_reports_a_damaged_journaled_state_and_an_oversized_entry(tmp_path: Path) -> None:
    from scribestore.ops.fsck import check_store
    from scribestore.ops.journal import MAX_ENTRY_BYTES
    from scribestore.store.layout import JOURNAL_DIR, parse_journal_name

    fpath = tmp_path / "repository.json"
    _history(fpath)
    _rewrite(fpath)
    store = ObjectStore(tmp_path / "objects")
    (entry_path,) = list(store.storage.list(JOURNAL_DIR))
    name = parse_journal_name(entry_path)
    assert name is not None
    (tmp_path / "objects" / object_path(name.digest)).write_bytes(b"bad")
    report = check_store(store)  # a report, not an error
    assert ("corrupt", entry_path) in {(p.kind, p.path) for p in report.problems}
    big = f"{JOURNAL_DIR}/{name.key}/{'9' * 20}-{name.digest}.json"
    store.storage.write_atomic(big, b" " * (MAX_ENTRY_BYTES + 1))
    messages = {p.path: p.message for p in check_store(store).problems}
    assert "more than an entry's" in messages[big]
