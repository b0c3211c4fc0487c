"""``scribestore://``: an fsspec filesystem over a repository's artifacts, read-only.

A path names an artifact and optionally a version: ``model`` (its latest
unexpired version) or ``model@3``; a path that is itself an artifact's name
(``notes@2`` may be one) names that artifact. Files are the verified, seekable streams
of :meth:`~scribestore.Repository.open_artifact`: a read at an offset fetches
only the chunks that cover it, each checked against the digest the object's
recipe names before a byte of it is returned. So
pandas, pyarrow, safetensors loaders and torch read artifacts directly::

    import pandas as pd
    df = pd.read_csv("scribestore://features.csv@2",
                     storage_options={"repository": "store/repository.json"})

Options: ``repository`` (the manifest's path or URL, required) and
``repository_options`` (fsspec options of its store, e.g. ``endpoint_url``).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any, ClassVar

from fsspec.spec import AbstractFileSystem

from scribestore.exception import (
    ArtifactNotFoundError,
    InvalidNameError,
    InvalidVersionError,
    VersionNotFoundError,
)
from scribestore.repository import Repository
from scribestore.sync import parse_selection

if TYPE_CHECKING:
    from scribestore.store.reader import ObjectReader

__all__ = ["ArtifactFile", "ScribeStoreFileSystem"]

_MISSING = (ArtifactNotFoundError, VersionNotFoundError, InvalidNameError, InvalidVersionError)

#: Bytes a file buffers ahead of the reader (the stream fetches whole chunks anyway).
BUFFER = 1 << 20


class ScribeStoreFileSystem(AbstractFileSystem):  # type: ignore[misc]
    """The artifacts of one repository as read-only files (see the module docs).

    Args:
        repository: path or URL of the repository manifest.
        repository_options: fsspec options for the repository's store.

    Raises:
        ManifestNotFoundError: no manifest at ``repository``.
    """

    protocol: ClassVar[str] = "scribestore"
    root_marker = ""
    # A new instance for every URL opened, so "latest" is read afresh.
    cachable = False

    def __init__(
        self,
        repository: str,
        *,
        repository_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.repository = Repository(repository, mode="r", **(repository_options or {}))

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        text = str(path)
        if text.startswith("scribestore://"):
            text = text[len("scribestore://") :]
        return text.strip("/")

    def _entry(self, path: str) -> dict[str, Any]:
        """fsspec's description of one version.

        Raises:
            FileNotFoundError: no such artifact or version.
        """
        name, version = self._parse(path)
        try:
            meta = self.repository.get_artifact_metadata(name, version)
        except _MISSING as exc:
            raise FileNotFoundError(str(exc)) from exc
        return {
            "name": f"{name}@{meta['version']}",
            "size": meta["size"],
            "type": "file",
            "hash": meta["hash"],
            "created": meta["timestamp"],
        }

    def _parse(self, path: str) -> tuple[str, int | None]:
        """(name, version) of a path: the whole text when it names an artifact,
        else ``NAME@VERSION``.

        Raises:
            FileNotFoundError: neither.
        """
        text = self._strip_protocol(path)
        if text in self.repository:
            return text, None
        try:
            return parse_selection(text)
        except InvalidVersionError as exc:
            raise FileNotFoundError(str(exc)) from exc

    def invalidate_cache(self, path: str | None = None) -> None:
        """Read the repository's manifest again: versions saved since become visible."""
        self.repository.load()

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """The latest (``NAME``) or given (``NAME@VERSION``) version as an fsspec file entry.

        Raises:
            FileNotFoundError: no such artifact or version.
        """
        if self._strip_protocol(path) == "":
            return {"name": "", "size": 0, "type": "directory"}
        return self._entry(path)

    def ls(self, path: str = "", detail: bool = True, **kwargs: Any) -> list[Any]:
        """Every saved version at the root; one version for ``NAME`` or ``NAME@VERSION``.

        Raises:
            FileNotFoundError: no such artifact or version.
        """
        if self._strip_protocol(path) != "":
            found = [self._entry(path)]
        else:
            found = [
                self._entry(f"{name}@{v.version}")
                for name, versions in self.repository.saved_versions().items()
                for v in versions
            ]
        return found if detail else [f["name"] for f in found]

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> ArtifactFile:
        """A buffered, seekable, verified reader of one version.

        Raises:
            PermissionError: a mode other than ``"rb"`` (the filesystem is read-only).
            FileNotFoundError: no such artifact or version.
        """
        if mode != "rb":
            raise PermissionError(f"scribestore:// is read-only; open {path!r} with mode 'rb'")
        name, version = self._parse(path)
        try:
            stream = self.repository.open_artifact(name, version)
        except _MISSING as exc:
            raise FileNotFoundError(str(exc)) from exc
        return ArtifactFile(stream, buffer_size=block_size or BUFFER)


class ArtifactFile(io.BufferedReader):
    """A buffered reader of one version that knows its size (fsspec's file protocol)."""

    def __init__(self, raw: ObjectReader, *, buffer_size: int) -> None:
        super().__init__(raw, buffer_size=buffer_size)
        self._size = raw.size

    @property
    def size(self) -> int:
        """The version's size in bytes."""
        return self._size
