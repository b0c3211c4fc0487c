"""Everyday surprises removed: a mistyped read-only path, the exported file's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from scribestore import ManifestNotFoundError, Project, Repository
from support.cli import invoke
from support.locations import Location


@pytest.mark.parametrize("cls", [Repository, Project])
def test_a_missing_manifest_opened_read_only_is_not_found(location: Location, cls: type) -> None:
    url = location.join("stor/manifest.json")
    with pytest.raises(ManifestNotFoundError, match=r"stor/manifest\.json") as info:
        cls(url, mode="r", **location.options)
    assert isinstance(info.value, FileNotFoundError)


@pytest.mark.parametrize("mode", ["a", "w", "w+"])
def test_writing_modes_still_create_the_manifest(tmp_path: Path, mode: str) -> None:
    repo = Repository(tmp_path / "repository.json", mode=mode)
    repo.log_artifact("a", 1, "json")
    repo.save()
    assert Repository(tmp_path / "repository.json", mode="r").load_artifact("a") == 1


def test_a_logged_file_keeps_its_own_name(tmp_path: Path) -> None:
    src = tmp_path / "weights.safetensors"
    src.write_bytes(b"tensor bytes")
    repo = Repository(tmp_path / "store" / "repository.json", mode="a")
    repo.log_artifact("model.safetensors", src, "file")
    repo.log_artifact("renamed", src, "file", fname="chosen.bin")
    repo.log_artifact("config", {"a": 1}, "json")
    repo.save()
    assert repo.get_artifact_metadata("model.safetensors")["fname"] == "weights.safetensors"
    assert repo.get_artifact_metadata("renamed")["fname"] == "chosen.bin"
    assert repo.get_artifact_metadata("config")["fname"].startswith("config-")
    out = tmp_path / "out"
    out.mkdir()
    assert repo.load_artifact("model.safetensors", dest=out) == out / "weights.safetensors"


def test_cli_get_into_a_directory_writes_the_logged_name(tmp_path: Path) -> None:
    src = tmp_path / "model.safetensors"
    src.write_bytes(b"tensor bytes")
    manifest = tmp_path / "store" / "repository.json"
    assert invoke("log", str(manifest), "model.safetensors", str(src)).exit_code == 0
    out = tmp_path / "out"
    out.mkdir()
    result = invoke("get", str(manifest), "model.safetensors", str(out))
    assert result.exit_code == 0, result.output
    assert [p.name for p in out.iterdir()] == ["model.safetensors"]
    assert (out / "model.safetensors").read_bytes() == b"tensor bytes"
