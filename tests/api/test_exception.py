"""scribestore.exception: one error tree, and each failure mapped to a named error."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

import scribestore
import scribestore.exception as exception
from scribestore import (
    CorruptPackError,
    MigrationError,
    ObjectStore,
    ScribeStoreError,
    StorageError,
    StorageTimeoutError,
)
from scribestore.migrate import MigrationError as MigrateModuleError
from scribestore.storage import checked, open_storage
from scribestore.store.packs import parse_index


def test_every_error_is_in_the_tree_and_exported() -> None:
    names = [n for n in exception.__all__]
    for name in names:
        cls = getattr(exception, name)
        assert issubclass(cls, (ScribeStoreError, Warning)), name
        assert getattr(scribestore, name) is cls, f"scribestore.{name} is not exported"


def test_migration_errors_are_the_trees() -> None:
    assert MigrateModuleError is MigrationError and issubclass(MigrationError, ValueError)


def test_a_time_out_in_the_object_store_is_a_storage_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ObjectStore(tmp_path / "objects")
    digest = store.put(b"some bytes")

    def slow(*args: object, **kwargs: object) -> bytes:
        raise TimeoutError("read timed out")

    monkeypatch.setattr(store.storage, "read_range", slow)
    with pytest.raises(StorageTimeoutError, match="timed out") as info:
        store.stat(digest)
    assert str(tmp_path) in str(info.value)
    assert isinstance(info.value, StorageError) and isinstance(info.value, TimeoutError)


def test_checked_maps_backend_failures(tmp_path: Path) -> None:
    storage = open_storage(tmp_path)

    def fail(exc: OSError) -> object:
        def call() -> object:
            raise exc

        return call

    with pytest.raises(StorageTimeoutError, match="do this"):
        checked(storage, fail(TimeoutError("slow")), "x", hint="do this")  # type: ignore[arg-type]
    with pytest.raises(StorageError, match=r"failed on x: .*denied"):
        checked(storage, fail(PermissionError(errno.EACCES, "denied")), "x")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):  # the caller decides what missing means
        checked(storage, fail(FileNotFoundError("x")), "x")  # type: ignore[arg-type]


def test_a_malformed_pack_index_is_a_corrupt_pack_error() -> None:
    with pytest.raises(CorruptPackError, match="bad header"):
        parse_index("0" * 32, b"not an index at all")
