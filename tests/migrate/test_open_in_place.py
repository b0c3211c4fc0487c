"""lazyscribe 2.2.2 manifests opened in place by Repository(...) and Project(...)."""

from __future__ import annotations

import datetime as dt
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


def test_gc_between_open_and_save_loses_nothing(lazy_repo: Path) -> None:
    from scribestore.ops.gc import collect_garbage

    objects = lazy_repo.parent / "objects"
    other = Repository(lazy_repo.parent / "other.json", mode="a", objects=objects)
    other.log_artifact("x", 1, handler="json")
    other.save()  # the object store is known to gc
    theirs = lazyscribe.Repository(lazy_repo, mode="r")
    repo = Repository(lazy_repo, mode="a")  # the lazyscribe files are stored now
    collect_garbage(objects, grace=dt.timedelta(0))  # and collected: nothing references them
    repo.log_artifact("features", [9], handler="json")
    repo.save()  # converts again under its lease
    reread = Repository(lazy_repo, mode="r")
    assert reread.verify().problems == ()
    for art in theirs.artifacts:
        assert reread.load_artifact(art.name, version=art.version) == theirs.load_artifact(
            art.name, version=art.version
        )


def test_a_later_lazyscribe_original_is_kept_too(lazy_repo: Path) -> None:
    first = lazy_repo.read_bytes()
    Repository(lazy_repo, mode="a").save()  # converted; the original kept
    # lazyscribe writes the path again (someone still runs it), then we save once more.
    lazy = lazyscribe.Repository(lazy_repo.with_name("elsewhere.json"), mode="w")
    lazy.log_artifact("precious", [1], handler="json")
    lazy.save()
    second = lazy_repo.with_name("elsewhere.json").read_bytes()
    (lazy_repo.parent / "precious").mkdir(exist_ok=True)
    for f in (lazy_repo.parent / "precious").iterdir():
        f.unlink()
    lazy_repo.write_bytes(second)
    Repository(lazy_repo, mode="w").save()
    assert lazy_repo.with_name("repository.json.lazyscribe").read_bytes() == first
    assert lazy_repo.with_name("repository.json.lazyscribe.1").read_bytes() == second


def test_mode_w_does_not_need_the_lazyscribe_files(lazy_repo: Path) -> None:
    for entry in json.loads(lazy_repo.read_text()):
        (lazy_repo.parent / entry["name"] / entry["fname"]).unlink(missing_ok=True)
    repo = Repository(lazy_repo, mode="w")
    repo.log_artifact("fresh", 1, handler="json")
    repo.save()
    assert [a.name for a in Repository(lazy_repo, mode="r").artifacts] == ["fresh"]


def test_a_crafted_lazyscribe_project_is_refused_at_open(lazy_project: Path) -> None:
    entries = json.loads(lazy_project.read_text())
    before = lazy_project.read_bytes()
    for field, bad in (("description", 42), ("metrics", [1]), ("tags", 5)):
        crafted = json.loads(json.dumps(entries))
        if field == "description":
            crafted[0]["tests"][0]["description"] = bad
        else:
            crafted[0][field] = bad
        lazy_project.write_text(json.dumps(crafted))
        for mode in ("r", "a", "w+"):
            with pytest.raises(CorruptManifestError):
                Project(lazy_project, mode=mode)
    lazy_project.write_bytes(before)
    assert Project(lazy_project, mode="r").experiments
