"""Bad input on every backend: a clear error from our tree, nothing written, nothing lost.

Each test snapshots every file of the store (manifests, lock files, objects,
packs) with its bytes before the bad calls and compares after them; where a
handle stays usable, it then saves, to show the failed call queued nothing.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import sys
from collections.abc import Callable
from typing import Any

import pytest
from attrs.exceptions import FrozenInstanceError

from scribestore import (
    ArtifactLoadError,
    CorruptManifestError,
    FrozenError,
    InvalidNameError,
    InvalidVersionError,
    Project,
    ReadOnlyError,
    Repository,
    SaveError,
    ScribeStoreError,
    UnknownHandlerError,
    UnsupportedFormatError,
)
from support.helpers import seal
from support.locations import Location
from support.store_util import project_at, read_file, repo_at, snapshot, write_file

NUMPY_MAJOR = None
try:
    import numpy as np

    NUMPY_MAJOR = np.__version__.split(".")[0]
except ImportError:  # pragma: no cover - numpy is a dev dependency
    np = None  # type: ignore[assignment]


@pytest.fixture
def store(location: Location) -> Location:
    """A store with a saved repository and a saved project."""
    repo = repo_at(location, "w")
    repo.log_artifact("features", [1, 2, 3], "json")
    repo.log_artifact("features", [1, 2, 3, 4], "json")
    repo.log_artifact("obj", {"k": 1}, "pickle")
    if np is not None:
        repo.log_artifact("arr", np.arange(3), "numpy")
    repo.save()
    project = project_at(location, "w")
    with project.log("exp") as exp:
        exp.log_metric("auc", 0.5)
        exp.log_artifact("obj", {"k": 2}, "pickle")
        with exp.log_test("holdout") as test:
            test.log_artifact("preds", [0, 1], "json")
    project.save()
    return location


def expect_all(error: type[ScribeStoreError], calls: list[Callable[[], Any]]) -> None:
    for call in calls:
        with pytest.raises(error) as info:
            call()
        # A clear message, from our tree (and the builtin it maps to).
        assert isinstance(info.value, ScribeStoreError) and str(info.value)


def _log_in_experiment(project: Project, **kwargs: Any) -> Callable[[], None]:
    def run() -> None:
        with project.log("new") as exp:
            exp.log_artifact(**kwargs)

    return run


def _log_in_test(project: Project, **kwargs: Any) -> Callable[[], None]:
    def run() -> None:
        with project.log("new") as exp, exp.log_test("t") as test:
            test.log_artifact(**kwargs)

    return run


# --- unknown handler ----------------------------------------------------------------


def test_unknown_handler(store: Location) -> None:
    before = snapshot(store)
    repo, project = repo_at(store), project_at(store)
    bad_handlers: list[Any] = ["nope", "", "JSON", 123, None]
    calls: list[Callable[[], Any]] = []
    for handler in bad_handlers:
        calls.append(lambda h=handler: repo.log_artifact("x", [1], h))
        calls.append(_log_in_experiment(project, name="x", value=[1], handler=handler))
        calls.append(_log_in_test(project, name="x", value=[1], handler=handler))
    expect_all(UnknownHandlerError, calls)
    assert isinstance(UnknownHandlerError("x"), ValueError)
    repo.save()
    project.save()
    assert snapshot(store) == before
    assert len(project) == 1 and "x" not in repo


def test_unknown_handler_in_manifest(store: Location) -> None:
    doc = json.loads(read_file(store, "repository.json"))
    doc["artifacts"]["features"][1]["handler"] = "uninstalled-plugin"
    write_file(store, "repository.json", seal(doc))
    before = snapshot(store)
    repo = repo_at(store, "r")
    with pytest.raises(UnknownHandlerError, match="uninstalled-plugin"):
        repo.load_artifact("features")
    assert repo.load_artifact("features", version=0) == [1, 2, 3]
    assert snapshot(store) == before


# --- malformed versions ---------------------------------------------------------------


BAD_VERSIONS: list[Any] = [
    "yesterday",
    "",
    "2026-13-01T00:00:00",
    "2026-02-30T00:00:00",
    "2026-01-01",
    "2026-01-01T25:00:00",
    "2026-01-01T00:00:00+25:00",
    "2026-01-01T00:00:00.1234567",
    "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:00:00+01:00",
    " 1",
    1.5,
    True,
    [0],
    (0,),
    b"0",
    {"version": 0},
    dt.date(2026, 1, 1),
]


def test_malformed_versions(store: Location) -> None:
    before = snapshot(store)
    repo = repo_at(store)
    calls: list[Callable[[], Any]] = []
    for bad in BAD_VERSIONS:
        calls += [
            lambda v=bad: repo.load_artifact("features", version=v),
            lambda v=bad: repo.open_artifact("features", version=v),
            lambda v=bad: repo.get_artifact_metadata("features", version=v),
            lambda v=bad: repo.set_artifact_expiry("features", version=v),
            lambda v=bad: repo.get_version_diff("features", version=v),
            lambda v=bad: repo.get_version_diff("features", version=(0, v)),
            lambda v=bad: repo.filter([("features", v)]),
        ]
    calls += [
        lambda: repo.load_artifact("features", match="fuzzy"),
        lambda: repo.load_artifact("features", version=0, match="asof"),
        lambda: repo.get_version_diff("features", version=(0, 1, 2)),  # type: ignore[arg-type]
        lambda: repo.set_artifact_expiry("features", version=0, expiry="soon"),
        lambda: repo.set_artifact_expiry("features", version=0, expiry=12),  # type: ignore[arg-type]
        lambda: repo.filter("not a time"),
    ]
    expect_all(InvalidVersionError, calls)
    repo.save()
    assert snapshot(store) == before


# --- names that would escape the store ------------------------------------------------

BAD_NAMES: list[Any] = [
    "../x",
    "..",
    ".",
    "",
    "/abs/path",
    "a/../../b",
    "a/./b",
    "a\\..\\b",
    "\\\\server\\share",
    "C:\\x",
    "c:relative",
    "a\x00b",
    None,
    42,
    b"bytes",
]


def test_escaping_names(store: Location) -> None:
    before = snapshot(store)
    repo, project = repo_at(store), project_at(store)
    calls: list[Callable[[], Any]] = []
    for bad in BAD_NAMES:
        calls += [
            lambda n=bad: repo.log_artifact(n, [1], "json"),
            _log_in_experiment(project, name=bad, value=[1], handler="json"),
            _log_in_test(project, name=bad, value=[1], handler="json"),
        ]
        if bad is not None:  # project.log(None) is lazyscribe's TypeError territory
            calls.append(lambda n=bad: project.log(n).__enter__())
    for fname in ["../evil.json", "/etc/passwd", "a/../../b.json", "a\\b.json", "a//b", "..", ""]:
        calls += [
            lambda f=fname: repo.log_artifact("ok", [1], "json", fname=f),
            _log_in_experiment(project, name="ok", value=[1], handler="json", fname=fname),
        ]
    expect_all(InvalidNameError, calls)
    repo.save()
    project.save()
    assert snapshot(store) == before


# --- bad manifests -------------------------------------------------------------------


def _mutated(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> bytes:
    doc = copy.deepcopy(doc)
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is _DROP:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return seal(doc)


_DROP = object()
_V = ("artifacts", "features", 0)


def _bad_aliases(doc: dict[str, Any]) -> list[tuple[str, bytes, type[Exception]]]:
    entry = doc["artifacts"]["features"][0]
    target = {"version": 0, "created_at": entry["created_at"], "hash": entry["hash"]}
    move = {"target": target, "moved_at": "2026-01-01T00:00:00Z", "moved_by": "me"}
    v3 = {**doc, "format_version": 3}

    def aliased(aliases: Any) -> bytes:
        return _mutated(v3, ("aliases",), aliases)

    return [
        ("alias name", aliased({"features": {"../x": [move]}}), CorruptManifestError),
        ("alias no moves", aliased({"features": {"prod": []}}), CorruptManifestError),
        ("alias list", aliased({"features": [move]}), CorruptManifestError),
        (
            "alias naive time",
            aliased({"features": {"prod": [{**move, "moved_at": "2026-01-01T00:00:00"}]}}),
            CorruptManifestError,
        ),
        (
            "alias bad hash",
            aliased({"features": {"prod": [{**move, "target": {**target, "hash": "x"}}]}}),
            CorruptManifestError,
        ),
        (
            "aliases in v2",
            _mutated(doc, ("aliases",), {"features": {"p": [move]}}),
            CorruptManifestError,
        ),
    ]


def _bad_repository_manifests(valid: bytes) -> list[tuple[str, bytes, type[Exception]]]:
    doc = json.loads(valid)
    cases: list[tuple[str, bytes, type[Exception]]] = [
        ("truncated half", valid[: len(valid) // 2], CorruptManifestError),
        ("truncated end", valid[:-3], CorruptManifestError),
        ("empty", b"", CorruptManifestError),
        ("not json", b"this is not json", CorruptManifestError),
        ("binary", b"\x00\xff\xfe", CorruptManifestError),
        # A JSON list is lazyscribe's format ("[]" its empty store); these are neither.
        ("array of numbers", b"[1, 2]", CorruptManifestError),
        ("array truncated", b'[{"name": ', CorruptManifestError),
        ("null", b"null", CorruptManifestError),
        ("lazyscribe", b'[{"name": "features", "version": 0}]', CorruptManifestError),
        ("format v4", _mutated(doc, ("format_version",), 4), UnsupportedFormatError),
        *_bad_aliases(doc),
        ("format huge", _mutated(doc, ("format_version",), 10**30), UnsupportedFormatError),
        ("format zero", _mutated(doc, ("format_version",), 0), CorruptManifestError),
        ("format str", _mutated(doc, ("format_version",), "1"), CorruptManifestError),
        ("other format", _mutated(doc, ("format",), "scribestore.project"), CorruptManifestError),
        ("no format", _mutated(doc, ("format",), _DROP), CorruptManifestError),
        ("artifacts list", _mutated(doc, ("artifacts",), []), CorruptManifestError),
        ("version str", _mutated(doc, (*_V, "version"), "0"), CorruptManifestError),
        ("version gap", _mutated(doc, (*_V, "version"), 5), CorruptManifestError),
        ("size negative", _mutated(doc, (*_V, "size"), -1), CorruptManifestError),
        ("size huge", _mutated(doc, (*_V, "size"), 2**70), CorruptManifestError),
        ("size float", _mutated(doc, (*_V, "size"), 1.5), CorruptManifestError),
        ("hash int", _mutated(doc, (*_V, "hash"), 123), CorruptManifestError),
        ("hash upper", _mutated(doc, (*_V, "hash"), "A" * 64), CorruptManifestError),
        ("hash short", _mutated(doc, (*_V, "hash"), "0" * 63), CorruptManifestError),
        ("hash path", _mutated(doc, (*_V, "hash"), "../" + "0" * 61), CorruptManifestError),
        ("no hash", _mutated(doc, (*_V, "hash"), _DROP), CorruptManifestError),
        ("time word", _mutated(doc, (*_V, "created_at"), "yesterday"), CorruptManifestError),
        ("time int", _mutated(doc, (*_V, "created_at"), 5), CorruptManifestError),
        (
            "time naive",
            _mutated(doc, (*_V, "created_at"), "2026-01-01T00:00:00"),
            CorruptManifestError,
        ),
        (
            "time offset",
            _mutated(doc, (*_V, "created_at"), "9999-12-31T23:59:59-23:59"),
            CorruptManifestError,
        ),
        ("expiry word", _mutated(doc, (*_V, "expiry"), "soon"), CorruptManifestError),
        ("handler null", _mutated(doc, (*_V, "handler"), None), CorruptManifestError),
        ("params list", _mutated(doc, (*_V, "params"), []), CorruptManifestError),
        ("env int", _mutated(doc, (*_V, "environment"), {"x": 1}), CorruptManifestError),
        (
            "escaping name",
            _mutated(doc, ("artifacts", "../evil"), doc["artifacts"]["features"]),
            CorruptManifestError,
        ),
        (
            "deep nesting",
            _mutated(doc, (*_V, "params"), {"x": 0}).replace(
                b'"x": 0', b'"x": ' + b"[" * 100_000 + b"]" * 100_000
            ),
            CorruptManifestError,
        ),
    ]
    return cases


# Decoding does not depend on the backend; on S3 (slow to open) a sample of the
# cases shows that refusing writes nothing there either.
S3_SAMPLE = {"truncated end", "format v2", "format v9", "time offset"}


def _cases(
    store: Location, cases: list[tuple[str, bytes, type[Exception]]]
) -> list[tuple[str, bytes, type[Exception]]]:
    return [c for c in cases if store.backend != "s3" or c[0] in S3_SAMPLE]


def test_bad_repository_manifests(store: Location) -> None:
    valid = read_file(store, "repository.json")
    for label, content, error in _cases(store, _bad_repository_manifests(valid)):
        write_file(store, "repository.json", content)
        before = snapshot(store)
        for mode in ("r", "a", "w+"):
            with pytest.raises(error) as info:
                repo_at(store, mode)
            assert "repository.json" in str(info.value), label
        if error is UnsupportedFormatError:
            # Even mode "w" (which starts empty) will not overwrite a newer format.
            with pytest.raises(UnsupportedFormatError):
                repo_at(store, "w")
        assert snapshot(store) == before, label


def _bad_project_manifests(valid: bytes) -> list[tuple[str, bytes, type[Exception]]]:
    doc = json.loads(valid)
    e = ("experiments", 0)
    a = (*e, "artifacts", 0)
    return [
        ("truncated", valid[: len(valid) // 2], CorruptManifestError),
        ("not json", b"{{", CorruptManifestError),
        ("format v9", _mutated(doc, ("format_version",), 9), UnsupportedFormatError),
        ("repo format", _mutated(doc, ("format",), "scribestore.repository"), CorruptManifestError),
        ("experiments dict", _mutated(doc, ("experiments",), {}), CorruptManifestError),
        ("bad id", _mutated(doc, (*e, "id"), "x"), CorruptManifestError),
        ("no slug", _mutated(doc, (*e, "slug"), _DROP), CorruptManifestError),
        ("time", _mutated(doc, (*e, "created_at"), "noon"), CorruptManifestError),
        ("tags str", _mutated(doc, (*e, "tags"), "a,b"), CorruptManifestError),
        ("tests dict", _mutated(doc, (*e, "tests"), {"x": 1}), CorruptManifestError),
        ("artifact name", _mutated(doc, (*a, "name"), "../x"), CorruptManifestError),
        ("artifact hash", _mutated(doc, (*a, "hash"), "z" * 64), CorruptManifestError),
        ("artifact size", _mutated(doc, (*a, "size"), -5), CorruptManifestError),
        (
            "duplicate id",
            json.dumps({**doc, "experiments": doc["experiments"] * 2}).encode(),
            CorruptManifestError,
        ),
    ]


def test_bad_project_manifests(store: Location) -> None:
    valid = read_file(store, "project.json")
    for label, content, error in _cases(store, _bad_project_manifests(valid)):
        write_file(store, "project.json", content)
        before = snapshot(store)
        for mode in ("r", "a", "w+"):
            with pytest.raises(error):
                project_at(store, mode)
        assert snapshot(store) == before, label


def test_manifest_damaged_after_open_fails_save_and_stays(store: Location) -> None:
    repo = repo_at(store, "a")
    repo.log_artifact("features", [9], "json")
    project = project_at(store, "a")
    with project.log("another") as exp:
        exp.log_metric("auc", 1.0)
    for name, content in (
        ("repository.json", b'{"format": "scribestore.repository", "format_version": 1, "ar'),
        ("project.json", b'{"format": "scribestore.project", "format_version": 99}'),
    ):
        write_file(store, name, content)
    before = snapshot(store)
    with pytest.raises(SaveError) as err:
        repo.save()
    assert isinstance(err.value.__cause__, CorruptManifestError)
    with pytest.raises(SaveError) as err:
        project.save()
    assert isinstance(err.value.__cause__, UnsupportedFormatError)
    after = snapshot(store)
    # The manifests and everything stored are untouched; the failed save may have
    # published the new version's object first (unreferenced: gc's to collect).
    assert {p: after[p] for p in before} == before
    assert all(p.startswith("objects/") for p in set(after) - set(before))
    assert repo.get_artifact_metadata("features")["saved"] is False


# --- writes in mode "r" -----------------------------------------------------------------


def test_writes_in_read_only_mode(store: Location) -> None:
    before = snapshot(store)
    repo = repo_at(store, "r")
    writable = repo_at(store, "a")
    project = project_at(store, "r")
    appendable = project_at(store, "a")  # saved experiments are read-only in mode "a"
    exp = appendable["exp"]
    test = exp.tests[0]
    source = project_at(store, "w+")["exp"]

    def set_name() -> None:
        exp.name = "renamed"

    calls: list[Callable[[], Any]] = [
        lambda: repo.log_artifact("new", [1], "json"),
        lambda: repo.save(),
        lambda: repo.set_artifact_expiry("features", version=0),
        lambda: source.promote_artifact(repo, "obj"),
        lambda: repo.filter("2030-01-01T00:00:00").log_artifact("x", 1, "json"),
        lambda: project.log("new").__enter__(),
        lambda: project.save(),
        lambda: project.append(source),
    ]
    expect_all(ReadOnlyError, calls)
    assert isinstance(ReadOnlyError("x"), PermissionError)
    # Saved experiments of read-only projects are frozen: lazyscribe's error.
    frozen: list[Callable[[], Any]] = [
        lambda: exp.log_metric("auc", 1.0),
        lambda: exp.log_parameter("lr", 1.0),
        lambda: exp.tag("x"),
        lambda: exp.log_artifact("new", [1], "json"),
        lambda: exp.log_test("t").__enter__(),
        set_name,
        lambda: test.log_metric("m", 1.0),
        lambda: test.log_artifact("new", [1], "json"),
    ]
    expect_all(FrozenError, frozen)
    assert isinstance(FrozenError("x"), FrozenInstanceError)
    writable.save()
    appendable.save()
    assert snapshot(store) == before
    assert exp.name == "exp" and exp.metrics == {"auc": 0.5}


# --- validate=True in a mismatched environment -------------------------------------------


def test_validate_in_mismatched_environment(store: Location) -> None:
    doc = json.loads(read_file(store, "repository.json"))
    doc["artifacts"]["obj"][0]["environment"] = {"python_version": "2.7"}
    if "arr" in doc["artifacts"]:
        other = "1" if NUMPY_MAJOR != "1" else "2"
        doc["artifacts"]["arr"][0]["environment"] = {"numpy_version": other}
    write_file(store, "repository.json", seal(doc))
    pdoc = json.loads(read_file(store, "project.json"))
    pdoc["experiments"][0]["artifacts"][0]["environment"] = {"python_version": "2.7"}
    write_file(store, "project.json", seal(pdoc))
    before = snapshot(store)

    repo = repo_at(store, "r")
    exp = project_at(store, "r")["exp"]
    calls: list[Callable[[], Any]] = [
        lambda: repo.load_artifact("obj"),
        lambda: repo.load_artifact("obj", validate=True, version=0),
        lambda: exp.load_artifact("obj"),
    ]
    if "arr" in doc["artifacts"]:
        calls.append(lambda: repo.load_artifact("arr"))
    expect_all(ArtifactLoadError, calls)
    with pytest.raises(ArtifactLoadError) as err:
        repo.load_artifact("obj")
    message = str(err.value)
    assert "'obj'" in message and "2.7" in message and "validate=False" in message
    assert f"{sys.version_info[0]}.{sys.version_info[1]}" in message
    assert repo.load_artifact("obj", validate=False) == {"k": 1}
    assert exp.load_artifact("obj", validate=False) == {"k": 2}
    assert snapshot(store) == before


def test_bad_mode_and_types_write_nothing(store: Location) -> None:
    before = snapshot(store)
    for bad in ("x", "rw", "", None, 1):
        with pytest.raises(ValueError):
            Repository(store.join("repository.json"), mode=bad, **store.options)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            Project(store.join("project.json"), mode=bad, **store.options)  # type: ignore[arg-type]
    assert snapshot(store) == before
