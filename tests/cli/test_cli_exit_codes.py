"""Exit codes and one-line errors: the mapping, and the real console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from scribestore import (
    ArtifactLoadError,
    ArtifactNotFoundError,
    CorruptManifestError,
    CorruptObjectError,
    ExperimentNotFoundError,
    IntegrityError,
    InvalidNameError,
    InvalidVersionError,
    ObjectNotFoundError,
    Project,
    ReadOnlyError,
    Repository,
    SaveError,
    StorageError,
    UnknownHandlerError,
    UnsupportedFormatError,
    VersionNotFoundError,
)
from scribestore.cli import EXIT_CODES, exit_code_for, main
from support.cli import damage, invoke, make_project, make_repo, object_file
from support.helpers import child_env


def _caused(outer: BaseException, inner: BaseException) -> BaseException:
    outer.__cause__ = inner
    return outer


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ValueError("bad"), 2),
        (InvalidVersionError("bad version"), 2),
        (InvalidNameError("bad name"), 2),
        (UnknownHandlerError("no handler"), 2),
        (UnsupportedFormatError("newer"), 2),
        (click.UsageError("usage"), 2),
        (ArtifactNotFoundError("no artifact"), 3),
        (VersionNotFoundError("no version"), 3),
        (ExperimentNotFoundError("no experiment"), 3),
        (ObjectNotFoundError("no object"), 3),
        (FileNotFoundError("no file"), 3),
        (IntegrityError("a" * 64, "b" * 64), 4),
        (CorruptObjectError("a" * 64, "bad header"), 4),
        (CorruptManifestError("truncated"), 4),
        (ReadOnlyError("read-only"), 5),
        (PermissionError("denied"), 5),
        (ArtifactLoadError("environment mismatch"), 1),
        (StorageError("network"), 1),
        (RuntimeError("bug"), 1),
        (_caused(SaveError("save failed"), IntegrityError("a" * 64, "b" * 64)), 4),
        (_caused(SaveError("save failed"), ReadOnlyError("read-only")), 5),
        (_caused(SaveError("save failed"), RuntimeError("bug")), 1),
    ],
)
def test_exit_code_mapping(exc: BaseException, code: int) -> None:
    assert exit_code_for(exc) == code
    assert code in EXIT_CODES


def test_help_documents_exit_codes() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for code, meaning in EXIT_CODES.items():
        assert f"{code}  {meaning}" in result.stdout
    for command in ("log", "ls", "history", "show", "get", "cat", "diff", "promote"):
        assert command in result.stdout
    for command in ("verify", "gc", "du", "import-lazyscribe"):
        assert command in result.stdout


def test_usage_error_is_one_line() -> None:
    result = invoke("ls")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scribestore: error: Missing argument")
    assert "scribestore ls --help" in lines[0]


def test_unexpected_errors_have_no_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    manifest = make_repo(tmp_path / "s")

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("something broke\nacross lines")

    monkeypatch.setattr(Repository, "get_artifact_metadata", boom)
    result = invoke("show", manifest, "model")
    assert result.exit_code == 1
    assert result.stderr == "scribestore: error: something broke across lines\n"
    monkeypatch.setenv("SCRIBESTORE_DEBUG", "1")
    with pytest.raises(RuntimeError):
        invoke("show", manifest, "model")


def test_main_returns_the_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ls", str(tmp_path / "missing.json")]) == 3
    assert main(["--version"]) == 0
    assert "scribestore" in capsys.readouterr().out


def _script() -> list[str]:
    # The installed console script when there is one, else the module.
    found = shutil.which("scribestore", path=os.path.dirname(sys.executable))
    return [found] if found else [sys.executable, "-m", "scribestore.cli"]


@pytest.mark.parametrize("via", ["script", "module"])
def test_real_process_exit_codes_and_messages(tmp_path: Path, via: str) -> None:
    manifest = make_repo(tmp_path / "s")
    base = _script() if via == "script" else [sys.executable, "-m", "scribestore.cli"]

    def run(*args: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, *(str(a) for a in args)],
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=120,
            check=False,
        )

    ok = run("ls", manifest, "--json")
    assert ok.returncode == 0, ok.stderr
    assert {r["name"] for r in json.loads(ok.stdout)} == {"features", "model"}
    cases = [
        (("show", manifest, "model@banana"), 3),  # no such alias
        (("show", manifest, "model@2026-02-30T00:00:00"), 2),
        (("ls", manifest, "--no-such-option"), 2),
        (("show", manifest, "nope"), 3),
        (("ls", tmp_path / "absent.json"), 3),
    ]
    for args, code in cases:
        proc = run(*args)
        assert proc.returncode == code, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("scribestore: error: "), proc.stderr
        assert "Traceback" not in proc.stderr
    meta = Repository(manifest, mode="r").get_artifact_metadata("model", version=0)
    damage(object_file(manifest, meta["hash"]))
    proc = run("get", manifest, "model@0", tmp_path / "out.bin")
    assert proc.returncode == 4
    assert proc.stderr.count("\n") == 1 and "integrity check failed" in proc.stderr
    assert not (tmp_path / "out.bin").exists()


def test_a_directory_given_as_manifest_suggests_the_one_inside(tmp_path: Path) -> None:
    manifest = make_repo(tmp_path / "store")
    result = invoke("ls", str(tmp_path / "store"))
    assert result.exit_code == 2
    assert f"did you mean {manifest}" in result.output
    (tmp_path / "empty").mkdir()
    result = invoke("ls", str(tmp_path / "empty"))
    assert result.exit_code == 2 and "not a manifest file" in result.output
    assert "Errno" not in result.output


def test_promoting_a_missing_artifact_is_not_found(tmp_path: Path) -> None:
    project = make_project(tmp_path / "s")
    repo = tmp_path / "s" / "repository.json"
    exp = Project(project, mode="r").experiments[0]
    with pytest.raises(ArtifactLoadError):
        exp.load_artifact("no-such-artifact")
    with pytest.raises(ArtifactNotFoundError):
        exp.load_artifact("no-such-artifact")
    result = invoke("promote", str(project), exp.slug, "no-such-artifact", str(repo))
    assert result.exit_code == 3, result.output
