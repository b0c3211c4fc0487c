"""Project and Experiment behaviour on every backend."""

from __future__ import annotations

import json
import pickle

import pytest
from attrs.exceptions import FrozenInstanceError

from scribestore import (
    ArtifactLoadError,
    ArtifactLogError,
    CorruptManifestError,
    Experiment,
    ExperimentNotFoundError,
    FrozenError,
    InvalidNameError,
    Project,
    ReadOnlyError,
    SaveError,
    UnsupportedFormatError,
)
from scribestore.experiment import ReadOnlyExperiment
from scribestore.storage import open_storage
from support.locations import Location


def project_at(loc: Location, mode: str = "a", author: str | None = "ada") -> Project:
    return Project(loc.join("project.json"), mode=mode, author=author, **loc.options)


def manifest(loc: Location) -> bytes | None:
    try:
        return open_storage(loc.url, **loc.options).read_bytes("project.json")
    except FileNotFoundError:
        return None


def test_bad_mode(location: Location) -> None:
    with pytest.raises(ValueError, match="mode"):
        project_at(location, "rw")


def test_log_save_reload(location: Location) -> None:
    project = project_at(location)
    with project.log("Baseline Model") as exp:
        exp.log_metric("auc", 0.91)
        exp.log_parameter("lr", 0.1)
        exp.tag("baseline", "v1")
        exp.log_artifact("features", [0, 1, 2], "json")
        with exp.log_test("holdout", "the 2025 holdout") as test:
            test.log_metric("auc", 0.88)
            test.log_parameter("rows", 1000)
            test.log_artifact("preds", [0.1, 0.9], "json")
    assert manifest(location) is None
    project.save()
    reread = project_at(location, "r")
    exp = reread["baseline-model"]
    assert isinstance(exp, Experiment)
    assert exp.name == "Baseline Model" and exp.author == "ada"
    assert exp.short_slug == "baseline-model"
    assert exp.slug.startswith("baseline-model-") and len(exp.slug) == len("baseline-model-") + 14
    assert reread[exp.slug] is exp
    assert exp.metrics == {"auc": 0.91} and exp.parameters == {"lr": 0.1}
    assert exp.tags == ["baseline", "v1"]
    assert exp.load_artifact("features") == [0, 1, 2]
    [test] = exp.tests
    assert test.name == "holdout" and test.description == "the 2025 holdout"
    assert test.metrics == {"auc": 0.88} and test.load_artifact("preds") == [0.1, 0.9]
    assert exp.created_at.tzinfo is not None and exp.last_updated >= exp.created_at
    d = exp.to_dict()
    assert d["slug"] == exp.slug and d["artifacts"][0]["name"] == "features"
    assert len(d["artifacts"][0]["hash"]) == 64
    assert [e["slug"] for e in reread] == [exp.slug]
    assert "baseline-model" in reread and exp.slug in reread and "nope" not in reread


def test_experiment_added_only_on_clean_exit(location: Location) -> None:
    project = project_at(location)
    with pytest.raises(RuntimeError), project.log("broken") as exp:
        exp.log_metric("x", 1)
        raise RuntimeError("training crashed")
    assert len(project) == 0
    with project.log("fine"):
        pass
    assert len(project) == 1


def test_modes(location: Location) -> None:
    project = project_at(location, "w")
    with project.log("first") as exp:
        exp.log_metric("m", 1)
    project.save()
    ro = project_at(location, "r")
    with pytest.raises(ReadOnlyError), ro.log("x"):
        pass
    with pytest.raises(ReadOnlyError):
        ro.save()
    # Saved experiments of read-only projects are frozen, as lazyscribe's are.
    assert isinstance(ro["first"], ReadOnlyExperiment)
    with pytest.raises(FrozenInstanceError):
        ro["first"].log_metric("m", 2)
    with pytest.raises(FrozenError):
        ro["first"].metrics = {}
    appendable = project_at(location, "a")
    with pytest.raises(FrozenError):
        appendable["first"].tag("late")
    with appendable.log("second"):
        pass
    appendable.save()
    assert [e.name for e in project_at(location, "r").experiments] == ["first", "second"]
    editable = project_at(location, "w+", author="bob")
    editable["first"].log_metric("m", 3)
    editable.save()
    first = project_at(location, "r")["first"]
    assert first.metrics == {"m": 3} and first.last_updated_by == "bob" and first.author == "ada"
    fresh = project_at(location, "w")
    assert len(fresh) == 0
    with fresh.log("only"):
        pass
    fresh.save()
    assert [e.name for e in project_at(location, "r").experiments] == ["only"]


def test_artifact_rules(location: Location) -> None:
    project = project_at(location)
    with project.log("e") as exp:
        exp.log_artifact("a", 1, "json")
        with pytest.raises(ArtifactLogError, match="overwrite"):
            exp.log_artifact("a", 2, "json")
        exp.log_artifact("a", 3, "json", overwrite=True)
        with pytest.raises(InvalidNameError):
            exp.log_artifact("../a", 1, "json")
        with pytest.raises(ArtifactLoadError, match="saved"):
            exp.load_artifact("a")
    with pytest.raises(ArtifactLoadError, match="no artifact"):
        exp.load_artifact("zzz")
    project.save()
    assert project_at(location, "r")["e"].load_artifact("a") == 3


def test_failed_save_keeps_manifest_and_retry_works(location: Location) -> None:
    project = project_at(location)
    with project.log("ok") as exp:
        exp.log_metric("m", 1)
    project.save()
    before = manifest(location)
    bad: list[object] = []
    with project.log("bad") as exp:
        exp.log_artifact("x", bad, "json")
    bad.append(object())  # changed after it was logged: only the save can find out
    with pytest.raises(SaveError, match="'x'"):
        project.save()
    assert manifest(location) == before
    bad.clear()
    project.save()
    assert project_at(location, "r")["bad"].load_artifact("x") == []


def test_save_merges_concurrent_experiments(location: Location) -> None:
    one = project_at(location)
    two = project_at(location)
    with one.log("from-one"):
        pass
    with two.log("from-two"):
        pass
    one.save()
    two.save()
    names = [e.name for e in project_at(location, "r").experiments]
    assert sorted(names) == ["from-one", "from-two"]
    assert sorted(e.name for e in two.experiments) == ["from-one", "from-two"]


def test_merge_is_deterministic(location: Location, tmp_path) -> None:
    base = project_at(location, "w+")
    with base.log("shared") as exp:
        exp.log_metric("v", 1)
    base.save()
    newer = project_at(location, "w+")
    newer["shared"].log_metric("v", 2)
    other = Project(tmp_path / "other" / "project.json", mode="w")
    with other.log("elsewhere") as exp:
        exp.log_artifact("blob", b"abc", "bytes")
    other.save()
    merged_a = base.merge(newer, other)
    merged_b = newer.merge(other, base)
    for merged in (merged_a, merged_b):
        assert [e.slug for e in merged.experiments] == [e.slug for e in merged_a.experiments]
        assert merged["shared"].metrics == {"v": 2}
    merged_a.save()
    reread = project_at(location, "r")
    assert reread["elsewhere"].load_artifact("blob") == b"abc"
    assert reread["shared"].metrics == {"v": 2}


def test_filter_getitem_pickle(location: Location) -> None:
    project = project_at(location)
    for i in range(3):
        with project.log(f"run {i}") as exp:
            exp.log_metric("score", i)
            exp.log_artifact("a", i, "json")
    project.save()
    best = list(project.filter(lambda e: e.metrics["score"] >= 1))
    assert [e.name for e in best] == ["run 1", "run 2"]
    with pytest.raises(ExperimentNotFoundError) as err:
        project["missing"]
    assert isinstance(err.value, KeyError) and "missing" in str(err.value)
    clone = pickle.loads(pickle.dumps(project))
    assert clone["run-2"].load_artifact("a") == 2
    exp_clone = pickle.loads(pickle.dumps(project["run-1"]))
    assert exp_clone.load_artifact("a") == 1


def test_manifest_format_and_bad_manifests(location: Location) -> None:
    project = project_at(location)
    with project.log("e") as exp:
        exp.log_artifact("a", [1], "json")
    project.save()
    doc = json.loads(manifest(location) or b"")
    assert doc["format"] == "scribestore.project" and doc["format_version"] == 2
    assert len(doc["experiments"][0]["artifacts"][0]["hash"]) == 64
    storage = open_storage(location.url, **location.options)
    storage.write_atomic("project.json", b'{"format": "scribestore.project", "format_version": 7}')
    with pytest.raises(UnsupportedFormatError):
        project_at(location, "r")
    storage.write_atomic("project.json", b'{"format": "scribestore.project", "format_ver')
    with pytest.raises(CorruptManifestError):
        project_at(location, "a")
