"""lazyscribe 2.2.2 manifests opened in place by Repository(...) and Project(...)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from scribestore import CorruptManifestError, MigrationError, Project, ReadOnlyError, Repository
from scribestore.experiment import ReadOnlyExperiment
from support.lazy import clock, lazyscribe, tree_digest, write_lazy_repository  # noqa: F401


@pytest.fixture
def lazy_repo(tmp_path: Path, clock) -> Path:  # noqa: F811
    return write_lazy_repository(tmp_path / "lazy")


@pytest.fixture
def lazy_project(tmp_path: Path) -> Path:
    manifest = tmp_path / "lazyproj" / "project.json"
    project = lazyscribe.Project(manifest, mode="w", author="alice")
    with project.log("Baseline") as exp:
        exp.log_metric("auc", 0.8)
        exp.log_artifact("features", ["age"], handler="json")
        with exp.log_test("Holdout") as test:
            test.log_artifact("predictions", [0.2], handler="json")
    project.save()
    return manifest


def lazy_files(root: Path) -> dict[str, str]:
    return {k: v for k, v in tree_digest(root).items() if not k.startswith("objects/")}


def test_a_lazyscribe_repository_reads_in_every_mode(lazy_repo: Path) -> None:
    theirs = lazyscribe.Repository(lazy_repo, mode="r")
    before = lazy_files(lazy_repo.parent)
    for mode in ("r", "a", "w+"):
        ours = Repository(lazy_repo, mode=mode)
        for art in theirs.artifacts:
            assert ours.load_artifact(art.name, version=art.version) == theirs.load_artifact(
                art.name, version=art.version
            )
        assert len(ours.artifacts) == len(theirs.artifacts)
    # Reading converts nothing on disk: the lazyscribe files are as they were.
    assert lazy_files(lazy_repo.parent) == before
    assert json.loads(lazy_repo.read_text())[0]["name"]


def test_the_first_save_converts_and_keeps_the_original(
    lazy_repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    original = lazy_repo.read_bytes()
    repo = Repository(lazy_repo, mode="a")
    repo.log_artifact("features", [9], handler="json")
    with caplog.at_level(logging.WARNING):
        repo.save()
    assert "converted lazyscribe manifest" in caplog.text
    backup = lazy_repo.with_name("repository.json.lazyscribe")
    assert backup.read_bytes() == original
    assert json.loads(lazy_repo.read_text())["format"] == "scribestore.repository"
    reread = Repository(lazy_repo, mode="r")
    assert reread.load_artifact("features") == [9]
    assert reread.load_artifact("features", version=0) == [1, 2, 3]
    assert len(reread.artifacts) == len(json.loads(original)) + 1
    # The lazyscribe artifact files stay where they were.
    for entry in json.loads(original):
        assert (lazy_repo.parent / entry["name"] / entry["fname"]).is_file()


def test_mode_w_drops_the_lazyscribe_versions_but_keeps_the_original(lazy_repo: Path) -> None:
    original = lazy_repo.read_bytes()
    repo = Repository(lazy_repo, mode="w")
    repo.log_artifact("only", 1, handler="json")
    repo.save()
    assert [a.name for a in Repository(lazy_repo, mode="r").artifacts] == ["only"]
    assert lazy_repo.with_name("repository.json.lazyscribe").read_bytes() == original


def test_a_lazyscribe_project_opens_in_place(lazy_project: Path) -> None:
    project = Project(lazy_project, mode="r")
    (exp,) = project.experiments
    assert isinstance(exp, ReadOnlyExperiment)
    assert exp.metrics == {"auc": 0.8} and exp.load_artifact("features") == ["age"]
    assert exp.tests[0].load_artifact("predictions") == [0.2]
    with pytest.raises(ReadOnlyError):
        project.save()
    # Two opens agree on the experiment (its id is stable).
    assert Project(lazy_project, mode="r").experiments[0].id == exp.id
    appending = Project(lazy_project, mode="a")
    with appending.log("Next") as new:
        new.log_metric("auc", 0.9)
    appending.save()
    names = [e.name for e in Project(lazy_project, mode="r").experiments]
    assert names == ["Baseline", "Next"]
    assert lazy_project.with_name("project.json.lazyscribe").is_file()


def test_missing_files_and_the_wrong_kind_are_refused(lazy_repo: Path, lazy_project: Path) -> None:
    with pytest.raises(CorruptManifestError, match="repository"):
        Project(lazy_repo, mode="r")
    entry = json.loads(lazy_repo.read_text())[0]
    (lazy_repo.parent / entry["name"] / entry["fname"]).unlink()
    with pytest.raises(MigrationError, match="missing"):
        Repository(lazy_repo, mode="r")
