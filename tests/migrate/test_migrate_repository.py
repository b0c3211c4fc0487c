"""Importing lazyscribe 2.2.2 repositories: every version, loaded back equal."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import blake3
import pytest

from scribestore import Repository
from scribestore.migrate import MigrationError, MigrationReport, detect_kind, import_lazyscribe
from support.lazy import clock, lazyscribe, tree_digest, write_lazy_repository  # noqa: F401

UTC = dt.timezone.utc


@pytest.fixture
def lazy_repo(tmp_path: Path, clock) -> Path:  # noqa: F811
    return write_lazy_repository(tmp_path / "lazy")


def lazy_entries(manifest: Path) -> list[dict]:
    return json.loads(manifest.read_text())


def test_every_version_loads_back_equal(lazy_repo: Path, tmp_path: Path) -> None:
    dest = tmp_path / "scribe" / "repository.json"
    report = import_lazyscribe(lazy_repo, dest)
    assert report.kind == "repository"
    assert report.versions_added == 6 and report.versions_skipped == 0
    # lztext is a lazyscribe Artifact subclass the test support defines: found by alias.
    assert report.handlers == {"json": "json", "pickle": "pickle", "lztext": "lztext"}
    ours = Repository(dest, mode="r")
    theirs = lazyscribe.Repository(lazy_repo, mode="r")
    for entry in lazy_entries(lazy_repo):
        name, version = entry["name"], entry["version"]
        meta = ours.get_artifact_metadata(name, version=version)
        source = lazy_repo.parent / name / entry["fname"]
        # The hash is what b3sum prints for the lazyscribe file.
        assert meta["hash"] == blake3.blake3(source.read_bytes()).hexdigest()
        assert meta["size"] == source.stat().st_size
        assert meta["fname"] == entry["fname"]
        created = dt.datetime.fromisoformat(entry["created_at"]).replace(tzinfo=UTC)
        assert dt.datetime.fromisoformat(meta["timestamp"]) == created
        expiry = entry["expiry"]
        assert meta["expiry_timestamp"] == (
            None
            if expiry is None
            else dt.datetime.fromisoformat(expiry)
            .replace(tzinfo=UTC)
            .isoformat(timespec="microseconds")
        )
        assert ours.load_artifact(name, version=version) == theirs.load_artifact(
            name, version=version
        )
    pickled = ours.get_artifact_metadata("model", version=0)
    assert pickled["handler"] == "pickle"
    assert pickled["environment"] == {
        "python_version": lazy_entries(lazy_repo)[1]["python_version"]
    }


def test_non_text_handler_fields_are_recorded_as_canonical_json(
    lazy_repo: Path, tmp_path: Path
) -> None:
    entries = lazy_entries(lazy_repo)
    entries[1]["sizes"] = {"b": 1, "a": [2, 3]}
    lazy_repo.write_text(json.dumps(entries))
    dest = tmp_path / "scribe" / "repository.json"
    import_lazyscribe(lazy_repo, dest)
    meta = Repository(dest, mode="r").get_artifact_metadata(
        entries[1]["name"], version=entries[1]["version"]
    )
    # The text a handler class records for the same value (environment_text).
    assert meta["environment"]["sizes"] == '{"a": [2, 3], "b": 1}'


def test_handler_not_installed_falls_back_to_file(lazy_repo: Path, tmp_path: Path) -> None:
    entries = lazy_entries(lazy_repo)
    for entry in entries:
        if entry["handler"] == "lztext":
            entry["handler"] = "uninstalled-kind"
    lazy_repo.write_text(json.dumps(entries))
    dest = tmp_path / "scribe" / "repository.json"
    report = import_lazyscribe(lazy_repo, dest)
    assert report.handlers["uninstalled-kind"] == "file"
    ours = Repository(dest, mode="r")
    entry = next(e for e in entries if e["handler"] == "uninstalled-kind")
    with ours.load_artifact(entry["name"], version=entry["version"]) as stream:
        assert stream.read() == (lazy_repo.parent / entry["name"] / entry["fname"]).read_bytes()


def test_time_travel_matches_lazyscribe(lazy_repo: Path, tmp_path: Path) -> None:
    dest = tmp_path / "scribe" / "repository.json"
    import_lazyscribe(lazy_repo, dest)
    ours = Repository(dest, mode="r")
    theirs = lazyscribe.Repository(lazy_repo, mode="r")
    for when in ("2025-03-01T12:00:02", "2025-03-01T12:00:04", "2025-03-01T12:00:06"):
        assert ours.load_artifact("features", version=when, match="asof") == theirs.load_artifact(
            "features", version=when, match="asof"
        )
    # Version 0 of the model expired at 12:00:30; both pick version 1 as of then.
    assert ours.load_artifact("model", version="2025-03-01T12:00:31", match="asof") == (
        theirs.load_artifact("model", version="2025-03-01T12:00:31", match="asof")
    )
    # lazyscribe 2.2.2 reads expiries back as strings, so its own newest-version
    # load fails on a repository with an expiry; ours picks the newest version.
    assert ours.load_artifact("model") == theirs.load_artifact("model", version=1)


def test_identical_files_are_stored_once(lazy_repo: Path, tmp_path: Path) -> None:
    dest = tmp_path / "scribe" / "repository.json"
    import_lazyscribe(lazy_repo, dest)
    repo = Repository(dest, mode="r")
    hashes = [m["hash"] for m in repo]
    assert len(hashes) == 6
    assert len(set(hashes)) == 5  # features@0 and features@2 hold the same bytes
    assert repo.objects.stats().objects == 5


def test_source_is_untouched(lazy_repo: Path, tmp_path: Path) -> None:
    before = tree_digest(lazy_repo.parent)
    import_lazyscribe(lazy_repo, tmp_path / "scribe" / "repository.json")
    import_lazyscribe(lazy_repo, tmp_path / "scribe" / "repository.json")
    assert tree_digest(lazy_repo.parent) == before


def test_rerun_is_idempotent(lazy_repo: Path, tmp_path: Path) -> None:
    dest = tmp_path / "scribe" / "repository.json"
    import_lazyscribe(lazy_repo, dest)
    manifest_bytes = dest.read_bytes()
    objects_before = tree_digest(dest.parent / "objects")
    report = import_lazyscribe(lazy_repo, dest)
    assert (report.versions_added, report.versions_skipped, report.changed) == (0, 6, False)
    assert dest.read_bytes() == manifest_bytes
    assert tree_digest(dest.parent / "objects") == objects_before


def test_rerun_adds_only_new_versions_and_expiries(lazy_repo: Path, tmp_path: Path, clock) -> None:  # noqa: F811
    dest = tmp_path / "scribe" / "repository.json"
    import_lazyscribe(lazy_repo, dest)
    repo = lazyscribe.Repository(lazy_repo, mode="w+")
    repo.log_artifact("features", [9], handler="json")
    repo.set_artifact_expiry("features", version=1, expiry="2025-03-01T12:01:00")
    repo.save()
    report = import_lazyscribe(lazy_repo, dest)
    assert (report.versions_added, report.versions_skipped, report.expiries_updated) == (1, 6, 1)
    ours = Repository(dest, mode="r")
    assert ours.load_artifact("features", version=3) == [9]
    assert ours.get_artifact_metadata("features", version=1)["expiry"].startswith(
        "2025-03-01T12:01:00"
    )


def test_conflicting_destination_is_refused_before_writing(lazy_repo: Path, tmp_path: Path) -> None:
    dest = tmp_path / "scribe" / "repository.json"
    repo = Repository(dest, mode="w")
    repo.log_artifact("features", [0], handler="json")  # created now: newer than the source
    repo.save()
    before = dest.read_bytes()
    with pytest.raises(MigrationError, match="cannot be inserted into the past"):
        import_lazyscribe(lazy_repo, dest)
    assert dest.read_bytes() == before


def test_missing_file_is_refused_before_writing(lazy_repo: Path, tmp_path: Path) -> None:
    entry = lazy_entries(lazy_repo)[0]
    (lazy_repo.parent / entry["name"] / entry["fname"]).unlink()
    dest = tmp_path / "scribe" / "repository.json"
    with pytest.raises(MigrationError, match="missing"):
        import_lazyscribe(lazy_repo, dest)
    assert not dest.exists()
    assert not (dest.parent / "objects").exists()


def test_bad_sources(tmp_path: Path, lazy_repo: Path) -> None:
    with pytest.raises(MigrationError, match="no lazyscribe manifest"):
        import_lazyscribe(tmp_path / "absent.json", tmp_path / "d" / "repository.json")
    not_json = tmp_path / "x.json"
    not_json.write_text("{oops")
    with pytest.raises(MigrationError, match="not JSON"):
        import_lazyscribe(not_json, tmp_path / "d" / "repository.json")
    with pytest.raises(MigrationError, match="source itself"):
        import_lazyscribe(lazy_repo, lazy_repo)
    ours = tmp_path / "s" / "repository.json"
    import_lazyscribe(lazy_repo, ours)
    with pytest.raises(MigrationError, match="already a scribestore manifest"):
        import_lazyscribe(ours, tmp_path / "d" / "repository.json")
    escaping = tmp_path / "evil" / "repository.json"
    escaping.parent.mkdir()
    escaping.write_text(
        json.dumps(
            [
                {
                    "name": "../x",
                    "fname": "a.json",
                    "handler": "json",
                    "created_at": "2025-01-01T00:00:00",
                    "version": 0,
                }
            ]
        )
    )
    with pytest.raises(MigrationError, match="invalid artifact name"):
        import_lazyscribe(escaping, tmp_path / "d" / "repository.json")


def test_detect_kind() -> None:
    assert detect_kind([{"name": "a", "fname": "a.json", "handler": "json"}]) == "repository"
    assert detect_kind([{"slug": "exp-20250101000000", "name": "exp"}]) == "project"
    assert detect_kind([], "project.json") == "project"
    assert detect_kind([], "repository.json") == "repository"
    for bad in ({"format": "scribestore.repository"}, {"a": 1}, [1, 2], [{"x": 1}]):
        with pytest.raises(MigrationError):
            detect_kind(bad)


def test_handler_map_and_progress(lazy_repo: Path, tmp_path: Path) -> None:
    class Recorder:
        def __init__(self) -> None:
            self.total: int | None = None
            self.done = 0
            self.closed = False

        def start(self, total: int | None, desc: str) -> None:
            self.total = total

        def advance(self, n: int) -> None:
            self.done += n

        def close(self) -> None:
            self.closed = True

    rec = Recorder()
    dest = tmp_path / "scribe" / "repository.json"
    report = import_lazyscribe(lazy_repo, dest, handler_map={"lztext": "text"}, progress=rec)
    assert report.handlers["lztext"] == "text"
    assert Repository(dest, mode="r").load_artifact("notes") == "first line\nsecond line\n"
    assert rec.total == rec.done == report.bytes_read > 0 and rec.closed


def test_into_memory_store(lazy_repo: Path) -> None:
    dest = f"memory://migrate-{uuid.uuid4().hex}/repository.json"
    report = import_lazyscribe(lazy_repo, dest)
    assert isinstance(report, MigrationReport) and report.versions_added == 6
    theirs = lazyscribe.Repository(lazy_repo, mode="r")
    assert Repository(dest, mode="r").load_artifact("features", version=1) == theirs.load_artifact(
        "features", version=1
    )


def test_versions_whose_times_go_backwards_import(lazy_repo: Path, tmp_path: Path) -> None:
    """Clock skew between lazyscribe writers: version 1 created before version 0."""
    entries = lazy_entries(lazy_repo)
    features = [e for e in entries if e["name"] == "features"]
    features[0]["created_at"], features[1]["created_at"] = (
        features[1]["created_at"],
        features[0]["created_at"],
    )
    lazy_repo.write_text(json.dumps(entries))
    dest = tmp_path / "scribe" / "repository.json"
    report = import_lazyscribe(lazy_repo, dest)
    assert report.versions_added == len(entries)
    repo = Repository(dest, mode="r")
    assert [m["version"] for m in repo if m["name"] == "features"] == [0, 1, 2]
    assert repo.load_artifact("features", version=1) == [1, 2, 3, 4]
