"""A repository's queue: versions logged but not saved yet, numbered after the saved ones.

Versions of one name are numbered densely after that name's saved
versions; dropping a queued version moves the later ones down. Creation
times of one name strictly increase, even within one microsecond.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from scribestore.exception import ArtifactLogError, VersionNotFoundError
from scribestore.manifest.versions import utcnow

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scribestore.core.pending import PendingArtifact
    from scribestore.manifest.schema import ArtifactVersion

__all__ = ["VersionQueue"]

_ONE_MICRO = dt.timedelta(microseconds=1)
_LAST_TIME = dt.datetime.max.replace(tzinfo=dt.timezone.utc) - _ONE_MICRO


class VersionQueue:
    """Queued versions in the order they were queued, and by name.

    Methods that number versions take ``saved``, how many versions of the
    name are saved: queued versions are numbered after them.

    Args:
        where: the repository, for error messages.
    """

    def __init__(self, where: str) -> None:
        self._where = where
        #: Every queued version, in queueing order (cleared in place, never replaced).
        self.items: list[PendingArtifact] = []
        self._by_name: dict[str, list[PendingArtifact]] = {}

    def __len__(self) -> int:
        return len(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __iter__(self) -> Iterator[PendingArtifact]:
        return iter(self.items)

    def of(self, name: str) -> list[PendingArtifact]:
        """The queued versions of ``name``, oldest first."""
        return self._by_name.get(name, [])

    def names(self) -> list[str]:
        """Names with queued versions, in the order they were first queued."""
        return list(self._by_name)

    def add(self, pending: PendingArtifact, saved: int) -> PendingArtifact:
        """Queue ``pending``, numbered after the saved and queued versions of its name."""
        name = pending.name
        pending.version = saved + len(self.of(name))
        self.items.append(pending)
        self._by_name.setdefault(name, []).append(pending)
        return pending

    def renumber(self, name: str, saved: int) -> None:
        """Number the queued versions of ``name`` after its ``saved`` versions again."""
        for number, pending in enumerate(self.of(name), start=saved):
            pending.version = number

    def discard(self, name: str, version: int | None, saved: int) -> int:
        """Drop the queued ``version`` of ``name``, or all of them; return how many.

        Raises:
            VersionNotFoundError: ``version`` is given and is not queued.
        """
        queued = self.of(name)
        doomed = [p for p in queued if version is None or p.version == version]
        if version is not None and not doomed:
            raise VersionNotFoundError(
                f"version {version} of artifact {name!r} is not queued in repository "
                f"{self._where} (saved already, or never queued); queued: "
                f"{[p.version for p in queued] or 'none'}"
            )
        for pending in doomed:
            self.items.remove(pending)
            queued.remove(pending)
        if not queued:
            self._by_name.pop(name, None)
        self.renumber(name, saved)
        return len(doomed)

    def clear(self) -> None:
        """Forget every queued version (after they were saved)."""
        self.items.clear()
        self._by_name = {}

    def next_created_at(self, name: str, last_saved: ArtifactVersion | None) -> dt.datetime:
        """A creation time for a new version of ``name``: now, or just after the newest.

        Raises:
            ArtifactLogError: the newest version claims the last representable time.
        """
        now = utcnow()
        pending = self.of(name)
        last: PendingArtifact | ArtifactVersion | None = pending[-1] if pending else last_saved
        if last is not None and now <= last.created_at:
            if last.created_at >= _LAST_TIME:
                raise ArtifactLogError(
                    f"cannot log a new version of artifact {name!r} in repository "
                    f"{self._where}: its version {last.version} claims to be created at "
                    f"{last.created_at.isoformat()}, the last representable time, so no "
                    "later version can exist; the manifest is damaged or crafted — "
                    "restore it, or log under another name"
                )
            now = last.created_at + _ONE_MICRO
        return now
