"""Helpers for the safety tests: opening stores and snapshotting them byte for byte."""

from __future__ import annotations

from scribestore import Project, Repository
from scribestore.storage import open_storage
from scribestore.store.layout import object_path
from support.locations import Location


def repo_at(loc: Location, mode: str = "a", **kwargs: object) -> Repository:
    return Repository(loc.join("repository.json"), mode=mode, **kwargs, **loc.options)


def project_at(loc: Location, mode: str = "a", **kwargs: object) -> Project:
    return Project(loc.join("project.json"), mode=mode, author="ada", **kwargs, **loc.options)


def snapshot(loc: Location) -> dict[str, bytes]:
    """Every file under the store (manifests, lock files, objects, packs) with its bytes."""
    storage = open_storage(loc.url, **loc.options)
    return {path: storage.read_bytes(path) for path in storage.list()}


def write_file(loc: Location, path: str, data: bytes) -> None:
    open_storage(loc.url, **loc.options).write_atomic(path, data)


def read_file(loc: Location, path: str) -> bytes:
    return open_storage(loc.url, **loc.options).read_bytes(path)


def object_file(loc: Location, digest: str) -> str:
    """The path of object ``digest`` relative to the store root."""
    return f"objects/{object_path(digest)}"
