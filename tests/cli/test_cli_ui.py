"""scribestore ui: the web view served by the command, as a person starts it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from scribestore import Repository
from support.cli import error_line, invoke


def test_ui_serves_the_store_on_localhost_until_interrupted(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="w")
    repo.log_artifact("notes", "hello", handler="text")
    repo.save()
    child = subprocess.Popen(
        [sys.executable, "-m", "scribestore.cli", "ui", str(tmp_path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith(f"scribestore ui: serving {tmp_path} at http://127.0.0.1:")
        url = line.split(" at ", 1)[1].split(" ", 1)[0]
        index = httpx.get(url, timeout=20)
        assert index.status_code == 200 and "repository.json" in index.text
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=20) == 0
        assert child.stdout.read().strip() == "scribestore ui: stopped"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_ui_of_a_path_with_no_manifest_exits_not_found(tmp_path: Path) -> None:
    result = invoke("ui", tmp_path / "nothing-here")
    assert result.exit_code == 3
    assert "no repository.json or project.json at" in error_line(result)


def test_ui_on_a_taken_port_says_so(tmp_path: Path) -> None:
    from scribestore.cli.ui import bind

    repo = Repository(tmp_path / "repository.json", mode="w")
    repo.log_artifact("notes", "hello", handler="text")
    repo.save()
    taken = bind(0)
    try:
        result = invoke("ui", tmp_path, "--port", taken.getsockname()[1])
    finally:
        taken.close()
    assert result.exit_code == 1
    assert "cannot listen on 127.0.0.1:" in error_line(result)
