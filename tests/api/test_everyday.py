"""Everyday surprises removed: a mistyped read-only path, exported file names, bad values."""

from __future__ import annotations

import gc
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from scribestore import (
    ArtifactLogError,
    ManifestNotFoundError,
    Project,
    Repository,
    UnsavedChangesWarning,
)
from support.cli import invoke
from support.helpers import child_env
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


@pytest.mark.parametrize(
    ("handler", "bad"),
    [
        ("json", Path("/tmp/x")),
        ("json", {"a": {1, 2}}),
        ("text", b"bytes"),
        ("bytes", "text"),
        ("numpy", np.array([object()], dtype=object)),
    ],
    ids=["json-path", "json-set", "text-bytes", "bytes-str", "numpy-object"],
)
def test_a_value_the_handler_cannot_store_is_refused_when_logged(
    tmp_path: Path, handler: str, bad: object
) -> None:
    repo = Repository(tmp_path / "repository.json", mode="a")
    repo.log_artifact("good", [1, 2], "json")
    with pytest.raises(ArtifactLogError, match="nothing was queued"):
        repo.log_artifact("bad", bad, handler)
    repo.save()  # the good version is not held hostage
    saved = Repository(tmp_path / "repository.json", mode="r")
    assert saved.load_artifact("good") == [1, 2] and "bad" not in saved


def test_a_bad_value_in_an_experiment_is_refused_when_logged(tmp_path: Path) -> None:
    project = Project(tmp_path / "project.json", mode="w")
    with project.log("exp") as exp:
        with pytest.raises(ArtifactLogError):
            exp.log_artifact("bad", Path("x"), "json")
        exp.log_artifact("good", {"a": 1}, "json", indent=2)
    project.save()
    assert Project(tmp_path / "project.json", mode="r")["exp"].load_artifact("good") == {"a": 1}


def test_json_params_are_checked_too(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="a")
    with pytest.raises(ArtifactLogError):
        repo.log_artifact("cfg", {"a": 1}, "json", no_such_option=True)


def test_discarding_unsaved_versions_warns(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="a")
    repo.log_artifact("a", 1, "json")
    with pytest.warns(UnsavedChangesWarning, match=r"repository .* 1 unsaved change"):
        del repo
        gc.collect()


def test_discarding_an_unsaved_project_warns(tmp_path: Path) -> None:
    project = Project(tmp_path / "project.json", mode="w")
    with project.log("exp") as exp:
        exp.log_metric("m", 1)
    with pytest.warns(UnsavedChangesWarning, match="project"):
        del project, exp
        gc.collect()


def test_saved_or_read_only_holders_do_not_warn(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsavedChangesWarning)
        repo = Repository(tmp_path / "repository.json", mode="a")
        repo.log_artifact("a", 1, "json")
        repo.save()
        view = Repository(tmp_path / "repository.json", mode="r")
        project = Project(tmp_path / "project.json", mode="w")
        with project.log("exp"):
            pass
        project.save()
        del repo, view, project
        gc.collect()


def test_an_unsaved_repository_warns_at_exit(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from scribestore import Repository\n"
        "repo = Repository(sys.argv[1], mode='a')\n"
        "repo.log_artifact('model', [1, 2], 'json')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "repository.json")],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    assert proc.returncode == 0
    assert "UnsavedChangesWarning" in proc.stderr and "1 unsaved change" in proc.stderr


def test_skip_unchanged_adds_a_version_only_when_the_bytes_differ(tmp_path: Path) -> None:
    fpath = tmp_path / "repository.json"
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights v1" * 1000)
    repo = Repository(fpath, mode="a")
    repo.log_artifact("model", model, "file", skip_unchanged=True)
    repo.save()
    repo.log_artifact("model", model, "file", skip_unchanged=True)
    repo.save()
    assert len(repo.saved_versions()["model"]) == 1
    model.write_bytes(b"weights v2" * 1000)
    repo.log_artifact("model", model, "file", skip_unchanged=True)
    repo.save()
    assert len(repo.saved_versions()["model"]) == 2
    repo.log_artifact("model", model.read_bytes(), "bytes", skip_unchanged=True)
    repo.save()  # same bytes, another handler: a new version
    assert [m["handler"] for m in Repository(fpath, mode="r")] == ["file", "file", "bytes"]
    # Without the option, identical bytes are a new version, as in lazyscribe.
    repo.log_artifact("model", model.read_bytes(), "bytes")
    repo.save()
    assert len(Repository(fpath, mode="r").saved_versions()["model"]) == 4


def test_skip_unchanged_compares_with_what_is_saved_at_commit(tmp_path: Path) -> None:
    fpath = tmp_path / "repository.json"
    first = Repository(fpath, mode="a")
    first.log_artifact("cfg", {"lr": 0.1}, "json")
    first.save()
    slow = Repository(fpath, mode="a")
    slow.log_artifact("cfg", {"lr": 0.2}, "json", skip_unchanged=True)
    other = Repository(fpath, mode="a")
    other.log_artifact("cfg", {"lr": 0.2}, "json")
    other.save()  # the same content, committed first
    slow.save()
    versions = Repository(fpath, mode="r").saved_versions()["cfg"]
    assert len(versions) == 2


def test_cli_log_skip_unchanged_says_so(tmp_path: Path) -> None:
    import json

    from support.cli import invoke

    fpath = tmp_path / "repository.json"
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights" * 1000)
    first = json.loads(invoke("log", fpath, "model", model, "--skip-unchanged", "--json").stdout)
    again = invoke("log", fpath, "model", model, "--skip-unchanged")
    assert first[0]["unchanged"] is False
    assert again.exit_code == 0 and again.stdout.startswith("unchanged model@0")
    assert len(Repository(fpath, mode="r").saved_versions()["model"]) == 1


def test_skip_unchanged_logs_again_what_an_expired_version_held(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="a")
    repo.log_artifact("model", b"epoch 3", "bytes")
    repo.log_artifact("model", b"epoch 4", "bytes")
    repo.save()
    repo.set_artifact_expiry("model", version=1)
    repo.save()
    repo.log_artifact("model", b"epoch 4", "bytes", skip_unchanged=True)
    repo.save()
    assert repo.load_artifact("model") == b"epoch 4"
    assert len(repo.saved_versions()["model"]) == 3
