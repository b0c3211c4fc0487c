"""The artifact objects of a repository's or experiment's entries, and their metadata.

Each saved or queued entry is shown to users as its handler's lazyscribe
artifact object (:mod:`scribestore.artifacts.objects`), made on first need and
kept, so what users change on it (a handler field such as
``python_version``) is what a later load with ``validate=True`` checks, and an
object keeps the value it was logged with after its version is saved.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from scribestore.artifacts.objects import build, recorded_environment
from scribestore.core.pending import PendingArtifact
from scribestore.manifest.schema import ArtifactRecord, ArtifactVersion

__all__ = ["Entry", "ObjectCache", "metadata"]

Entry = ArtifactVersion | ArtifactRecord | PendingArtifact

#: lazyscribe's timestamp text in metadata: whole seconds, no offset.
_LAZYSCRIBE_TIME = "seconds"


class ObjectCache:
    """Artifact objects by version: one per (name, creation time), kept while the
    version is, so changes users make to an object survive saves, expiry
    changes and reloads; its base fields follow the entry."""

    def __init__(self) -> None:
        self._made: dict[tuple[str, dt.datetime], Any] = {}

    def get(self, name: str, entry: Entry) -> Any:
        """The artifact object of ``entry``, a version of artifact ``name``.

        Raises:
            UnknownHandlerError, HandlerRegistrationError: its handler is not installed.
        """
        key = (name, entry.created_at)
        obj = self._made.get(key)
        if obj is None or type(obj).alias != entry.handler:
            obj = self._made[key] = _make(name, entry)
        else:
            _follow(obj, entry)
        return obj

    def environment(self, name: str, entry: Entry) -> dict[str, str]:
        """What ``entry``'s version records of its writing environment, as its
        object now says (users may have changed it), or as the entry says."""
        obj = self._made.get((name, entry.created_at))
        if obj is None:
            return dict(entry.environment)
        return {**entry.environment, **recorded_environment(obj)}

    def __len__(self) -> int:
        return len(self._made)

    def prune(self, live: set[tuple[str, dt.datetime]]) -> None:
        """Forget the objects of versions not in ``live`` ((name, created_at) pairs)."""
        self._made = {k: v for k, v in self._made.items() if k in live}


def _follow(obj: Any, entry: Entry) -> None:
    """Bring an object's base fields up to date with its entry (set directly:
    handler classes may be frozen)."""
    object.__setattr__(obj, "dirty", isinstance(entry, PendingArtifact))
    if isinstance(entry, PendingArtifact):
        object.__setattr__(obj, "value", entry.value)
    if not isinstance(entry, ArtifactRecord):
        object.__setattr__(obj, "version", entry.version)
        expiry = entry.expiry
        object.__setattr__(obj, "expiry", None if expiry is None else _naive(expiry))


def _naive(when: dt.datetime) -> dt.datetime:
    return when.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _make(name: str, entry: Entry) -> Any:
    pending = isinstance(entry, PendingArtifact)
    return build(
        entry.handler,
        name=name,
        value=entry.value if isinstance(entry, PendingArtifact) else None,
        fname=entry.fname,
        created_at=entry.created_at,
        expiry=None if isinstance(entry, ArtifactRecord) else entry.expiry,
        params=dict(entry.params),
        version=0 if isinstance(entry, ArtifactRecord) else entry.version,
        dirty=pending,
        environment=dict(entry.environment),
    )


def metadata(entry: Entry, obj: Any) -> dict[str, Any]:
    """What lazyscribe's metadata holds for ``obj`` (its fields but the value,
    writer kwargs and dirty flag; times in whole seconds; ``handler``), plus
    ours: ``hash``, ``size``, ``params``, ``environment``, ``saved``,
    ``timestamp`` and ``expiry_timestamp``, the exact creation and expiry
    times (ISO 8601, microseconds, UTC)."""
    out: dict[str, Any] = {
        key: _text(value)
        for key, value in attrs.asdict(obj, recurse=False).items()
        if key not in ("value", "writer_kwargs", "dirty")
    }
    out["handler"] = entry.handler
    stored = entry.stored if isinstance(entry, PendingArtifact) else (entry.hash, entry.size)
    out["hash"] = stored[0] if stored else None
    out["size"] = stored[1] if stored else None
    out["params"] = dict(entry.params)
    out["environment"] = {**entry.environment, **recorded_environment(obj)}
    out["saved"] = not isinstance(entry, PendingArtifact)
    out["timestamp"] = entry.created_at.isoformat(timespec="microseconds")
    expiry = None if isinstance(entry, ArtifactRecord) else entry.expiry
    out["expiry_timestamp"] = None if expiry is None else expiry.isoformat(timespec="microseconds")
    return out


def _text(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec=_LAZYSCRIBE_TIME)
    return value
