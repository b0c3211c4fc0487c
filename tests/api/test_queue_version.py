"""Queuing versions with a given origin (promotion, migration), and progress on save and verify."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from scribestore import (
    ArtifactLogError,
    InvalidNameError,
    Project,
    ReadOnlyError,
    Repository,
    SaveError,
    UnknownHandlerError,
    VersionNotFoundError,
)
from support.progress import Recorder

T0 = dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone.utc)


def test_a_queued_version_keeps_its_creation_time_and_expiry(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="a")
    expiry = T0 + dt.timedelta(days=3650)
    pending = repo.queue_version(
        "config",
        handler="json",
        created_at=T0,
        fname="config.json",
        value={"lr": 0.1},
        expiry=expiry,
    )
    assert pending.version == 0 and repo.latest_created_at("config") == T0
    repo.save()
    reopened = Repository(tmp_path / "repository.json", mode="r")
    meta = reopened.get_artifact_metadata("config")
    assert dt.datetime.fromisoformat(meta["timestamp"]) == T0
    assert dt.datetime.fromisoformat(meta["expiry_timestamp"]) == expiry
    assert reopened.load_artifact("config") == {"lr": 0.1}


def test_queue_version_with_stored_bytes_does_not_serialize(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="a")
    digest, size = repo.objects.put_sized(b"[1, 2, 3]")
    repo.queue_version(
        "numbers",
        handler="json",
        created_at=T0,
        fname="n.json",
        stored=(digest, size),
        value=object(),  # not serializable: proves the stored bytes are used
    )
    repo.save()
    assert Repository(tmp_path / "repository.json", mode="r").load_artifact("numbers") == [1, 2, 3]


def test_stored_bytes_gone_before_save_is_a_save_error(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="a")
    digest, size = repo.objects.put_sized(b"[1]")
    repo.queue_version("n", handler="json", created_at=T0, fname="n.json", stored=(digest, size))
    repo.objects.delete(digest)
    with pytest.raises(SaveError, match="no longer"):
        repo.save()
    assert not (tmp_path / "repository.json").exists()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"value": {1, 2}}, ArtifactLogError),
        ({"fname": "../escape"}, InvalidNameError),
        ({"handler": "no-such-handler"}, UnknownHandlerError),
    ],
    ids=["bad-value", "bad-fname", "unknown-handler"],
)
def test_queue_version_refuses_bad_input_and_queues_nothing(
    tmp_path: Path, kwargs: dict[str, object], error: type[Exception]
) -> None:
    repo = Repository(tmp_path / "repository.json", mode="a")
    repo.queue_version("a", handler="json", created_at=T0, fname="a.json", value=1)
    args: dict[str, object] = {"handler": "json", "created_at": T0, "fname": "a.json", "value": 2}
    with pytest.raises(error):
        repo.queue_version("a", **{**args, **kwargs})  # type: ignore[arg-type]
    repo.save()
    assert [m["version"] for m in Repository(tmp_path / "repository.json", mode="r")] == [0]


def test_an_older_creation_time_is_kept_as_given(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="a")
    repo.queue_version("a", handler="json", created_at=T0, fname="a0.json", value=0)
    earlier = T0 - dt.timedelta(seconds=4)  # clock skew between two writers
    repo.queue_version("a", handler="json", created_at=earlier, fname="a1.json", value=1)
    repo.save()
    saved = Repository(tmp_path / "repository.json", mode="r")
    assert [m["version"] for m in saved] == [0, 1]
    assert (
        dt.datetime.fromisoformat(saved.get_artifact_metadata("a", version=1)["timestamp"])
        == earlier
    )


def test_a_file_is_checked_when_queued(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="a")
    with pytest.raises(ArtifactLogError):
        repo.queue_version("f", handler="file", created_at=T0, fname="f.bin")
    src = tmp_path / "f.bin"
    src.write_bytes(b"bytes")
    repo.queue_version("f", handler="file", created_at=T0, fname="f.bin", value=str(src))
    repo.save()
    assert (
        Repository(tmp_path / "repository.json", mode="r").get_artifact_metadata("f")["size"] == 5
    )


def test_queue_version_in_read_only_mode(tmp_path: Path) -> None:
    Repository(tmp_path / "repository.json", mode="a").save()
    repo = Repository(tmp_path / "repository.json", mode="r")
    with pytest.raises(ReadOnlyError):
        repo.queue_version("a", handler="json", created_at=T0, fname="a.json", value=1)


def test_discard_queued_renumbers_the_later_versions(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="a")
    repo.log_artifact("a", 0, "json")
    repo.save()
    first = repo.queue_version(
        "a", handler="json", created_at=dt.datetime.now(dt.timezone.utc), fname="a1.json", value=1
    )
    repo.log_artifact("a", 2, "json")
    assert first.version == 1
    assert repo.discard_queued("a", first.version) == 1
    with pytest.raises(VersionNotFoundError):
        repo.discard_queued("a", 3)
    assert repo.discard_queued("nothing-queued") == 0
    repo.save()
    reopened = Repository(tmp_path / "repository.json", mode="r")
    assert [m["version"] for m in reopened] == [0, 1]
    assert reopened.load_artifact("a", version=1) == 2


def test_save_reports_the_bytes_of_its_files(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "store" / "repository.json", mode="a")
    sizes = [3000, 5 << 20]
    for i, size in enumerate(sizes):
        (tmp_path / f"f{i}").write_bytes(bytes([i]) * size)
        repo.log_artifact(f"f{i}", tmp_path / f"f{i}", "file")
    rec = Recorder()
    repo.save(progress=rec)
    assert rec.starts == [(sum(sizes), "saving repository.json")]
    assert rec.advanced == sum(sizes) and rec.closed


def test_save_progress_total_is_unknown_for_serialized_values(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="a")
    repo.log_artifact("config", {"a": 1}, "json")
    rec = Recorder()
    repo.save(progress=rec)
    assert rec.starts == [(None, "saving repository.json")] and rec.advanced > 0 and rec.closed


def test_verify_reports_progress_once_per_distinct_object(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="a")
    repo.log_artifact("a", b"x" * 1000, "bytes")
    repo.log_artifact("b", b"x" * 1000, "bytes")  # same bytes: read once
    repo.log_artifact("c", b"y" * 10, "bytes")
    repo.save()
    rec = Recorder()
    assert repo.verify(progress=rec).clean
    assert rec.starts == [(1010, "verifying")] and rec.advanced == 1010 and rec.closed

    project = Project(tmp_path / "project.json", mode="w")
    with project.log("exp") as exp:
        exp.log_artifact("model", b"z" * 500, "bytes")
    project.save()
    rec = Recorder()
    assert project.verify(progress=rec).clean and rec.advanced == 500
