"""Artifact bytes in and out of an object store, through a handler.

Shared by repositories and experiments: serializing a value and storing it,
and loading a stored version back, verified, with the environment check.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path
from typing import IO, Any, Protocol, cast

from scribestore.errors import (
    ArtifactLoadError,
    ArtifactLogError,
    IntegrityError,
    InvalidNameError,
)
from scribestore.handlers import get_handler
from scribestore.manifest import validate_name
from scribestore.objects import ObjectReader, ObjectStore

__all__ = [
    "StoredArtifact",
    "default_fname",
    "load_stored",
    "open_stored",
    "prepare_value",
    "store_value",
]

_UNSAFE_FNAME = re.compile(r"[^A-Za-z0-9._-]+")


class StoredArtifact(Protocol):
    """What loading needs to know of a saved artifact."""

    @property
    def hash(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def handler(self) -> str: ...
    @property
    def fname(self) -> str: ...
    @property
    def environment(self) -> dict[str, str]: ...


def prepare_value(name: str, value: Any, handler_alias: str) -> tuple[Any, str]:
    """Check what is being logged before anything is stored.

    Returns:
        The value to keep (for the ``file`` handler: the absolute source path)
        and the suffix for its exported file name.

    Raises:
        InvalidNameError: ``name`` could escape the store.
        UnknownHandlerError: no handler ``handler_alias``.
        ArtifactLogError: a path handler was not given an existing file.
    """
    validate_name(name)
    handler = get_handler(handler_alias)
    if not handler.streams_path:
        return value, handler.suffix
    try:
        source = handler.source_path(value)
    except (OSError, TypeError, ValueError) as exc:
        raise ArtifactLogError(f"cannot log artifact {name!r}: {exc}") from exc
    return source, Path(source).suffix.lstrip(".") or handler.suffix


def default_fname(name: str, created_at: dt.datetime, suffix: str, fname: str | None = None) -> str:
    """The export file name: ``fname`` if given (checked), else derived from the name.

    Raises:
        InvalidNameError: ``fname`` is not a plain file name.
    """
    if fname is None:
        stem = _UNSAFE_FNAME.sub("_", name).strip("._") or "artifact"
        return f"{stem}-{created_at:%Y%m%d%H%M%S%f}.{suffix}"
    if not isinstance(fname, str) or "/" in fname or "\\" in fname:
        raise InvalidNameError(f"fname must be a plain file name, not {fname!r}")
    return validate_name(fname, kind="file")


def store_value(
    objects: ObjectStore, handler_alias: str, value: Any, params: dict[str, Any]
) -> tuple[str, int]:
    """Serialize ``value`` with its handler into ``objects``; return (hash, size).

    Raises:
        Whatever the handler or the store raises; nothing is referenced yet.
    """
    handler = get_handler(handler_alias)
    if handler.streams_path:
        return objects.put_sized(Path(value))
    buf = io.BytesIO()
    handler.write(value, buf, **params)
    return objects.put_sized(buf.getbuffer())


def open_stored(
    objects: ObjectStore, name: str, record: StoredArtifact, version: int | None = None
) -> ObjectReader:
    """A verified stream of ``record``'s bytes.

    Raises:
        ObjectNotFoundError: the object is missing.
        IntegrityError: the object's size disagrees with the record (or, from
            ``read``, its bytes disagree with the hash).
    """
    reader = objects.open(record.hash, artifact=name, version=version)
    if reader.size != record.size:
        reader.close()
        raise IntegrityError(
            record.hash,
            "size mismatch",
            artifact=name,
            version=version,
            detail=f"manifest records {record.size} bytes, object holds {reader.size}",
        )
    return reader


def load_stored(
    objects: ObjectStore,
    name: str,
    record: StoredArtifact,
    *,
    validate: bool,
    version: int | None = None,
    reader_kwargs: dict[str, Any],
) -> Any:
    """Load ``record`` through its handler; bytes are verified before decoding.

    Raises:
        ArtifactLoadError: ``validate`` found an environment mismatch.
        IntegrityError, ObjectNotFoundError: the stored bytes are wrong or gone.
    """
    handler = get_handler(record.handler)
    label = f"artifact {name!r}" if version is None else f"version {version} of artifact {name!r}"
    if validate:
        problem = handler.check_environment(record.environment)
        if problem is not None:
            raise ArtifactLoadError(f"{label} was {problem}; pass validate=False to load it anyway")
    if handler.streams_path:
        stream = open_stored(objects, name, record, version)
        try:
            result = handler.load_stream(
                cast("IO[bytes]", stream), fname=record.fname, **reader_kwargs
            )
        except BaseException:
            stream.close()
            raise
        if result is not stream:
            stream.close()
        return result
    data = objects.get(record.hash, artifact=name, version=version)
    return handler.read(io.BytesIO(data), **reader_kwargs)
