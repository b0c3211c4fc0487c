"""The documentation builds with ``mkdocs build --strict`` and matches the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from scribestore.cli import EXIT_CODES, cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_strict_build(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (it is in the dev extra)")
    pytest.importorskip("mkdocstrings", reason="mkdocstrings is not installed (dev extra)")
    site = tmp_path / "site"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(site),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    api = (site / "api" / "index.html").read_text()
    for name in ("Repository", "Project", "Experiment", "ObjectStore", "IntegrityError"):
        assert f"scribestore.{name}" in api or f"scribestore.exception.{name}" in api, name
    assert (site / "FORMAT" / "index.html").is_file()


def test_exit_code_table_matches_the_cli() -> None:
    text = (DOCS / "cli.md").read_text()
    documented = dict(re.findall(r"^\| (\d) \| (.+?) \|$", text, flags=re.MULTILINE))
    assert {int(k): v for k, v in documented.items()} == EXIT_CODES


def test_every_command_is_documented() -> None:
    text = (DOCS / "cli.md").read_text()
    for name in cli.commands:
        assert f"| `{name} " in text, name
