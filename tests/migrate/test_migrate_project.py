"""Importing lazyscribe 2.2.2 projects: experiments, tests and artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import blake3
import pytest
from click.testing import CliRunner

from scribestore import Project
from scribestore.cli import cli
from scribestore.migrate import MigrationError, import_lazyscribe
from support.lazy import clock, lazyscribe, tree_digest, write_lazy_repository  # noqa: F401


@pytest.fixture
def lazy_project(tmp_path: Path) -> Path:
    manifest = tmp_path / "lazy" / "project.json"
    project = lazyscribe.Project(manifest, mode="w", author="alice")
    with project.log("Baseline Model") as exp:
        exp.log_parameter("lr", 0.1)
        exp.log_metric("auc", 0.81)
        exp.tag("baseline", "v1")
        exp.log_artifact("features", ["age", "income"], handler="json")
        exp.log_artifact("estimator", {"coef": [1.5, -2.0]}, handler="pickle")
        with exp.log_test("Holdout Set", description="last month") as test:
            test.log_metric("auc", 0.79)
            test.log_artifact("predictions", [0.2, 0.9], handler="json")
    with project.log("Wider") as exp:
        exp.log_metric("auc", 0.86)
        # python-slugify transliterates the omega; the importer still finds the folder.
        with exp.log_test("Test Ω") as test:
            test.log_artifact("scores", {"a": 1}, handler="pickle")
    project.save()
    return manifest


def test_experiments_load_back_equal(lazy_project: Path, tmp_path: Path) -> None:
    dest = tmp_path / "scribe" / "project.json"
    report = import_lazyscribe(lazy_project, dest)
    assert report.kind == "project"
    assert (report.experiments_added, report.versions_added) == (2, 4)
    ours = Project(dest, mode="r")
    theirs = lazyscribe.Project(lazy_project, mode="r")
    assert len(ours) == 2
    for lz in theirs.experiments:
        exp = ours[lz.slug]
        assert (exp.name, exp.short_slug, exp.author) == (lz.name, lz.short_slug, lz.author)
        assert exp.metrics == lz.metrics and exp.parameters == lz.parameters
        assert exp.tags == lz.tags
        assert exp.created_at.replace(tzinfo=None) == lz.created_at
        for art in lz.artifacts:
            assert exp.load_artifact(art.name) == lz.load_artifact(art.name)
            source = lz.path / art.fname
            (meta,) = [a for a in exp.to_dict()["artifacts"] if a["name"] == art.name]
            assert meta["hash"] == blake3.blake3(source.read_bytes()).hexdigest()
        assert [t.name for t in exp.tests] == [t.name for t in lz.tests]
        for test, lz_test in zip(exp.tests, lz.tests, strict=True):
            assert test.metrics == lz_test.metrics
            assert test.description == lz_test.description
            for art in lz_test.artifacts:
                assert test.load_artifact(art.name) == lz_test.load_artifact(art.name)


def test_rerun_is_idempotent_and_source_untouched(lazy_project: Path, tmp_path: Path) -> None:
    before = tree_digest(lazy_project.parent)
    dest = tmp_path / "scribe" / "project.json"
    import_lazyscribe(lazy_project, dest)
    saved = dest.read_bytes()
    report = import_lazyscribe(lazy_project, dest)
    assert (report.experiments_added, report.experiments_skipped, report.changed) == (0, 2, False)
    assert dest.read_bytes() == saved
    assert tree_digest(lazy_project.parent) == before


def test_new_experiments_are_added_on_rerun(lazy_project: Path, tmp_path: Path) -> None:
    dest = tmp_path / "scribe" / "project.json"
    import_lazyscribe(lazy_project, dest)
    project = lazyscribe.Project(lazy_project, mode="a", author="bob")
    with project.log("Third") as exp:
        exp.log_metric("auc", 0.9)
    project.save()
    report = import_lazyscribe(lazy_project, dest)
    assert (report.experiments_added, report.experiments_skipped) == (1, 2)
    assert {e.name for e in Project(dest, mode="r").experiments} == {
        "Baseline Model",
        "Wider",
        "Third",
    }


def test_missing_test_artifact_is_refused(lazy_project: Path, tmp_path: Path) -> None:
    entries = json.loads(lazy_project.read_text())
    test_art = entries[0]["tests"][0]["artifacts"][0]
    (lazy_project.parent / entries[0]["slug"] / "holdout-set" / test_art["fname"]).unlink()
    dest = tmp_path / "scribe" / "project.json"
    with pytest.raises(MigrationError, match="missing"):
        import_lazyscribe(lazy_project, dest)
    assert not dest.exists()


def test_kind_mismatch_with_destination(lazy_project: Path, tmp_path: Path) -> None:
    lazy_repo = write_lazy_repository(tmp_path / "lazyrepo")
    repo_dest = tmp_path / "scribe" / "repository.json"
    import_lazyscribe(lazy_repo, repo_dest)
    with pytest.raises(MigrationError, match=r"scribestore\.repository manifest"):
        import_lazyscribe(lazy_project, repo_dest)


def test_cli_import(lazy_project: Path, tmp_path: Path) -> None:
    dest = tmp_path / "scribe" / "project.json"
    runner = CliRunner()
    result = runner.invoke(cli, ["import-lazyscribe", str(lazy_project), str(dest)])
    assert result.exit_code == 0, result.stderr
    assert "imported 2 experiment(s) (4 artifact(s))" in result.stdout
    again = runner.invoke(cli, ["import-lazyscribe", str(lazy_project), str(dest), "--json"])
    report = json.loads(again.stdout)
    assert report["experiments_skipped"] == 2 and report["changed"] is False
    bad = runner.invoke(cli, ["import-lazyscribe", str(tmp_path / "nope.json"), str(dest)])
    assert bad.exit_code == 2
    assert bad.stderr.startswith("scribestore: error: no lazyscribe manifest")
    mapped = runner.invoke(
        cli,
        ["import-lazyscribe", str(lazy_project), str(tmp_path / "x.json"), "--map-handler", "oops"],
    )
    assert mapped.exit_code == 2
    unknown = runner.invoke(
        cli,
        [
            "import-lazyscribe",
            str(lazy_project),
            str(tmp_path / "y" / "project.json"),
            "--map-handler",
            "json=nosuchhandler",
        ],
    )
    assert unknown.exit_code == 2
    assert "nosuchhandler" in unknown.stderr
    assert not (tmp_path / "y" / "project.json").exists()


def test_cli_import_repository_quiet(tmp_path: Path, clock) -> None:  # noqa: F811
    lazy_repo = write_lazy_repository(tmp_path / "lazy")
    dest = tmp_path / "scribe" / "repository.json"
    result = CliRunner().invoke(cli, ["import-lazyscribe", str(lazy_repo), str(dest), "-q"])
    assert result.exit_code == 0 and result.stdout == ""
    result = CliRunner().invoke(cli, ["import-lazyscribe", str(lazy_repo), str(dest)])
    assert "imported 0 version(s); 6 already present" in result.stdout
    assert " -> " not in result.stdout  # every handler kept its own alias
