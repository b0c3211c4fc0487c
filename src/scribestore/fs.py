"""``scribestore://``: an fsspec filesystem over a repository's artifacts, read-only.

A path names an artifact and optionally a version: ``model`` (its latest
unexpired version) or ``model@3``. Files are the verified, seekable streams
of :meth:`~scribestore.Repository.open_artifact`: a read at an offset fetches
only the chunks that cover it, and every byte returned was checked. So
pandas, pyarrow, safetensors loaders and torch read artifacts directly::

    import pandas as pd
    df = pd.read_csv("scribestore://features.csv@2",
                     storage_options={"repository": "store/repository.json"})

Options: ``repository`` (the manifest's path or URL, required) and
``repository_options`` (fsspec options of its store, e.g. ``endpoint_url``).
"""

from __future__ import annotations

import io
from typing import Any, ClassVar

from fsspec.spec import AbstractFileSystem

from scribestore.exception import ArtifactNotFoundError, InvalidNameError, VersionNotFoundError
from scribestore.repository import Repository
from scribestore.sync import parse_selection

__all__ = ["ScribeStoreFileSystem"]

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
        name, version = parse_selection(self._strip_protocol(path))
        try:
            meta = self.repository.get_artifact_metadata(name, version)
        except (ArtifactNotFoundError, VersionNotFoundError, InvalidNameError) as exc:
            raise FileNotFoundError(str(exc)) from exc
        return {
            "name": f"{name}@{meta['version']}",
            "size": meta["size"],
            "type": "file",
            "hash": meta["hash"],
            "created": meta["timestamp"],
        }

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
    ) -> io.BufferedReader:
        """A buffered, seekable, verified reader of one version.

        Raises:
            PermissionError: a mode other than ``"rb"`` (the filesystem is read-only).
            FileNotFoundError: no such artifact or version.
        """
        if mode != "rb":
            raise PermissionError(f"scribestore:// is read-only; open {path!r} with mode 'rb'")
        name, version = parse_selection(self._strip_protocol(path))
        try:
            stream = self.repository.open_artifact(name, version)
        except (ArtifactNotFoundError, VersionNotFoundError, InvalidNameError) as exc:
            raise FileNotFoundError(str(exc)) from exc
        return io.BufferedReader(stream, buffer_size=block_size or BUFFER)
