"""Helpers for the CLI tests: invoking the command in-process and building stores."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from scribestore import Project, Repository
from scribestore.cli import cli
from scribestore.store.layout import object_path


def invoke(*args: object) -> Result:
    """Run ``scribestore ARGS`` in-process; exceptions the CLI does not handle propagate."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def invoke_json(*args: object) -> Any:
    """Run with --json, check it succeeded, and return the decoded stdout."""
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def error_line(result: Result) -> str:
    """The single error line the CLI printed (asserting there is exactly one)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("scribestore: error: "), lines[0]
    return lines[0]


def make_repo(root: Path, model: bytes | None = None) -> Path:
    """A repository with json 'features' (2 versions) and file 'model' (2 versions)."""
    root.mkdir(parents=True, exist_ok=True)
    manifest = root / "repository.json"
    repo = Repository(manifest, mode="w")
    repo.log_artifact("features", {"a": 1, "b": [1, 2]}, handler="json", indent=2)
    repo.save()
    repo.log_artifact("features", {"a": 2, "b": [1, 2]}, handler="json", indent=2)
    data = model if model is not None else os.urandom(200_000)
    src = root.parent / f"{root.name}-model.bin"
    src.write_bytes(data)
    repo.log_artifact("model", src, handler="file")
    repo.save()
    src.write_bytes(data[:-1000] + os.urandom(1000))
    repo.log_artifact("model", src, handler="file")
    repo.save()
    return manifest


def make_project(root: Path) -> Path:
    """A project with experiment 'exp' holding a json 'config' and a test artifact."""
    root.mkdir(parents=True, exist_ok=True)
    manifest = root / "project.json"
    project = Project(manifest, mode="w", author="tester")
    with project.log("exp") as exp:
        exp.log_metric("auc", 0.9)
        exp.log_artifact("config", {"lr": 0.1}, handler="json")
        with exp.log_test("holdout") as test:
            test.log_artifact("scores", [0.5, 0.7], handler="json")
    project.save()
    return manifest


def object_file(manifest: Path, digest: str) -> Path:
    """The loose object file of ``digest`` in the store beside ``manifest``."""
    return manifest.parent / "objects" / object_path(digest)


def damage(path: Path) -> None:
    """Flip the last byte of ``path``."""
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
