"""lazyscribe's object model: artifacts as objects, experiments and tests built
directly, frozen read-only types, equality and ordering, and the details the
drop-in issue found broken."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from pathlib import Path
from typing import Any
from unittest.mock import Mock, patch

import attrs
import fsspec
import numpy as np
import pytest
from attrs.exceptions import FrozenInstanceError
from fsspec.implementations.local import LocalFileSystem

from scribestore import (
    ArtifactLoadError,
    FrozenError,
    ParameterError,
    Project,
    Repository,
    SaveError,
    UnsavedError,
)
from scribestore.artifacts import _get_handler
from scribestore.artifacts.json import JSONArtifact
from scribestore.artifacts.pickle import PickleArtifact
from scribestore.experiment import Experiment, ReadOnlyExperiment
from scribestore.registry import Registry
from scribestore.test import ReadOnlyTest, Test

UTC = dt.timezone.utc
LAZY_KEYS = {"name", "fname", "created_at", "expiry", "version", "handler"}


def saved_project(tmp_path: Path) -> Project:
    project = Project(tmp_path / "project.json", mode="w", author="ada")
    with project.log("exp") as exp:
        exp.log_artifact("features", [0, 1, 2], handler="json")
        exp.log_artifact("model", {"w": 1}, handler="pickle")
        with exp.log_test("subpop") as test:
            test.log_artifact("scores", [0.5], handler="json")
    project.save()
    return project


def test_experiment_artifacts_are_handler_objects(tmp_path: Path) -> None:
    project = Project(tmp_path / "project.json", mode="w", author="ada")
    with project.log("exp") as exp:
        exp.log_artifact("features", [0, 1, 2], handler="json")
    features = exp.artifacts[0]
    assert isinstance(features, JSONArtifact)
    assert (features.name, features.value, features.dirty) == ("features", [0, 1, 2], True)
    project.save()
    # The same object, now saved; it keeps the value it was logged with.
    assert exp.artifacts[0] is features and features.dirty is False
    assert features.value == [0, 1, 2]
    reread = Project(tmp_path / "project.json", mode="r")["exp"].artifacts[0]
    assert isinstance(reread, JSONArtifact)
    assert (reread.value, reread.dirty, reread.fname) == (None, False, features.fname)
    assert reread.created_at.tzinfo is None  # lazyscribe's naive UTC


def test_a_changed_handler_field_is_what_validation_checks(tmp_path: Path) -> None:
    saved_project(tmp_path)
    exp = Project(tmp_path / "project.json", mode="w+")["exp"]
    model = exp.artifacts[1]
    assert isinstance(model, PickleArtifact)
    model.python_version = "2.7"
    with pytest.raises(ArtifactLoadError, match=r"2\.7"):
        exp.load_artifact("model")
    assert exp.load_artifact("model", validate=False) == {"w": 1}


def test_test_artifacts_and_metadata(tmp_path: Path) -> None:
    saved_project(tmp_path)
    exp = Project(tmp_path / "project.json", mode="r")["exp"]
    (scores,) = exp.tests[0].artifacts
    assert isinstance(scores, JSONArtifact) and scores.name == "scores"
    meta = exp.to_dict()["artifacts"][0]
    assert set(meta) >= LAZY_KEYS
    # lazyscribe's time text (whole seconds, naive), and ours exactly.
    assert dt.datetime.strptime(meta["created_at"], "%Y-%m-%dT%H:%M:%S")
    assert dt.datetime.fromisoformat(meta["timestamp"]).tzinfo is not None
    assert meta["handler"] == "json" and len(meta["hash"]) == 64


def test_repository_artifacts_getitem_and_search(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="w")
    repo.log_artifact("a", 1, handler="json")
    repo.log_artifact("a", 2, handler="json")
    repo.log_artifact("b", b"x", handler="bytes")
    assert [(o.name, o.version, o.dirty) for o in repo.artifacts] == [
        ("a", 0, True),
        ("a", 1, True),
        ("b", 0, True),
    ]
    repo.save()
    assert all(not o.dirty for o in repo.artifacts)
    assert repo["a"].version == 0 and repo["a"].value == 1  # the first, as lazyscribe gives
    bytes_object = repo["b"]
    assert bytes_object.alias == "bytes" and bytes_object.binary
    reopened = Repository(tmp_path / "repository.json", mode="r")
    assert reopened._search_artifact_versions("a", 0).version == 0
    meta = reopened.get_artifact_metadata("a", version=0)
    assert set(meta) >= LAZY_KEYS and meta["saved"] is True


def test_experiment_built_directly_joins_a_project(tmp_path: Path) -> None:
    exp = Experiment("Direct", project=tmp_path / "project.json", author="ada")
    assert exp.project == tmp_path / "project.json" and exp.dir == tmp_path
    assert exp.path == tmp_path / exp.slug
    assert isinstance(exp.fs, LocalFileSystem)
    exp.log_metric("auc", 0.5)
    exp.log_artifact("features", [1], handler="json")
    with pytest.raises(ArtifactLoadError):
        exp.load_artifact("features")  # not saved yet
    project = Project(tmp_path / "project.json", mode="w")
    project.append(other=exp)
    project.save()
    again = Project(tmp_path / "project.json", mode="r")[exp.slug]
    assert again.load_artifact("features") == [1] and again.metrics == {"auc": 0.5}
    test = Test("standalone", "made alone")
    assert test.path == Path(".") and test.artifacts == []


def test_read_only_types_are_frozen(tmp_path: Path) -> None:
    exp = ReadOnlyExperiment("Frozen", project=Path("project.json"))
    with pytest.raises(FrozenInstanceError):
        exp.name = "changed"
    with pytest.raises(FrozenError):
        exp.log_metric("m", 1)
    test = ReadOnlyTest("t", "d")
    with pytest.raises(FrozenInstanceError):
        test.name = "changed"
    with pytest.raises(FrozenInstanceError):
        test.log_artifact("a", 1, handler="json")
    assert "ReadOnlyExperiment" in repr(exp) and "ReadOnlyTest" in repr(test)
    saved_project(tmp_path)
    loaded = Project(tmp_path / "project.json", mode="r")["exp"]
    assert isinstance(loaded, ReadOnlyExperiment)
    assert isinstance(loaded.tests[0], ReadOnlyTest)
    assert exp.name == "Frozen" and test.name == "t"


def test_equality_and_ordering(tmp_path: Path) -> None:
    project = saved_project(tmp_path)
    original = project["exp"]
    reread = Project(tmp_path / "project.json", mode="w+")["exp"]
    assert reread == original and reread is not original
    reread.log_metric("m", 1)
    assert reread != original
    assert reread > original and original < reread  # same slug: by last update
    t0 = dt.datetime(2025, 1, 1, 9, 30)
    older = Experiment("a", created_at=t0)
    newer = Experiment("b", created_at=t0 + dt.timedelta(seconds=1))
    assert sorted([newer, older]) == [older, newer]
    assert older <= older and newer >= older
    # Naive times are UTC: equal to the aware value.
    assert Experiment("a", created_at=t0).created_at == t0.replace(tzinfo=UTC)


def test_a_naive_created_at_saves_and_reloads(tmp_path: Path) -> None:
    project = Project(tmp_path / "project.json", mode="w")
    with project.log("exp") as exp:
        exp.created_at = dt.datetime(2024, 5, 1, 12, 0)
        exp.last_updated = dt.datetime(2024, 5, 1, 12, 0, 1)
    project.save()
    reread = Project(tmp_path / "project.json", mode="r").experiments[0]
    assert reread.created_at == dt.datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_numpy_scalar_metrics_save_and_non_json_parameters_are_refused(tmp_path: Path) -> None:
    project = Project(tmp_path / "project.json", mode="w")
    with project.log("exp") as exp:
        exp.log_metric("auc", np.float64(0.75))
        exp.log_metric("n", np.int64(3))
        with pytest.raises(ParameterError, match="data-type"):
            exp.log_parameter("data-type", int)
        with pytest.raises(TypeError):
            exp.log_metric("array", np.arange(3))
        with exp.log_test("t") as test, pytest.raises(ParameterError):
            test.log_parameter("p", object())
    assert "data-type" not in exp.parameters
    project.save()
    metrics = Project(tmp_path / "project.json", mode="r")["exp"].metrics
    assert metrics == {"auc": 0.75, "n": 3} and type(metrics["n"]) is int


def test_version_diff_keeps_lines_apart_and_warns_on_one_version(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    repo = Repository(tmp_path / "repository.json", mode="w")
    repo.log_artifact("cfg", {"a": 1}, handler="json")
    repo.log_artifact("cfg", {"a": 2}, handler="json")
    repo.save()
    diff = repo.get_version_diff("cfg", (0, 1))
    # lazyscribe's text: difflib's lines joined by newlines.
    assert diff == '--- \n\n+++ \n\n@@ -1 +1 @@\n\n-{"a": 1}\n+{"a": 2}'
    lines = diff.splitlines()
    assert '-{"a": 1}' in lines and '+{"a": 2}' in lines
    with caplog.at_level(logging.WARNING):
        assert repo.get_version_diff("cfg", 1) == ""
    assert "only version 1" in caplog.text


def test_filter_with_unsaved_versions_raises_runtime_error(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="w")
    repo.log_artifact("a", 1, handler="json")
    with pytest.raises(UnsavedError) as raised:
        repo.filter([("a", 0)])
    assert isinstance(raised.value, RuntimeError)
    assert isinstance(raised.value, ArtifactLoadError)


def test_merge_keyword_form_warns_and_merges(tmp_path: Path) -> None:
    first = Project(tmp_path / "a.json", mode="w")
    with first.log("one"):
        pass
    second = Project(tmp_path / "b.json", mode="w")
    with second.log("two"):
        pass
    with pytest.warns(DeprecationWarning):
        merged = first.merge(other=second)
    assert [e.name for e in merged.experiments] == ["one", "two"]


def test_threads_share_a_project(tmp_path: Path) -> None:
    project = Project(tmp_path / "project.json", mode="w")

    def work(worker: int) -> None:
        for i in range(20):
            with project.log(f"w{worker}-{i}") as exp:
                exp.log_metric("i", i)
                exp.log_artifact("value", [worker, i], handler="json")

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    project.save()
    reread = Project(tmp_path / "project.json", mode="r")
    assert len(reread.experiments) == 80
    assert sorted(tuple(e.load_artifact("value")) for e in reread.experiments) == sorted(
        (w, i) for w in range(4) for i in range(20)
    )


def test_get_handler_gives_the_artifact_class() -> None:
    assert _get_handler("json") is JSONArtifact
    assert _get_handler("pickle") is PickleArtifact
    assert attrs.has(_get_handler("bytes"))
    with pytest.raises(ValueError):
        _get_handler("no-such-handler")
    plugin = Mock()
    plugin.name = "dummy"
    with patch("scribestore.artifacts.entry_points", return_value=[plugin]):
        with pytest.raises(TypeError):
            _get_handler("dummy")
        plugin.load.side_effect = ImportError()
        with pytest.raises(ImportError):
            _get_handler("dummy")


class _NoWrites(LocalFileSystem):
    """A filesystem that raises a ValueError (not an OSError) for writes."""

    protocol = "nowrites"

    def open(self, path: str, mode: str = "rb", *args: Any, **kwargs: Any) -> Any:
        if mode.startswith("w"):
            raise ValueError("write mode not supported")
        return super().open(path, mode, *args, **kwargs)


def test_a_backend_raising_a_non_os_error_fails_the_save_with_save_error(tmp_path: Path) -> None:
    fsspec.register_implementation("nowrites", _NoWrites, clobber=True)
    repo = Repository(f"nowrites://{tmp_path}/repository.json", mode="w")
    repo.log_artifact("a", [1], handler="json")
    with pytest.raises(SaveError) as raised:
        repo.save()
    assert "ValueError" in str(raised.value)
    assert not (tmp_path / "repository.json").exists()


def test_load_reads_what_other_writers_saved(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="a")
    repo.log_artifact("a", 1, handler="json")
    repo.save()
    other = Repository(tmp_path / "repository.json", mode="a")
    other.log_artifact("a", 2, handler="json")
    other.save()
    repo.log_artifact("b", 3, handler="json")
    repo.load()
    assert [(o.name, o.version, o.dirty) for o in repo.artifacts] == [
        ("a", 0, False),
        ("a", 1, False),
        ("b", 0, True),
    ]
    project = Project(tmp_path / "project.json", mode="a")
    with project.log("first"):
        pass
    project.save()
    writer = Project(tmp_path / "project.json", mode="a")
    with writer.log("second"):
        pass
    writer.save()
    with project.log("third"):
        pass
    project.load()
    assert [e.name for e in project.experiments] == ["first", "second", "third"]


def test_fname_may_name_a_subfolder(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="w")
    repo.log_artifact("cfg", {"a": 1}, handler="json", fname="configs/cfg.json")
    repo.save()
    reread = Repository(tmp_path / "repository.json", mode="r")
    assert reread["cfg"].fname == "configs/cfg.json"
    assert reread.load_artifact("cfg") == {"a": 1}
    with pytest.raises(ValueError):
        repo.log_artifact("cfg", {"a": 2}, handler="json", fname="../cfg.json")


def test_dependencies_resolve_and_survive_save(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream = Project(tmp_path / "upstream.json", mode="w")
    with upstream.log("Features") as source:
        source.log_parameter("cols", ["a"])
    upstream.save()
    downstream = Project(tmp_path / "downstream.json", mode="w")
    with downstream.log("Model") as exp:
        exp.dependencies[source.short_slug] = upstream[source.slug]
    downstream.save()
    saved = json.loads((tmp_path / "downstream.json").read_text())
    assert saved["experiments"][0]["dependencies"] == {
        source.short_slug: f"{tmp_path / 'upstream.json'}|{source.slug}"
    }
    # By path: the upstream project file is opened.
    dep = Project(tmp_path / "downstream.json", mode="r")[exp.slug].dependencies
    assert isinstance(dep[source.short_slug], Experiment)
    assert dep[source.short_slug].parameters == {"cols": ["a"]}
    # By registered name, as lazyscribe's registry is used.
    named = Registry()
    named.add_project("up", upstream)
    monkeypatch.setattr("scribestore.experiment.registry", named)
    monkeypatch.setattr("scribestore.project.registry", named)
    again = Project(tmp_path / "again.json", mode="w")
    with again.log("Other") as other:
        other.dependencies[source.short_slug] = upstream[source.slug]
    again.save()
    raw = json.loads((tmp_path / "again.json").read_text())["experiments"][0]["dependencies"]
    assert raw == {source.short_slug: f"up|{source.slug}"}
    (tmp_path / "upstream.json").rename(tmp_path / "moved.json")  # only the registry knows it
    resolved = Project(tmp_path / "again.json", mode="r")[other.slug].dependencies
    assert resolved[source.short_slug] == upstream[source.slug]
    # An upstream that cannot be found stays its reference (the project still opens).
    monkeypatch.setattr("scribestore.project.registry", Registry())
    kept = Project(tmp_path / "again.json", mode="r")[other.slug].dependencies
    assert kept == {source.short_slug: f"up|{source.slug}"}


def test_objects_follow_their_versions_and_keep_user_edits(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="w")
    repo.log_artifact("m", {"w": 1}, handler="pickle")
    repo.save()
    obj = repo["m"]
    obj.python_version = "2.7"
    repo.set_artifact_expiry("m", version=0, expiry=dt.datetime(2030, 1, 1))
    assert repo["m"] is obj and obj.expiry == dt.datetime(2030, 1, 1)
    repo.log_artifact("other", 1, handler="json")
    repo.save()  # an unrelated save keeps the object and the edit
    assert repo["m"] is obj
    with pytest.raises(ArtifactLoadError):
        repo.load_artifact("m", version=0)
    repo.load()
    assert repo["m"] is obj


def test_a_filtered_view_loads_by_its_version_numbers(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="w")
    for i in range(3):
        repo.log_artifact("a", i, handler="json")
    repo.save()
    view = Repository(tmp_path / "repository.json", mode="r").filter([("a", 2)])
    assert view.load_artifact("a", version=2) == 2
    with pytest.raises(ValueError):
        view.load_artifact("a", version=0)


def test_load_keeps_unsaved_edits_and_w_plus_saves_in_place_edits(tmp_path: Path) -> None:
    project = Project(tmp_path / "project.json", mode="w")
    with project.log("exp") as exp:
        exp.log_metric("m", 1)
        with exp.log_test("t") as test:
            test.log_metric("tm", 1)
    project.save()
    editing = Project(tmp_path / "project.json", mode="w+")
    editing[exp.slug].log_metric("m", 2)
    editing.load()
    assert editing[exp.slug].metrics == {"m": 2}
    editing.save()
    again = Project(tmp_path / "project.json", mode="w+")
    again[exp.slug].tests[0].log_metric("tm", 2)
    again[exp.slug].tags = ["x"]
    again[exp.slug].parameters["p"] = 1  # changed in place, as lazyscribe users do
    again.save()
    final = Project(tmp_path / "project.json", mode="r")[exp.slug]
    assert final.metrics == {"m": 2} and final.tags == ["x"] and final.parameters == {"p": 1}
    assert final.tests[0].metrics == {"tm": 2}
    with pytest.raises(FrozenInstanceError):
        final.dirty = True


def test_a_save_waits_for_changes_made_from_other_threads(tmp_path: Path) -> None:
    project = Project(tmp_path / "project.json", mode="w")
    with project.log("exp") as exp:
        exp.log_metric("m", 0)
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            exp.log_metric("m", i)
            exp.log_artifact("a", {"v": i}, handler="json", overwrite=True)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(10):
            project.save()
    finally:
        stop.set()
        thread.join()
    project.save()
    saved = Project(tmp_path / "project.json", mode="r")[exp.slug]
    assert saved.metrics == exp.metrics
    assert saved.load_artifact("a") == exp.artifacts[0].value
    assert not exp.has_unsaved


def test_repository_changes_from_other_threads_are_not_lost(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="w")
    repo.log_artifact("x", 0, handler="json")
    repo.save()
    stop = threading.Event()
    queued: list[int] = []

    def queue() -> None:
        i = 0
        while not stop.is_set() and i < 50:
            i += 1
            repo.log_artifact("y", i, handler="json")
            queued.append(i)

    thread = threading.Thread(target=queue)
    thread.start()
    try:
        for _ in range(10):
            repo.save()
    finally:
        stop.set()
        thread.join()
    repo.save()
    reread = Repository(tmp_path / "repository.json", mode="r")
    values = [reread.load_artifact("y", version=v) for v in range(len(queued))]
    assert values == queued


def test_paths_drop_the_protocol_as_lazyscribe_does(tmp_path: Path) -> None:
    repo = Repository(f"file://{tmp_path}/repository.json", mode="w")
    assert repo.fpath == tmp_path / "repository.json" and repo.protocol == "file"
    memory = Project("memory://bucket-paths/project.json", mode="w")
    assert memory.fpath == Path("bucket-paths/project.json") and memory.protocol == "memory"
    with memory.log("exp") as exp:
        pass
    assert exp.path == Path("bucket-paths") / exp.slug
