"""Repository behaviour on every backend (local, memory, S3)."""

from __future__ import annotations

import datetime as dt
import json
import pickle
import sys
from pathlib import Path

import blake3
import msgspec
import pytest

from scribestore import (
    AmbiguousVersionError,
    ArtifactLoadError,
    ArtifactNotFoundError,
    BinaryArtifactError,
    CorruptManifestError,
    IntegrityError,
    InvalidNameError,
    InvalidVersionError,
    ReadOnlyError,
    Repository,
    SaveError,
    UnknownHandlerError,
    UnsupportedFormatError,
    VersionNotFoundError,
)
from scribestore.storage import open_storage
from scribestore.store.layout import object_path
from support.helpers import seal
from support.locations import Location


def repo_at(loc: Location, mode: str = "a") -> Repository:
    return Repository(loc.join("repository.json"), mode=mode, **loc.options)


def manifest_bytes(loc: Location) -> bytes | None:
    storage = open_storage(loc.url, **loc.options)
    try:
        return storage.read_bytes("repository.json")
    except FileNotFoundError:
        return None


def write_manifest(loc: Location, data: bytes) -> None:
    open_storage(loc.url, **loc.options).write_atomic("repository.json", data)


def object_files(loc: Location) -> list[str]:
    return list(open_storage(loc.join("objects"), **loc.options).list())


# --- modes and saving ----------------------------------------------------------


def test_bad_mode_is_value_error(location: Location) -> None:
    with pytest.raises(ValueError, match="mode"):
        repo_at(location, mode="x")


def test_nothing_written_until_save(location: Location) -> None:
    repo = repo_at(location, "w")
    repo.log_artifact("features", [1, 2, 3], "json")
    assert manifest_bytes(location) is None
    assert object_files(location) == []
    meta = repo.get_artifact_metadata("features")
    assert meta["saved"] is False and meta["hash"] is None
    repo.save()
    assert manifest_bytes(location) is not None
    assert repo.get_artifact_metadata("features")["saved"] is True


def test_read_only_mode_refuses_writes(location: Location) -> None:
    repo = repo_at(location, "w")
    repo.log_artifact("a", 1, "json")
    repo.save()
    before = manifest_bytes(location)
    ro = repo_at(location, "r")
    with pytest.raises(ReadOnlyError, match="read-only"):
        ro.log_artifact("a", 2, "json")
    with pytest.raises(ReadOnlyError):
        ro.save()
    with pytest.raises(ReadOnlyError):
        ro.set_artifact_expiry("a")
    assert isinstance(ReadOnlyError("x"), PermissionError)
    assert manifest_bytes(location) == before


@pytest.mark.parametrize("mode", ["a", "w+"])
def test_append_modes_load_and_add(location: Location, mode: str) -> None:
    first = repo_at(location, "w")
    first.log_artifact("x", "one", "text")
    first.save()
    repo = repo_at(location, mode)
    assert repo.load_artifact("x") == "one"
    repo.log_artifact("x", "two", "text")
    repo.save()
    again = repo_at(location, "r")
    assert [again.load_artifact("x", version=i) for i in (0, 1)] == ["one", "two"]


def test_write_mode_starts_empty(location: Location) -> None:
    old = repo_at(location, "w")
    old.log_artifact("x", "old", "text")
    old.log_artifact("y", "old", "text")
    old.save()
    repo = repo_at(location, "w")
    assert "x" not in repo
    assert list(repo) == []
    repo.log_artifact("x", "new", "text")
    repo.save()
    reread = repo_at(location, "r")
    assert reread.load_artifact("x", version=0) == "new"
    assert "y" not in reread
    # After its first save, a "w" repository appends like "a".
    repo.log_artifact("x", "newer", "text")
    repo.save()
    assert repo_at(location, "r").load_artifact("x", version=1) == "newer"


def test_failed_save_keeps_manifest_and_retry_saves_all(location: Location) -> None:
    repo = repo_at(location, "w")
    repo.log_artifact("good", {"a": 1}, "json")
    repo.save()
    before = manifest_bytes(location)
    value: list[object] = [1, 2]
    repo.log_artifact("good", {"a": 2}, "json")
    repo.log_artifact("bad", value, "json")
    value.append(object())  # json cannot serialize this
    with pytest.raises(SaveError, match="bad"):
        repo.save()
    assert manifest_bytes(location) == before
    assert repo_at(location, "r").get_artifact_metadata("good")["version"] == 0
    assert repo.get_artifact_metadata("bad")["saved"] is False
    value.pop()
    repo.save()
    reread = repo_at(location, "r")
    assert reread.load_artifact("good") == {"a": 2}
    assert reread.load_artifact("bad") == [1, 2]


def test_unknown_handler_raises_before_anything(location: Location) -> None:
    repo = repo_at(location, "w")
    with pytest.raises(UnknownHandlerError, match="json"):
        repo.log_artifact("x", 1, "no-such-handler")
    assert list(repo) == []
    assert manifest_bytes(location) is None


# --- versions ------------------------------------------------------------------


def _three_versions(location: Location) -> Repository:
    repo = repo_at(location, "w")
    for value in ("v0", "v1", "v2"):
        repo.log_artifact("doc", value, "text")
    repo.save()
    return repo_at(location, "r")


def test_load_by_int_datetime_and_string(location: Location) -> None:
    repo = _three_versions(location)
    assert repo.load_artifact("doc") == "v2"
    assert [repo.load_artifact("doc", version=i) for i in range(3)] == ["v0", "v1", "v2"]
    meta = repo.get_artifact_metadata("doc", version=1)
    created = dt.datetime.fromisoformat(meta["timestamp"])
    assert created.tzinfo is not None and created.utcoffset() == dt.timedelta(0)
    assert repo.load_artifact("doc", version=created) == "v1"
    assert repo.load_artifact("doc", version=created.replace(tzinfo=None)) == "v1"
    assert repo.load_artifact("doc", version=meta["timestamp"]) == "v1"
    naive_iso = created.replace(tzinfo=None).isoformat(timespec="microseconds")
    assert repo.load_artifact("doc", version=naive_iso) == "v1"
    assert repo.load_artifact("doc", version=naive_iso, match="asof") == "v1"


def test_versions_in_one_second_are_distinct(location: Location) -> None:
    repo = _three_versions(location)
    metas = [repo.get_artifact_metadata("doc", version=i) for i in range(3)]
    assert len({m["timestamp"] for m in metas}) == 3
    assert len({m["hash"] for m in metas}) == 3
    second = metas[0]["timestamp"][:19]
    same_second = [m for m in metas if m["created_at"][:19] == second]
    if len(same_second) > 1:
        with pytest.raises(AmbiguousVersionError) as err:
            repo.load_artifact("doc", version=second)
        for m in same_second:
            assert str(m["version"]) in str(err.value)


def test_second_precision_string_selects_that_second(location: Location) -> None:
    repo = repo_at(location, "w")
    repo.log_artifact("doc", "only", "text")
    repo.save()
    repo = repo_at(location, "r")
    second = repo.get_artifact_metadata("doc")["created_at"][:19]
    assert repo.load_artifact("doc", version=second) == "only"


def test_version_errors(location: Location) -> None:
    repo = _three_versions(location)
    with pytest.raises(ArtifactNotFoundError) as err:
        repo.load_artifact("nope")
    assert isinstance(err.value, LookupError) and isinstance(err.value, ValueError)
    assert "doc" in str(err.value)
    with pytest.raises(VersionNotFoundError):
        repo.load_artifact("doc", version=3)
    with pytest.raises(VersionNotFoundError):
        repo.load_artifact("doc", version="1999-01-01T00:00:00")
    with pytest.raises(VersionNotFoundError):
        repo.load_artifact("doc", version="1999-01-01T00:00:00", match="asof")
    for bad in ("yesterday", "2026-13-01T00:00:00", "2026-01-01", "2026-01-01T00:00:00.1234567"):
        with pytest.raises(InvalidVersionError):
            repo.load_artifact("doc", version=bad)
    for bad_type in (1.5, True, b"2026-01-01T00:00:00", [0]):
        with pytest.raises(InvalidVersionError):
            repo.load_artifact("doc", version=bad_type)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="match"):
        repo.load_artifact("doc", match="closest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="match"):
        repo.load_artifact("doc", version=0, match="nearest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="asof"):
        repo.load_artifact("doc", version=1, match="asof")


def test_expiry_survives_save_and_reload(location: Location) -> None:
    repo = repo_at(location, "w")
    repo.log_artifact("m", "old", "text")
    repo.log_artifact("m", "new", "text")
    repo.save()
    repo = repo_at(location, "a")
    created_new = dt.datetime.fromisoformat(repo.get_artifact_metadata("m", version=1)["timestamp"])
    expiry = created_new + dt.timedelta(microseconds=1)
    repo.set_artifact_expiry("m", version=1, expiry=expiry)
    repo.save()
    reread = repo_at(location, "r")
    meta = reread.get_artifact_metadata("m", version=1)
    # lazyscribe's text: whole seconds, naive UTC.
    assert meta["expiry"] == expiry.replace(tzinfo=None).isoformat(timespec="seconds")
    # Expired now: the newest unexpired version is 0; exact still finds 1.
    assert reread.load_artifact("m") == "old"
    assert reread.load_artifact("m", version=1) == "new"
    # As of a time before the expiry, version 1 was current.
    assert reread.load_artifact("m", version=created_new, match="asof") == "new"
    assert reread.load_artifact("m", version=expiry, match="asof") == "old"
    repo = repo_at(location, "a")
    repo.set_artifact_expiry("m", version=0)  # None: expire now
    repo.save()
    with pytest.raises(VersionNotFoundError, match="expired"):
        repo_at(location, "r").load_artifact("m")
    with pytest.raises(InvalidVersionError):
        repo.set_artifact_expiry("m", version=0, expiry=12)  # type: ignore[arg-type]


# --- bytes, hashes and verification ------------------------------------------


def test_hash_is_blake3_of_streamed_bytes(location: Location) -> None:
    repo = repo_at(location, "w")
    repo.log_artifact("features", [0, 1, 2], "json", indent=4)
    repo.save()
    meta = repo.get_artifact_metadata("features")
    with repo.open_artifact("features") as stream:
        raw = stream.read()
    assert raw == json.dumps([0, 1, 2], indent=4).encode()
    assert meta["hash"] == blake3.blake3(raw).hexdigest()
    assert meta["size"] == len(raw)
    assert set(meta) >= {"name", "version", "hash", "size", "created_at", "expiry"}
    assert set(meta) >= {"handler", "fname"}
    assert meta["handler"] == "json" and meta["fname"].endswith(".json")


def test_identical_bytes_cost_no_object_bytes(location: Location) -> None:
    repo = repo_at(location, "w")
    repo.log_artifact("w", b"\x01" * 100_000, "bytes")
    repo.save()
    before = repo.objects.stats()
    files_before = object_files(location)
    repo.log_artifact("w", b"\x01" * 100_000, "bytes")
    repo.log_artifact("other", b"\x01" * 100_000, "bytes")
    repo.save()
    assert repo.objects.stats() == before
    assert object_files(location) == files_before
    reread = repo_at(location, "r")
    assert reread.get_artifact_metadata("w", version=1)["version"] == 1
    assert (
        reread.get_artifact_metadata("other")["hash"] == reread.get_artifact_metadata("w")["hash"]
    )


def test_corrupt_object_raises_integrity_error_naming_artifact(location: Location) -> None:
    repo = repo_at(location, "w")
    repo.log_artifact("model", bytes(range(256)) * 400, "bytes")
    repo.save()
    digest = repo.get_artifact_metadata("model")["hash"]
    storage = open_storage(location.join("objects"), **location.options)
    blob = storage.read_bytes(object_path(digest))
    storage.write_atomic(object_path(digest), blob[:-1] + bytes([blob[-1] ^ 0xFF]))
    with pytest.raises(IntegrityError) as err:
        repo.load_artifact("model")
    assert "model" in str(err.value) and err.value.version == 0
    assert err.value.expected == digest
    with pytest.raises(IntegrityError), repo.open_artifact("model") as stream:
        while stream.read(4096):
            pass


def test_loading_unsaved_version_is_artifact_load_error(location: Location) -> None:
    repo = repo_at(location, "w")
    repo.log_artifact("x", [1], "json")
    with pytest.raises(ArtifactLoadError, match="save"):
        repo.load_artifact("x")
    with pytest.raises(ArtifactLoadError):
        repo.open_artifact("x")


# --- handlers --------------------------------------------------------------------


def test_builtin_handlers_round_trip(location: Location) -> None:
    import numpy as np

    repo = repo_at(location, "w")
    arr = np.arange(12, dtype="float32").reshape(3, 4)
    values = {
        "j": ({"a": [1, 2]}, "json"),
        "t": ("hello\nworld", "text"),
        "b": (b"\x00\xff", "bytes"),
        "p": ({"tuple": (1, 2), "set": {3}}, "pickle"),
    }
    for name, (value, handler) in values.items():
        repo.log_artifact(name, value, handler)
    repo.log_artifact("n", arr, "numpy")
    repo.save()
    reread = repo_at(location, "r")
    for name, (value, _) in values.items():
        assert reread.load_artifact(name) == value
    loaded = reread.load_artifact("n")
    assert loaded.dtype == arr.dtype and (loaded == arr).all()


def test_file_handler_streams_in_and_out(location: Location, tmp_path: Path) -> None:
    src = tmp_path / "model.safetensors"
    payload = bytes(range(256)) * 20_000
    src.write_bytes(payload)
    repo = repo_at(location, "w")
    repo.log_artifact("model", src, "file")
    repo.save()
    meta = repo.get_artifact_metadata("model")
    assert meta["fname"].endswith(".safetensors")
    assert meta["hash"] == blake3.blake3(payload).hexdigest()
    dest = tmp_path / "out.bin"
    assert repo_at(location, "r").load_artifact("model", dest=dest) == dest
    assert dest.read_bytes() == payload
    with repo_at(location, "r").load_artifact("model") as stream:
        assert stream.read() == payload


def test_file_handler_rejects_missing_file(location: Location, tmp_path: Path) -> None:
    from scribestore import ArtifactLogError

    repo = repo_at(location, "w")
    with pytest.raises(ArtifactLogError, match="missing"):
        repo.log_artifact("model", tmp_path / "missing.bin", "file")
    assert list(repo) == []


def _set_environment(location: Location, name: str, environment: dict[str, str]) -> None:
    doc = json.loads(manifest_bytes(location) or b"")
    for entry in doc["artifacts"][name]:
        entry["environment"] = environment
    write_manifest(location, seal(doc))


def test_environment_mismatch_needs_validate_false(location: Location) -> None:
    import numpy as np

    repo = repo_at(location, "w")
    repo.log_artifact("p", {"k": 1}, "pickle")
    repo.log_artifact("n", np.zeros(3), "numpy")
    repo.save()
    meta = repo.get_artifact_metadata("p")
    assert meta["environment"] == {"python_version": f"{sys.version_info[0]}.{sys.version_info[1]}"}
    _set_environment(location, "p", {"python_version": "2.7"})
    _set_environment(location, "n", {"numpy_version": "1"})
    reread = repo_at(location, "r")
    with pytest.raises(ArtifactLoadError, match="validate=False"):
        reread.load_artifact("p")
    assert reread.load_artifact("p", validate=False) == {"k": 1}
    if np.__version__.split(".")[0] != "1":
        with pytest.raises(ArtifactLoadError):
            reread.load_artifact("n")
    assert (reread.load_artifact("n", validate=False) == 0).all()


# --- diff, filter, container protocol, pickling ----------------------------------


def test_version_diff(location: Location) -> None:
    repo = repo_at(location, "w")
    repo.log_artifact("cfg", {"lr": 0.1, "layers": 2}, "json", indent=1, sort_keys=True)
    repo.log_artifact("cfg", {"lr": 0.2, "layers": 2}, "json", indent=1, sort_keys=True)
    repo.log_artifact("blob", b"12", "bytes")
    repo.log_artifact("blob", b"13", "bytes")
    repo.save()
    diff = repo.get_version_diff("cfg", 0)
    assert '-"lr": 0.1' in diff.replace(" ", "") or '- "lr": 0.1' in diff
    # lazyscribe's text: unnamed headers, each followed by a blank line.
    assert diff.startswith("--- \n\n+++ \n\n@@ ") and '+ "lr": 0.2' in diff.splitlines()
    assert repo.get_version_diff("cfg", (1, 0)) == diff
    with pytest.raises(BinaryArtifactError) as err:
        repo.get_version_diff("blob", (0, 1))
    assert isinstance(err.value, ValueError)
    repo.log_artifact("cfg", {"lr": 0.3}, "json")
    with pytest.raises(ArtifactLoadError):
        repo.get_version_diff("cfg", 0)


def test_filter_by_time_and_by_list(location: Location) -> None:
    repo = repo_at(location, "w")
    repo.log_artifact("a", "a0", "text")
    repo.save()
    cut = repo.get_artifact_metadata("a")["timestamp"]
    repo.log_artifact("a", "a1", "text")
    repo.log_artifact("b", "b0", "text")
    repo.save()
    by_time = repo.filter(cut)
    assert by_time.mode == "r"
    assert by_time.load_artifact("a") == "a0"
    assert "b" not in by_time
    with pytest.raises(ReadOnlyError):
        by_time.log_artifact("a", "x", "text")
    by_list = repo.filter([("a", 1), ("b", 0)])
    assert by_list.load_artifact("a") == "a1"
    assert [m["version"] for m in by_list] == [1, 0]
    restored = pickle.loads(pickle.dumps(by_list))
    assert restored.load_artifact("a") == "a1" and restored.mode == "r"
    with pytest.raises(VersionNotFoundError):
        repo.filter([("a", 7)])
    repo.log_artifact("a", "unsaved", "text")
    with pytest.raises(ArtifactLoadError, match="save"):
        repo.filter(cut)


def test_contains_getitem_iter(location: Location) -> None:
    repo = repo_at(location, "w")
    repo.log_artifact("a", "1", "text")
    repo.log_artifact("a", "2", "text")
    repo.log_artifact("b", "3", "text")
    repo.save()
    assert "a" in repo and "zzz" not in repo and 5 not in repo
    assert repo["a"].version == 0  # the first version, as lazyscribe gives it
    with pytest.raises(KeyError):
        repo["zzz"]
    listed = [(m["name"], m["version"]) for m in repo]
    assert listed == [("a", 0), ("a", 1), ("b", 0)]


def test_pickle_round_trip_keeps_pending_and_saved(location: Location) -> None:
    repo = repo_at(location, "w")
    repo.log_artifact("a", [1], "json")
    repo.save()
    repo.log_artifact("a", [2], "json")
    clone = pickle.loads(pickle.dumps(repo))
    assert clone.load_artifact("a", version=0) == [1]
    clone.save()
    assert repo_at(location, "r").load_artifact("a") == [2]


# --- names and manifests ---------------------------------------------------------


@pytest.mark.parametrize(
    "bad", ["../x", "/abs/path", "..", ".", "a/../../b", "a\x00b", "", "C:\\x"]
)
def test_unsafe_names_rejected_and_store_unchanged(location: Location, bad: str) -> None:
    repo = repo_at(location, "w")
    repo.log_artifact("ok", "fine", "text")
    repo.save()
    before, files = manifest_bytes(location), object_files(location)
    repo = repo_at(location, "a")
    with pytest.raises(InvalidNameError):
        repo.log_artifact(bad, "evil", "text")
    with pytest.raises(InvalidNameError):
        repo.log_artifact("ok", "evil", "text", fname="../escape.txt")
    repo.save()
    assert manifest_bytes(location) == before
    assert object_files(location) == files


def test_names_may_contain_slashes_and_unicode(location: Location) -> None:
    repo = repo_at(location, "w")
    for name in ("models/resnet", "特徴量", "a b", "x.y"):
        repo.log_artifact(name, name, "text")
    repo.save()
    reread = repo_at(location, "r")
    for name in ("models/resnet", "特徴量", "a b", "x.y"):
        assert reread.load_artifact(name) == name


def test_manifest_format(location: Location) -> None:
    repo = repo_at(location, "w")
    repo.log_artifact("f", [1], "json")
    repo.save()
    doc = json.loads(manifest_bytes(location) or b"")
    assert doc["format"] == "scribestore.repository"
    assert doc["format_version"] == 2
    assert len(doc["checksum"]) == 64
    entry = doc["artifacts"]["f"][0]
    assert entry["version"] == 0 and len(entry["hash"]) == 64
    assert entry["created_at"].endswith("Z") or entry["created_at"].endswith("+00:00")


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (
            b'{"format": "scribestore.repository", "format_version": 1, "artifacts": {',
            CorruptManifestError,
        ),
        (b"not json at all", CorruptManifestError),
        (
            b'{"format": "scribestore.repository", "format_version": 99, "artifacts": {}}',
            UnsupportedFormatError,
        ),
        (b'{"format": "something.else", "format_version": 1}', CorruptManifestError),
        (
            b'{"format": "scribestore.repository", "format_version": 1, '
            b'"artifacts": {"a": [{"version": "0"}]}}',
            CorruptManifestError,
        ),
        (b'[{"name": "lazyscribe-style"}]', CorruptManifestError),
    ],
)
def test_bad_manifests_refused(location: Location, content: bytes, error: type) -> None:
    write_manifest(location, content)
    for mode in ("r", "a", "w+"):
        with pytest.raises(error):
            repo_at(location, mode)
    assert manifest_bytes(location) == content


def test_many_versions_open_fast(location: Location) -> None:
    import time

    created = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    entry = {"hash": "ab" * 32, "size": 10, "handler": "json", "fname": "x.json"}
    versions = [
        {**entry, "version": i, "created_at": (created + dt.timedelta(seconds=i)).isoformat()}
        for i in range(100_000)
    ]
    doc = {"format": "scribestore.repository", "format_version": 1, "artifacts": {"big": versions}}
    write_manifest(location, msgspec.json.encode(doc))
    start = time.perf_counter()
    repo = repo_at(location, "r")
    meta = repo.get_artifact_metadata("big", version=99_999)
    asof = repo.get_artifact_metadata(
        "big", version=created + dt.timedelta(seconds=5000.5), match="asof"
    )
    elapsed = time.perf_counter() - start
    assert meta["version"] == 99_999 and asof["version"] == 5000
    assert elapsed < 10, f"opening 100k versions took {elapsed:.2f}s"


_SAVE_CHILD = """
import json, sys
from scribestore import Repository
fpath, options, tag, n = (json.loads(a) for a in sys.argv[1:])
for i in range(n):
    repo = Repository(fpath, mode="a", **options)
    repo.log_artifact("shared", f"{tag}-{i}", "text")
    repo.log_artifact(f"own-{tag}", i, "json")
    repo.save()
"""


def test_concurrent_saves_lose_nothing(shared_location: Location) -> None:
    from support.helpers import python_child

    fpath = shared_location.join("repository.json")
    procs = [python_child(_SAVE_CHILD, fpath, shared_location.options, t, 5) for t in range(3)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    repo = Repository(fpath, mode="r", **shared_location.options)
    shared = [m for m in repo if m["name"] == "shared"]
    assert [m["version"] for m in shared] == list(range(15))
    values = {repo.load_artifact("shared", version=i) for i in range(15)}
    assert values == {f"{t}-{i}" for t in range(3) for i in range(5)}
    for t in range(3):
        assert [repo.load_artifact(f"own-{t}", version=i) for i in range(5)] == list(range(5))
