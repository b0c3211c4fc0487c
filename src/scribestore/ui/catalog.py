"""What the web view shows: the manifests of a store, found once and opened read-only.

The view is given a manifest (``repository.json`` or ``project.json``) or a
store's directory. A directory's manifests are the ones directly inside it
and every manifest registered with its object store (``objects/`` inside the
directory, or the directory itself when it is an object store), so a store
that several repositories and projects share shows them all.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import msgspec

from scribestore.exception import ManifestNotFoundError, ScribeStoreError
from scribestore.ops.registry import ManifestRegistry
from scribestore.project import Project
from scribestore.repository import Repository
from scribestore.storage import NotRegularFileError, join_url, open_storage, split_file_url
from scribestore.store.hashing import hash_bytes
from scribestore.store.layout import MANIFESTS_DIR
from scribestore.store.objects import ObjectStore

__all__ = ["Catalog", "ManifestEntry"]

Kind = Literal["repository", "project"]
_FORMATS: dict[str, Kind] = {
    "scribestore.repository": "repository",
    "scribestore.project": "project",
}


class ManifestEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One manifest the view shows: a stable id for its URLs, where it is, its kind."""

    id: str
    url: str
    kind: Kind
    #: The object store to open it with (None: ``objects/`` beside it).
    objects: str | None


class Catalog:
    """The manifests under one target, opened read-only on each request.

    Args:
        target: a manifest's path or URL, or a store's directory.
        objects: the object store's URL when it is not ``objects/`` beside
            the manifests.
        storage_options: fsspec options for every manifest and the store.

    Raises:
        ManifestNotFoundError: ``target`` holds no manifest.
        StorageError: the target could not be read.
    """

    def __init__(
        self, target: str, *, objects: str | None = None, storage_options: dict[str, Any]
    ) -> None:
        self.target = target
        self._options = dict(storage_options)
        found = self._discover(target, objects)
        if not found:
            raise ManifestNotFoundError(
                f"no repository.json or project.json at {target}, and no manifest "
                "registered with a store there; pass a manifest or a store's directory"
            )
        self.entries: tuple[ManifestEntry, ...] = tuple(found)

    def entry(self, entry_id: str) -> ManifestEntry:
        """The manifest with id ``entry_id``.

        Raises:
            ManifestNotFoundError: no manifest of the catalog has that id.
        """
        for entry in self.entries:
            if entry.id == entry_id:
                return entry
        raise ManifestNotFoundError(f"no manifest with id {entry_id!r} in {self.target}")

    def repository(self, entry_id: str) -> Repository:
        """The repository ``entry_id``, opened read-only as it is now.

        Raises:
            ManifestNotFoundError: no such repository in the catalog.
            CorruptManifestError, StorageError: it cannot be read.
        """
        entry = self._of_kind(entry_id, "repository")
        return Repository(entry.url, mode="r", objects=entry.objects, **self._options)

    def project(self, entry_id: str) -> Project:
        """The project ``entry_id``, opened read-only as it is now.

        Raises:
            ManifestNotFoundError: no such project in the catalog.
            CorruptManifestError, StorageError: it cannot be read.
        """
        entry = self._of_kind(entry_id, "project")
        return Project(entry.url, mode="r", objects=entry.objects, **self._options)

    def _of_kind(self, entry_id: str, kind: Kind) -> ManifestEntry:
        entry = self.entry(entry_id)
        if entry.kind != kind:
            raise ManifestNotFoundError(f"{entry.url} is a {entry.kind}, not a {kind}")
        return entry

    # --- discovery --------------------------------------------------------------

    def _discover(self, target: str, objects: str | None) -> list[ManifestEntry]:
        kind = self._kind(target)
        if kind is not None:
            return [_entry(target, kind, objects)]
        found = {}
        for name in ("repository.json", "project.json"):
            url = join_url(target, name)
            kind = self._kind(url)
            if kind is not None:
                found[url] = _entry(url, kind, objects)
        store = objects or self._store_at(target)
        if store is not None:
            opened = ObjectStore(store, **self._options)
            for record in ManifestRegistry(opened).manifests():
                if record.url not in found and self._kind(record.url) is not None:
                    found[record.url] = _entry(record.url, record.kind, store)
        return sorted(found.values(), key=lambda e: (e.kind, e.url))

    def _kind(self, url: str) -> Kind | None:
        """The kind of the scribestore manifest at ``url``; None if there is none."""
        directory, name = split_file_url(url)
        try:
            data = open_storage(directory, **self._options).read_bytes(name)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError, NotRegularFileError):
            return None
        try:
            doc = json.loads(data)
        except ValueError:
            return None
        fmt = doc.get("format") if isinstance(doc, dict) else None
        return _FORMATS.get(fmt) if isinstance(fmt, str) else None

    def _store_at(self, directory: str) -> str | None:
        """The object store in or at ``directory``, if it has a registry."""
        for url in (join_url(directory, "objects"), directory):
            try:
                storage = open_storage(url, **self._options)
                if next(iter(storage.list(MANIFESTS_DIR)), None) is not None:
                    return url
            except (OSError, ValueError, ScribeStoreError):
                continue
        return None


def _entry(url: str, kind: Kind, objects: str | None) -> ManifestEntry:
    return ManifestEntry(id=hash_bytes(url.encode())[:12], url=url, kind=kind, objects=objects)
