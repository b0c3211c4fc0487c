"""The demo (``make demo``): runs quickly, prints consistent numbers, reruns cleanly."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from scribestore import Project, Repository
from scribestore.demo import MARKER, DemoSummary, main, run


def check(summary: DemoSummary) -> None:
    assert summary.model_versions == 3
    assert summary.versions == 4  # three model versions and the promoted config
    assert summary.verified == summary.artifacts
    assert 0 < summary.distinct_bytes <= summary.logical_bytes
    assert 0 < summary.stored_bytes <= summary.logical_bytes
    assert summary.dedup_ratio == pytest.approx(
        summary.logical_bytes / summary.stored_bytes, rel=1e-2
    )


def test_main_full_size_and_rerun(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "demo-store"
    started = time.perf_counter()
    assert main([str(store)]) == 0
    assert time.perf_counter() - started < 60
    out = capsys.readouterr().out
    for expected in (
        "version 2 saved",
        "promoted model-config",
        "time travel",
        "verified",
        "dedup ratio",
    ):
        assert expected in out
    assert (store / MARKER).is_file()

    # Run again in the same directory: it starts over and reports the same store.
    assert main([str(store), "--json"]) == 0
    summary = DemoSummary(**json.loads(capsys.readouterr().out))
    check(summary)
    assert summary.logical_bytes > 3 * 99_000_000
    repo = Repository(store / "repository.json", mode="r")
    assert [m["version"] for m in repo if m["name"] == "model"] == [0, 1, 2]
    assert repo.objects.stats().stored_size == summary.stored_bytes
    project = Project(store / "project.json", mode="r")
    assert len(project) == 3
    assert repo.load_artifact("model-config") == project[summary.best_experiment].load_artifact(
        "model-config"
    )


def test_run_small(tmp_path: Path) -> None:
    lines: list[str] = []
    summary = run(tmp_path / "d", model_bytes=2_000_000, say=lines.append)
    check(summary)
    assert any(line.strip().startswith("dedup ratio") for line in lines)


def test_refuses_a_directory_it_did_not_make(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    precious = tmp_path / "mine" / "keep.txt"
    precious.parent.mkdir()
    precious.write_text("do not delete")
    assert main([str(precious.parent), "--model-mb", "1"]) == 2
    assert "not made by the demo" in capsys.readouterr().err
    assert precious.read_text() == "do not delete"
    assert main([str(precious), "--model-mb", "1"]) == 2
