"""Folders as artifacts: a directory tree logged as one version and restored exactly."""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from scribestore import (
    ArtifactLoadError,
    ArtifactLogError,
    IntegrityError,
    ObjectStore,
    Repository,
)
from scribestore.storage import open_storage
from support.cli import invoke, invoke_json
from support.helpers import seal
from support.locations import Location
from support.safetensors_file import write_safetensors


def _model_folder(root: Path) -> Path:
    """A Hugging Face style model folder."""
    folder = root / "tiny-llm"
    (folder / "tokenizer").mkdir(parents=True)
    (folder / "empty").mkdir()
    (folder / "config.json").write_text(json.dumps({"hidden_size": 64, "layers": 2}))
    # 6 MiB of weights: past the size from which objects are chunked.
    write_safetensors(folder / "model.safetensors", {"embed": (1024, 768), "head": (768, 1024)})
    (folder / "tokenizer" / "vocab.txt").write_text("\n".join(f"tok{i}" for i in range(500)))
    (folder / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(folder / "run.sh", 0o755)
    return folder


def _tree(root: Path) -> dict[str, tuple[str, int, bytes]]:
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        mode = stat.S_IMODE(path.stat().st_mode)
        out[rel] = ("dir", mode, b"") if path.is_dir() else ("file", mode, path.read_bytes())
    return out


def test_a_folder_round_trips_exactly(location: Location, tmp_path: Path) -> None:
    folder = _model_folder(tmp_path)
    fpath = location.join("repository.json")
    repo = Repository(fpath, mode="w", **location.options)
    repo.log_artifact("llm", folder, "folder")
    repo.save()
    meta = repo.get_artifact_metadata("llm")
    assert (meta["handler"], meta["fname"]) == ("folder", "tiny-llm")
    restored = Repository(fpath, mode="r", **location.options).load_artifact(
        "llm", dest=tmp_path / "restored"
    )
    assert restored == tmp_path / "restored"
    assert _tree(restored) == _tree(folder)
    # Without dest: the verified tar stream, readable by any tar tool.
    with (
        Repository(fpath, mode="r", **location.options).load_artifact("llm") as stream,
        tarfile.open(fileobj=io.BytesIO(stream.read())) as archive,
    ):
        assert archive.getnames() == sorted(_tree(folder))


def test_the_same_tree_is_the_same_version(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path)
    copy = tmp_path / "elsewhere"
    copy.mkdir()
    os.rename(folder, copy / "tiny-llm")
    repo = Repository(tmp_path / "repository.json", mode="w")
    repo.log_artifact("llm", copy / "tiny-llm", "folder")
    repo.save()
    os.utime(copy / "tiny-llm" / "config.json", (1, 1))  # times are not stored
    repo.log_artifact("llm", copy / "tiny-llm", "folder", skip_unchanged=True)
    repo.save()
    assert len(repo.saved_versions()["llm"]) == 1


def test_a_changed_file_costs_about_its_own_bytes(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path)
    repo = Repository(tmp_path / "store" / "repository.json", mode="w")
    repo.log_artifact("llm", folder, "folder")
    repo.save()
    store = ObjectStore(tmp_path / "store" / "objects")
    before = store.stats().stored_size
    (folder / "config.json").write_text(json.dumps({"hidden_size": 64, "layers": 3}))
    repo.log_artifact("llm", folder, "folder")
    repo.save()
    grew = store.stats().stored_size - before
    size = repo.get_artifact_metadata("llm")["size"]
    assert size > 6 << 20
    # One small file changed: a few chunks of the stream, not the 6 MiB tree.
    assert grew < size // 8, (grew, size)


@pytest.mark.parametrize("bad", ["dir-link", "fifo", "not-a-dir"])
def test_folders_that_cannot_be_restored_exactly_are_refused_when_logged(
    tmp_path: Path, bad: str
) -> None:
    folder = _model_folder(tmp_path)
    if bad == "dir-link":
        os.symlink(folder / "tokenizer", folder / "alias")
    elif bad == "fifo":
        os.mkfifo(folder / "pipe")
    else:
        folder = folder / "config.json"
    repo = Repository(tmp_path / "repository.json", mode="w")
    with pytest.raises(ArtifactLogError):
        repo.log_artifact("llm", folder, "folder")
    assert not (tmp_path / "repository.json").exists()


def test_a_link_to_a_file_is_stored_as_the_file(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path)
    os.symlink(folder / "config.json", folder / "config-link.json")
    repo = Repository(tmp_path / "repository.json", mode="w")
    repo.log_artifact("llm", folder, "folder")
    repo.save()
    out = repo.load_artifact("llm", dest=tmp_path / "out")
    assert not (out / "config-link.json").is_symlink()
    assert (out / "config-link.json").read_bytes() == (folder / "config.json").read_bytes()


def test_a_damaged_folder_restores_nothing(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path)
    fpath = tmp_path / "store" / "repository.json"
    repo = Repository(fpath, mode="w")
    repo.log_artifact("llm", folder, "folder")
    repo.save()
    storage = open_storage(tmp_path / "store")
    for path in storage.list("objects/packs"):
        if path.endswith(".pack"):
            blob = bytearray(storage.read_bytes(path))
            blob[len(blob) // 2] ^= 0x01
            storage.write_atomic(path, bytes(blob))
    with pytest.raises(IntegrityError):
        Repository(fpath, mode="r").load_artifact("llm", dest=tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store", "tiny-llm"]


def test_restore_needs_an_empty_or_new_destination(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path)
    repo = Repository(tmp_path / "repository.json", mode="w")
    repo.log_artifact("llm", folder, "folder")
    repo.save()
    (tmp_path / "empty").mkdir()
    assert _tree(repo.load_artifact("llm", dest=tmp_path / "empty")) == _tree(folder)
    with pytest.raises(FileExistsError):
        repo.load_artifact("llm", dest=folder)
    with pytest.raises(FileNotFoundError):
        repo.load_artifact("llm", dest=tmp_path / "no" / "such" / "dir")


def _crafted_archive(member: tarfile.TarInfo, data: bytes = b"") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(member, io.BytesIO(data) if data else None)
    return buf.getvalue()


def _symlink_member() -> tarfile.TarInfo:
    link = tarfile.TarInfo("link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    return link


@pytest.mark.parametrize(
    "member",
    [
        tarfile.TarInfo("../escape.txt"),
        tarfile.TarInfo("/abs.txt"),
        _symlink_member(),
    ],
    ids=["dotdot", "absolute", "symlink"],
)
def test_a_crafted_archive_is_refused_and_nothing_escapes(
    tmp_path: Path, member: tarfile.TarInfo
) -> None:
    """A manifest edited to call stored bytes a folder cannot write outside dest."""
    fpath = tmp_path / "store" / "repository.json"
    repo = Repository(fpath, mode="w")
    data = b"evil"
    if member.type == tarfile.REGTYPE:
        member.size = len(data)
    repo.log_artifact("llm", _crafted_archive(member, data if member.size else b""), "bytes")
    repo.save()
    doc = json.loads(fpath.read_text())
    doc["artifacts"]["llm"][0]["handler"] = "folder"
    fpath.write_bytes(seal(doc))
    with pytest.raises(ArtifactLoadError):
        Repository(fpath, mode="r").load_artifact("llm", dest=tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_cli_logs_a_folder_and_gets_it_back(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path)
    fpath = tmp_path / "store" / "repository.json"
    [logged] = invoke_json("log", fpath, "llm", folder, "--folder")
    assert logged["handler"] == "folder"
    (tmp_path / "exports").mkdir()
    result = invoke("get", fpath, "llm@0", tmp_path / "exports")
    assert result.exit_code == 0, result.stderr
    assert _tree(tmp_path / "exports" / "tiny-llm") == _tree(folder)
    assert invoke("log", fpath, "x", folder / "config.json", "--folder").exit_code == 2


def test_a_name_a_restore_could_not_write_is_refused_when_logged(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path)
    (folder / "back\\slash.txt").write_text("x")
    with pytest.raises(ArtifactLogError, match="could not write"):
        Repository(tmp_path / "repository.json", mode="w").log_artifact("llm", folder, "folder")


@pytest.mark.skipif(os.geteuid() == 0, reason="root lists every directory")
def test_an_unreadable_directory_is_never_skipped_silently(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path)
    os.chmod(folder / "tokenizer", 0)
    try:
        with pytest.raises(ArtifactLogError):
            Repository(tmp_path / "repository.json", mode="w").log_artifact("llm", folder, "folder")
    finally:
        os.chmod(folder / "tokenizer", 0o755)


def _sparse_member() -> tarfile.TarInfo:
    sparse = tarfile.TarInfo("huge.bin")
    sparse.type = tarfile.GNUTYPE_SPARSE
    return sparse


def _stored_as_folder(tmp_path: Path, archive: bytes) -> Path:
    fpath = tmp_path / "store" / "repository.json"
    repo = Repository(fpath, mode="w")
    repo.log_artifact("llm", archive, "bytes")
    repo.save()
    doc = json.loads(fpath.read_text())
    doc["artifacts"]["llm"][0]["handler"] = "folder"
    fpath.write_bytes(seal(doc))
    return fpath


def test_sparse_and_clashing_entries_are_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(_sparse_member())
    clash = io.BytesIO()
    with tarfile.open(fileobj=clash, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for _ in range(2):
            member = tarfile.TarInfo("same.txt")
            member.size = 1
            tar.addfile(member, io.BytesIO(b"x"))
    for archive in (buf.getvalue(), clash.getvalue()):
        fpath = _stored_as_folder(tmp_path, archive)
        with pytest.raises(ArtifactLoadError):
            Repository(fpath, mode="r").load_artifact("llm", dest=tmp_path / "out")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]
