"""What the web view shows: the manifests of a store, found once and opened read-only.

The view is given a manifest (``repository.json`` or ``project.json``) or a
store's directory. A directory's manifests are the ones directly inside it
and every manifest registered with its object store (``objects/`` inside the
directory, or the directory itself when it is an object store), so a store
that several repositories and projects share shows them all.
"""

from __future__ import annotations

import json
import os
from typing import Any, Literal

import msgspec

from scribestore.exception import CorruptManifestError, ManifestNotFoundError, ScribeStoreError
from scribestore.ops.registry import ManifestRegistry
from scribestore.project import Project
from scribestore.repository import Repository
from scribestore.storage import (
    NotRegularFileError,
    join_url,
    open_storage,
    split_file_url,
    split_url,
)
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
    #: Why it cannot be shown (a damaged manifest), or None.
    problem: str | None = None


class Catalog:
    """The manifests under one target, opened read-only on each request.

    Args:
        target: a manifest's path or URL, or a store's directory.
        objects: the object store's URL when it is not ``objects/`` beside
            the manifests.
        storage_options: fsspec options for every manifest and the store.

    Raises:
        ManifestNotFoundError: ``target`` holds no manifest.
        CorruptManifestError: ``target`` is a file but not a scribestore manifest.
        StorageError: the target could not be read.
    """

    def __init__(
        self, target: str, *, objects: str | None = None, storage_options: dict[str, Any]
    ) -> None:
        self.target = target
        self._options = dict(storage_options)
        #: What could not be shown and why (unreachable registered manifests).
        self.problems: list[str] = []
        self._damage: dict[str, str] = {}
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
        probed = self._probe(target)
        if probed is not None:
            return [_entry(target, probed, objects)]
        found: dict[str, ManifestEntry] = {}
        fixed: tuple[tuple[str, Kind], ...] = (
            ("repository.json", "repository"),
            ("project.json", "project"),
        )
        for name, kind in fixed:
            url = join_url(target, name)
            probed = self._probe(url, damaged_as=kind)
            if probed is not None:
                found[_place(url)] = _entry(url, probed, objects, self._damage.pop(url, None))
        store = objects or self._store_at(target)
        if store is not None:
            self._registered(store, found)
        return sorted(found.values(), key=lambda e: (e.kind, e.url))

    def _registered(self, store: str, found: dict[str, ManifestEntry]) -> None:
        """Add the manifests registered with ``store`` that can be read; note the rest."""
        try:
            records = ManifestRegistry(ObjectStore(store, **self._options)).manifests()
        except (ScribeStoreError, OSError, ValueError) as exc:
            self.problems.append(f"the registry of {store} could not be read: {exc}")
            return
        for record in records:
            if _place(record.url) in found:
                continue
            try:
                probed = self._probe(record.url, damaged_as=record.kind)
            except (ScribeStoreError, OSError, ValueError) as exc:
                self.problems.append(f"registered manifest {record.url} is unreachable: {exc}")
                continue
            if probed is not None:  # a registered manifest that is gone is left out
                damage = self._damage.pop(record.url, None)
                found[_place(record.url)] = _entry(record.url, probed, store, damage)

    def _probe(self, url: str, *, damaged_as: Kind | None = None) -> Kind | None:
        """The kind of the manifest at ``url``, None where there is no file.

        A file that is not a scribestore manifest is ``damaged_as`` (its
        problem noted in ``_damage``) when given, else an error.

        Raises:
            CorruptManifestError: (no ``damaged_as``) it is not a scribestore manifest.
            StorageError: it could not be read.
        """
        directory, name = split_file_url(url)
        try:
            data = open_storage(directory, **self._options).read_bytes(name)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError, NotRegularFileError):
            return None
        try:
            doc = json.loads(data)
        except ValueError:
            doc = None
        fmt = doc.get("format") if isinstance(doc, dict) else None
        kind = _FORMATS.get(fmt) if isinstance(fmt, str) else None
        if kind is not None:
            return kind
        hint = (
            ": it looks like a lazyscribe manifest; import it with 'scribestore import-lazyscribe'"
            if isinstance(doc, list)
            else ""
        )
        problem = f"{url} is not a scribestore manifest{hint}"
        if damaged_as is None:
            raise CorruptManifestError(problem)
        self._damage[url] = problem
        return damaged_as

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


def _place(url: str) -> str:
    """Where ``url`` is, for telling two spellings of one manifest apart: a
    local path made absolute (``store/x.json``, ``./store/x.json`` and
    ``file:///…/store/x.json`` are one place), any other URL as it is."""
    protocol, rest = split_url(url)
    if protocol in ("", "file", "local"):
        return os.path.normpath(os.path.abspath(rest))
    return url


def _entry(url: str, kind: Kind, objects: str | None, problem: str | None = None) -> ManifestEntry:
    return ManifestEntry(
        id=hash_bytes(_place(url).encode())[:12],
        url=url,
        kind=kind,
        objects=objects,
        problem=problem,
    )
