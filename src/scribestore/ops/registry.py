"""The registry of manifests that use a store (FORMAT section 7).

Garbage collection marks from every registered manifest, so a manifest MUST
be registered before anything it references is stored. A record is a small
create-only JSON file under ``manifests/``, named by a hash of where the
manifest is. A manifest inside the store's tree (the directory holding the
object store) is recorded by its location relative to that tree, so the
record survives moving or copying the whole store.
"""

from __future__ import annotations

import contextlib
import os
from functools import partial
from typing import TYPE_CHECKING, Literal

import msgspec

from scribestore.exception import CorruptObjectError, StorageError
from scribestore.storage import check_relpath, checked, split_url
from scribestore.store.hashing import hash_bytes
from scribestore.store.layout import MANIFESTS_DIR

if TYPE_CHECKING:
    from scribestore.store.objects import ObjectStore

__all__ = [
    "ManifestKind",
    "ManifestRecord",
    "ManifestRegistry",
    "RegisteredManifest",
    "manifest_key",
    "tree_of",
]

ManifestKind = Literal["repository", "project"]


class ManifestRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A registry record as stored: a manifest that uses a store.

    ``url`` is where the manifest was when it registered; ``path``, when not
    empty, is its location relative to the store's tree (``../name``) and
    wins, so moving the store does not lose it.
    """

    url: str
    kind: ManifestKind
    path: str = ""


class RegisteredManifest(msgspec.Struct, frozen=True, kw_only=True):
    """A registered manifest as found now: its record's storage path and where it is."""

    record: str
    url: str
    kind: ManifestKind


class ManifestRegistry:
    """The manifests registered with one object store.

    One instance per manifest holder: it remembers what it registered, so a
    save writes its record once, not on every save.
    """

    def __init__(self, store: ObjectStore) -> None:
        self._store = store
        self._registered: set[tuple[str, str]] = set()

    def register(self, url: str, kind: ManifestKind) -> None:
        """Record that the manifest at ``url`` references objects in the store.

        Raises:
            StorageError: the record could not be written.
        """
        if (url, kind) in self._registered:
            return
        storage = self._store.storage
        inside = _inside_tree(self._store.url, url)
        ref = ManifestRecord(url=url, kind=kind, path="" if inside is None else "../" + inside)
        name = f"{MANIFESTS_DIR}/{manifest_key(self._store.url, url)}.json"
        record = msgspec.json.encode(ref)
        try:
            checked(storage, partial(storage.write_new, name, (record,)), url)
        except FileNotFoundError as exc:  # the store's directory vanished meanwhile
            raise StorageError(f"could not register {url} in {self._store.url}: {exc}") from exc
        self._registered.add((url, kind))

    def manifests(self) -> list[RegisteredManifest]:
        """Every registered manifest, located now.

        Raises:
            CorruptObjectError: a record cannot be decoded (gc must stop).
            StorageError: the records could not be read.
        """
        storage = self._store.storage
        try:
            paths = checked(storage, lambda: list(storage.list(MANIFESTS_DIR)), "manifests")
        except FileNotFoundError:
            return []
        found = []
        for path in paths:
            if not path.endswith(".json") or path.rsplit("/", 1)[-1].startswith("."):
                continue  # an in-flight write
            try:
                data = checked(storage, partial(storage.read_bytes, path), path)
            except FileNotFoundError:
                continue  # forgotten meanwhile
            try:
                ref = msgspec.json.decode(data, type=ManifestRecord)
                url = ref.url if not ref.path else _resolve_in_tree(self._store.url, ref.path)
            except (msgspec.DecodeError, ValueError) as exc:
                raise CorruptObjectError(
                    "manifest-record", "undecodable", path=path, detail=str(exc)
                ) from exc
            found.append(RegisteredManifest(record=path, url=url, kind=ref.kind))
        return found

    def forget(self, record: str) -> None:
        """Delete the record at storage path ``record`` (gc's ``forget``).

        Raises:
            ValueError: ``record`` is not a path under ``manifests/``.
            StorageError: it could not be deleted.
        """
        if not record.startswith(MANIFESTS_DIR + "/"):
            raise ValueError(f"{record!r} is not a manifest record")
        storage = self._store.storage
        with contextlib.suppress(FileNotFoundError):  # already gone
            checked(storage, partial(storage.delete, record), record)


def manifest_key(root: str, url: str) -> str:
    """32 hex characters naming the manifest at ``url`` in the store at ``root``:
    from its location relative to the store's tree when it is inside it (so
    the name survives moving the store), else from ``url``."""
    inside = _inside_tree(root, url)
    located = url if inside is None else "../" + inside
    return hash_bytes(located.encode())[:32]


def tree_of(root: str) -> str | None:
    """The directory holding an object store's root, or None at a bucket's top."""
    protocol, rest = split_url(root)
    if not protocol:
        return os.path.dirname(os.path.abspath(rest))
    head, _, tail = root.rstrip("/").rpartition("/")
    return head if tail and not head.endswith(":/") and "/" in rest.strip("/") else None


def _inside_tree(root: str, manifest_url: str) -> str | None:
    """``manifest_url`` relative to the store's tree (``/``-separated), if inside it."""
    tree = tree_of(root)
    if tree is None:
        return None
    protocol, rest = split_url(manifest_url)
    if not protocol:
        full = os.path.abspath(rest)
        if not full.startswith(tree.rstrip(os.sep) + os.sep):
            return None
        return os.path.relpath(full, tree).replace(os.sep, "/")
    if split_url(root)[0] != protocol or not manifest_url.startswith(tree + "/"):
        return None
    return manifest_url[len(tree) + 1 :]


def _resolve_in_tree(root: str, path: str) -> str:
    """Where a record's relative ``path`` (``../name``) is now.

    Raises:
        ValueError: ``path`` is not ``../`` plus a safe relative path.
    """
    tree = tree_of(root)
    if tree is None or not path.startswith("../"):
        raise ValueError(f"bad relative manifest location {path!r}")
    rel = check_relpath(path[3:])
    if not split_url(root)[0]:
        return os.path.join(tree, *rel.split("/"))
    return f"{tree}/{rel}"
