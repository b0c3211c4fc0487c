"""The lazyscribe module names a user's imports reach: ``_utils``, ``registry``
and the exception tree's lazyscribe classes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import scribestore
from scribestore import Project, Repository
from scribestore._utils import utcnow
from scribestore.exception import (
    ArtifactError,
    ArtifactLoadError,
    ArtifactLogError,
    ArtifactNotFoundError,
    LazyscribeError,
    ScribeStoreError,
)
from scribestore.registry import Registry, registry

lazyscribe = pytest.importorskip("lazyscribe", reason="lazyscribe 2.2.2 is in the dev extra")


def test_utcnow_is_naive_utc_and_accepted_as_a_time(tmp_path: Path) -> None:
    before = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    now = utcnow()
    assert now.tzinfo is None
    assert before <= now <= dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    repo = Repository(tmp_path / "repository.json", mode="w+")
    repo.log_artifact("a", 1, handler="json")
    repo.save()
    assert Repository(repo.fpath, mode="r").load_artifact("a", version=utcnow(), match="asof") == 1


def test_lazyscribe_error_names_catch_what_lazyscribe_catches(tmp_path: Path) -> None:
    assert LazyscribeError is ScribeStoreError
    assert issubclass(ArtifactLoadError, ArtifactError)
    assert issubclass(ArtifactLogError, ArtifactError)
    assert scribestore.ArtifactError is ArtifactError
    repo = Repository(tmp_path / "repository.json", mode="w+")
    with pytest.raises(ArtifactError) as info:
        repo.load_artifact("missing")
    assert isinstance(info.value, ArtifactNotFoundError)


def test_registry_finds_projects_by_name_and_manifest(tmp_path: Path) -> None:
    first = Project(tmp_path / "a" / "project.json", mode="w")
    second = Project(tmp_path / "b" / "project.json", mode="w")
    reg = Registry()
    reg.add_project("first", first)
    reg.add_project("second", second)
    assert "first" in reg and "third" not in reg
    assert reg["second"] is second
    assert reg.search(tmp_path / "a" / "project.json") == "first"
    assert reg.search(str(tmp_path / "b" / "project.json")) == "second"
    assert reg.search(tmp_path / "c" / "project.json") is None
    with pytest.raises(KeyError, match=r"'third'.*'first', 'second'"):
        reg["third"]
    assert isinstance(registry, Registry)


@pytest.mark.parametrize(
    "name", ["Modèle für Ärzte", "日本 model", "naïve  café--run", "Ω/∑ test", "plain-name"]
)
def test_experiment_slugs_match_lazyscribes(tmp_path: Path, name: str) -> None:
    project = Project(tmp_path / "project.json", mode="w")
    with project.log(name) as exp:
        pass
    created = exp.created_at.replace(tzinfo=None)
    theirs = lazyscribe.Experiment(name=name, project=tmp_path / "p.json", created_at=created)
    assert (exp.slug, exp.short_slug) == (theirs.slug, theirs.short_slug)
