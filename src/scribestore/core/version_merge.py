"""What a repository save writes: the versions saved now, plus this writer's changes."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import msgspec

from scribestore.manifest.schema import ArtifactVersion, jsonable_params

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from scribestore.core.pending import PendingArtifact

__all__ = ["VersionKey", "drops_versions", "merge_versions"]

#: A saved version's identity across writers: (name, created_at, hash).
VersionKey = tuple[str, dt.datetime, str]


def merge_versions(
    on_disk: Mapping[str, list[ArtifactVersion]],
    *,
    dropped: set[VersionKey],
    expiries: Mapping[VersionKey, dt.datetime | None],
    pending: list[PendingArtifact],
    environment_of: Callable[[PendingArtifact], dict[str, str]],
) -> tuple[dict[str, list[ArtifactVersion]], list[ArtifactVersion]]:
    """The versions to write: ``on_disk`` without the ``dropped`` ones (mode "w"),
    renumbered densely, with the ``expiries`` set, and each ``pending`` version
    (already stored) numbered after its name's, unless it is a copy of a
    version (name, creation time and hash) that is there already, or asks to
    be skipped when its bytes and handler are those of its name's newest
    version. Also returns the new versions.
    """
    artifacts: dict[str, list[ArtifactVersion]] = {}
    for name, versions in on_disk.items():
        keep = [v for v in versions if (name, v.created_at, v.hash) not in dropped]
        if len(keep) != len(versions):
            keep = [msgspec.structs.replace(v, version=i) for i, v in enumerate(keep)]
        if keep:
            artifacts[name] = list(keep)
    for (name, created_at, digest), expiry in expiries.items():
        versions = artifacts.get(name, [])
        for i, entry in enumerate(versions):
            if entry.created_at == created_at and entry.hash == digest:
                versions[i] = msgspec.structs.replace(entry, expiry=expiry)
    assigned: list[ArtifactVersion] = []
    # A version queued with its origin's creation time and hash (promotion,
    # push) that another writer committed meanwhile is already there.
    present = {(n, v.created_at, v.hash) for n, vs in artifacts.items() for v in vs}
    for queued in pending:
        assert queued.stored is not None
        if queued.copied and (queued.name, queued.created_at, queued.stored[0]) in present:
            continue
        versions = artifacts.setdefault(queued.name, [])
        if queued.skip_unchanged and _same_as_newest(versions, queued):
            continue
        entry = ArtifactVersion(
            version=len(versions),
            hash=queued.stored[0],
            size=queued.stored[1],
            created_at=queued.created_at,
            handler=queued.handler,
            fname=queued.fname,
            expiry=queued.expiry,
            params=jsonable_params(queued.params),
            environment=environment_of(queued),
        )
        versions.append(entry)
        assigned.append(entry)
    return artifacts, assigned


def _same_as_newest(versions: Sequence[ArtifactVersion], queued: PendingArtifact) -> bool:
    # An expired newest version is not what loads return: logging it again is a change.
    newest = versions[-1] if versions else None
    return (
        newest is not None
        and newest.expiry is None
        and queued.stored is not None
        and (newest.hash, newest.size, newest.handler) == (*queued.stored, queued.handler)
    )


def drops_versions(
    before: Mapping[str, Sequence[ArtifactVersion]], after: Mapping[str, Sequence[ArtifactVersion]]
) -> bool:
    """Whether a saved version in ``before`` is missing from ``after``."""
    kept = {(name, v.created_at, v.hash) for name, vs in after.items() for v in vs}
    return any((name, v.created_at, v.hash) not in kept for name, vs in before.items() for v in vs)
