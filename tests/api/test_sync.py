"""push and pull: the versions and exactly the bytes a destination lacks, copied once."""

from __future__ import annotations

import concurrent.futures as cf
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from scribestore import (
    ArtifactNotFoundError,
    IntegrityError,
    InvalidVersionError,
    ModeError,
    ReadOnlyError,
    Repository,
    UnknownHandlerError,
    VersionNotFoundError,
)
from scribestore.store.layout import object_path
from scribestore.sync import copy_versions, parse_selection, pull, push
from support.cli import invoke
from support.locations import Location
from support.progress import Recorder


def weights(n_bytes: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n_bytes // 4) * 0.02).astype("float32").tobytes()


def working_store(root: Path) -> tuple[Repository, bytes, bytes]:
    """A local repository: 'model' (a base and a fine-tune, 8 MiB files) and 'config' (2)."""
    base = weights(8 << 20, seed=1)
    tuned = bytearray(base)
    tuned[1 << 20 : (1 << 20) + 4096] = weights(4096, seed=2)
    root.mkdir(parents=True, exist_ok=True)
    repo = Repository(root / "repository.json", mode="w")
    for i, content in enumerate((base, bytes(tuned))):
        path = root / f"model{i}.bin"
        path.write_bytes(content)
        repo.log_artifact("model", path, handler="file")
        repo.log_artifact("config", {"lr": 0.1 * (i + 1)}, handler="json")
        repo.save()
    return Repository(root / "repository.json", mode="r"), base, bytes(tuned)


def remote_at(location: Location, mode: str = "a") -> Repository:
    return Repository(location.join("repository.json"), mode=mode, **location.options)


def listing(repo: Repository) -> list[tuple[str, int]]:
    storage = repo.objects.storage
    return sorted((p, storage.size(p)) for p in storage.list())


def test_push_copies_every_version_once_and_again_is_a_no_op(
    location: Location, tmp_path: Path
) -> None:
    local, base, tuned = working_store(tmp_path / "work")
    rec = Recorder()
    report = push(local, remote_at(location), progress=rec)
    assert sorted(report.copied) == [("config", 0), ("config", 1), ("model", 0), ("model", 1)]
    assert report.present == 0 and report.objects_copied == 4 and rec.closed
    remote = remote_at(location, "r")
    for name in ("model", "config"):
        for number in (0, 1):
            mine = local.get_artifact_metadata(name, number)
            theirs = remote.get_artifact_metadata(name, number)
            for key in ("hash", "size", "timestamp", "handler", "fname", "params"):
                assert theirs[key] == mine[key]
    assert remote.load_artifact("model", version=1, dest=tmp_path / "out.bin") is not None
    assert (tmp_path / "out.bin").read_bytes() == tuned
    before = listing(remote)
    again = push(local, remote_at(location))
    assert again.copied == () and again.present == 4 and again.bytes_copied == 0
    assert listing(remote_at(location, "r")) == before  # nothing written, not even the manifest
    assert base  # the fixture's content, for the next test's figures


def test_a_fine_tune_pushed_after_its_base_costs_its_changed_chunks(tmp_path: Path) -> None:
    local, _, _ = working_store(tmp_path / "work")
    remote = Repository(tmp_path / "remote" / "repository.json", mode="a")
    push(local, remote, ["model@0"])
    stored = remote.objects.stats().stored_size
    report = push(local, remote, ["model@1"])
    assert report.copied == (("model", 1),)
    grown = remote.objects.stats().stored_size - stored
    assert grown < 1 << 20  # the 4 KiB change costs its chunks, not 8 MiB


def test_pull_brings_the_remote_versions_numbered_after_the_local_ones(tmp_path: Path) -> None:
    local, _, _ = working_store(tmp_path / "work")
    remote = Repository(tmp_path / "remote" / "repository.json", mode="a")
    push(local, remote, ["config"])
    remote.log_artifact("config", {"lr": 9.0}, handler="json")
    remote.save()
    mine = Repository(tmp_path / "work" / "repository.json", mode="a")
    mine.log_artifact("config", {"lr": 5.0}, handler="json")
    mine.save()
    report = pull(mine, Repository(remote.url, mode="r"))
    assert report.copied == (("config", 2),) and report.present == 2
    assert [mine.load_artifact("config", version=n)["lr"] for n in range(4)] == [0.1, 0.2, 5.0, 9.0]
    assert pull(mine, Repository(remote.url, mode="r")).copied == ()


def test_aliases_of_copied_versions_follow_them(tmp_path: Path) -> None:
    working_store(tmp_path / "work")
    local = Repository(tmp_path / "work" / "repository.json", mode="a")
    local.set_alias("model", "production", version=0)
    local.set_alias("model", "candidate", version=1)
    local.set_alias("config", "production", version=1)
    remote = Repository(tmp_path / "remote" / "repository.json", mode="a")
    report = push(local, remote, ["model@0", "config"])
    # Only aliases whose version was selected are copied.
    assert sorted(report.aliases) == [("config", "production"), ("model", "production")]
    fresh = Repository(remote.url, mode="r")
    (alias,) = fresh.aliases("model")
    assert alias.hash == local.saved_versions()["model"][0].hash
    assert fresh.load_artifact("config", version="@production") == {"lr": 0.2}
    assert alias.alias == "production"
    assert push(local, remote, ["model@0", "config"]).aliases == ()  # again: a no-op
    # Moved in the source, the alias moves in the destination on the next copy,
    # even when there are no versions to copy; its history there records both.
    local.set_alias("config", "production", version=0)
    again = push(local, remote, ["config"])
    assert again.copied == () and again.aliases == (("config", "production"),)
    fresh = Repository(remote.url, mode="r")
    assert fresh.load_artifact("config", version="@production") == {"lr": 0.1}
    assert len(fresh.alias_history("config", "production")) == 2
    # Pulled back into a store that numbers the versions differently, an alias
    # still names the same version (by its time and hash).
    other = Repository(tmp_path / "other" / "repository.json", mode="a")
    other.log_artifact("config", {"lr": 7.0}, handler="json")
    other.save()
    pull(other, Repository(remote.url, mode="r"), ["config"])
    assert other.load_artifact("config", version="@production") == {"lr": 0.1}
    assert other.aliases("config")[0].version == 1  # its own 0 came first


def test_selections_and_their_errors(tmp_path: Path) -> None:
    local, _, _ = working_store(tmp_path / "work")
    assert parse_selection("model@1") == ("model", 1)
    assert parse_selection("model") == ("model", None)
    remote_path = tmp_path / "remote" / "repository.json"
    for bad, error in [
        ("nope", ArtifactNotFoundError),
        ("model@7", VersionNotFoundError),
        ("model@latest", InvalidVersionError),
    ]:
        with pytest.raises(error):
            push(local, Repository(remote_path, mode="a"), ["config", bad])
    assert not remote_path.exists()  # nothing was copied or written
    report = push(local, Repository(remote_path, mode="a"), [("model", 0), "config@1"])
    assert sorted(report.copied) == [("config", 1), ("model", 0)]


def test_the_destination_must_be_open_for_appending(tmp_path: Path) -> None:
    local, _, _ = working_store(tmp_path / "work")
    with pytest.raises(ReadOnlyError):
        push(local, local)
    with pytest.raises(ModeError, match="mode 'a'"):
        push(local, Repository(tmp_path / "remote" / "repository.json", mode="w"))


def test_a_damaged_source_object_leaves_the_destination_unchanged(tmp_path: Path) -> None:
    local, _, _ = working_store(tmp_path / "work")
    digest = local.get_artifact_metadata("config", 0)["hash"]
    path = Path(local.objects.url) / object_path(digest)
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 0x01
    path.write_bytes(bytes(blob))
    remote_path = tmp_path / "remote" / "repository.json"
    with pytest.raises(IntegrityError):
        copy_versions(local, Repository(remote_path, mode="a"), ["config@0"])
    assert not remote_path.exists()


def test_cli_push_and_pull(shared_location: Location, tmp_path: Path) -> None:
    location = shared_location
    working_store(tmp_path / "work")
    local = tmp_path / "work" / "repository.json"
    remote = location.join("repository.json")
    options = [f"-o{k}={json.dumps(v)}" for k, v in location.options.items()]
    result = invoke("push", local, remote, "model", *options, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["copied"] == [["model", 0], ["model", 1]]
    result = invoke("push", local, remote, "model", *options)
    assert result.exit_code == 0 and "nothing to push" in result.stdout
    fresh = tmp_path / "fresh" / "repository.json"
    result = invoke("pull", fresh, remote, "model@1", *options)
    assert result.exit_code == 0, result.stderr
    assert "pulled 1 versions" in result.stdout
    assert (
        Repository(fresh, mode="r").get_artifact_metadata("model", 0)["hash"]
        == (Repository(local, mode="r").get_artifact_metadata("model", 1)["hash"])
    )
    missing = invoke("push", tmp_path / "none.json", remote, *options)
    assert missing.exit_code == 3


def test_a_failure_while_queueing_leaves_nothing_queued(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local, _, _ = working_store(tmp_path / "work")
    remote = Repository(tmp_path / "remote" / "repository.json", mode="a")
    real = Repository.queue_version
    calls = []

    def flaky(self: Repository, name: str, **kwargs: object) -> object:
        calls.append(name)
        if len(calls) == 3:
            raise UnknownHandlerError("no handler 'plugin' here")
        return real(self, name, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Repository, "queue_version", flaky)
    with pytest.raises(UnknownHandlerError):
        push(local, remote)
    monkeypatch.undo()
    remote.save()  # nothing was left queued to be saved by accident
    assert not (tmp_path / "remote" / "repository.json").exists() or not remote.saved_versions()


def test_a_base_and_its_fine_tune_pushed_together_share_their_chunks(tmp_path: Path) -> None:
    local, _, _ = working_store(tmp_path / "work")
    remote = Repository(tmp_path / "remote" / "repository.json", mode="a")
    push(local, remote, ["model"])
    assert remote.objects.stats().stored_size <= local.objects.stats().stored_size * 1.05


def test_concurrent_pushes_of_the_same_versions_add_them_once(tmp_path: Path) -> None:
    local, _, _ = working_store(tmp_path / "work")
    url = tmp_path / "remote" / "repository.json"
    barrier = threading.Barrier(3)
    real = Repository.save

    def save_together(self: Repository, **kwargs: object) -> None:
        barrier.wait(timeout=30)  # all three have decided what to copy
        real(self, **kwargs)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Repository, "save", save_together)
        with cf.ThreadPoolExecutor(3) as pool:
            jobs = [pool.submit(push, local, Repository(url, mode="a")) for _ in range(3)]
            for job in jobs:
                job.result()
    remote = Repository(url, mode="r")
    assert {n: len(vs) for n, vs in remote.saved_versions().items()} == {"model": 2, "config": 2}


def test_only_saved_versions_can_be_selected(tmp_path: Path) -> None:
    local, _, _ = working_store(tmp_path / "work")
    editing = Repository(tmp_path / "work" / "repository.json", mode="a")
    editing.log_artifact("draft", {"a": 1}, handler="json")
    editing.log_artifact("config", {"lr": 3.0}, handler="json")
    remote = Repository(tmp_path / "remote" / "repository.json", mode="a")
    with pytest.raises(ArtifactNotFoundError, match="no saved artifact 'draft'"):
        push(editing, remote, ["draft"])
    with pytest.raises(VersionNotFoundError, match="no saved version 2"):
        push(editing, remote, ["config@2"])
    assert local.saved_versions().keys() == {"model", "config"}
