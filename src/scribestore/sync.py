"""push and pull: copy artifact versions, and exactly the bytes they lack, between stores.

A version's identity across stores is its name, creation time and hash. A
copy takes the versions asked for that the destination does not hold, copies
the objects and chunks its store lacks (verified, several at once), then
queues the versions with their origin's creation time, handler, file name,
parameters, environment and expiry and saves the destination: the manifest
is merged as any concurrent save merges it, so the destination numbers the
copied versions after the versions it holds. Then each alias of the source
that points at a selected version is pointed at that version in the
destination too (the move is recorded there, with who and when). Running
the same copy again finds nothing to do and writes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from scribestore.exception import (
    ArtifactNotFoundError,
    InvalidVersionError,
    ModeError,
    ReadOnlyError,
    VersionNotFoundError,
)
from scribestore.ops.transfer import transfer
from scribestore.progress import Progress, null

if TYPE_CHECKING:
    from collections.abc import Iterable

    from scribestore.manifest.schema import ArtifactVersion
    from scribestore.repository import Repository

__all__ = ["SyncReport", "copy_versions", "parse_selection", "pull", "push"]


class SyncReport(msgspec.Struct, frozen=True, kw_only=True):
    """What a push or pull did.

    Attributes:
        copied: ``(name, source version)`` of each version added to the destination.
        present: versions asked for that the destination already held.
        objects_copied: objects whose bytes were copied (the rest were there).
        bytes_copied: content bytes of the copied objects.
        aliases: ``(name, alias)`` of each alias set or moved in the destination.
    """

    copied: tuple[tuple[str, int], ...]
    present: int
    objects_copied: int
    bytes_copied: int
    aliases: tuple[tuple[str, str], ...] = ()


def parse_selection(text: str) -> tuple[str, int | None]:
    """``"NAME"`` or ``"NAME@VERSION"`` (a version number) as (name, version or None).

    A caller that knows the artifact names tries the whole text as a name first.

    Raises:
        InvalidVersionError: the part after the last ``@`` is not a version number.
    """
    name, sep, number = text.rpartition("@")
    if not sep:
        return text, None
    if not number.isdigit():
        raise InvalidVersionError(
            f"invalid selection {text!r}: give NAME or NAME@VERSION with a version number"
        )
    return name, int(number)


def _selected(
    source: Repository, selection: Iterable[str | tuple[str, int | None]]
) -> list[tuple[str, ArtifactVersion]]:
    """The source versions a selection names: all of them when it is empty."""
    saved = source.saved_versions()
    picks = [
        (s, None)
        if isinstance(s, str) and s in saved
        else parse_selection(s)
        if isinstance(s, str)
        else s
        for s in selection
    ]
    if not picks:
        return [(name, v) for name, versions in saved.items() for v in versions]
    chosen: dict[tuple[str, int], ArtifactVersion] = {}
    for name, number in picks:
        if name not in saved:
            raise ArtifactNotFoundError(
                f"no saved artifact {name!r} in {source.url}; it has "
                f"{', '.join(sorted(saved)) or 'none'}"
            )
        versions = [v for v in saved[name] if number is None or v.version == number]
        if not versions:
            raise VersionNotFoundError(
                f"artifact {name!r} in {source.url} has no saved version {number}; it has "
                f"versions 0 to {len(saved[name]) - 1}"
            )
        for v in versions:
            chosen[(name, v.version)] = v
    return [(name, v) for (name, _), v in chosen.items()]


def copy_versions(
    source: Repository,
    destination: Repository,
    selection: Iterable[str | tuple[str, int | None]] = (),
    *,
    progress: Progress = null,
) -> SyncReport:
    """Copy the selected saved versions of ``source`` that ``destination`` lacks.

    ``selection`` holds ``"NAME"`` (every version of it), ``"NAME@VERSION"``
    or ``(name, version)``; empty means every version. The destination is
    re-read first and saved at the end (with anything else it has queued).
    ``progress`` follows the content bytes checked while copying. An alias
    of ``source`` that points at a selected version then points at it in
    ``destination`` too, moved there if it pointed elsewhere.

    Raises:
        ReadOnlyError: ``destination`` is open in mode ``"r"``.
        ModeError: ``destination`` is open in mode ``"w"``, whose save would
            drop the versions it holds.
        ArtifactNotFoundError, VersionNotFoundError, InvalidVersionError: the
            selection names no saved version of ``source``; nothing is copied.
        IntegrityError, ObjectNotFoundError: a source object is damaged or
            missing; the destination's manifest is unchanged.
        SaveError, StorageError: copying or saving failed; the manifest is unchanged.
    """
    if destination.mode == "r":
        raise ReadOnlyError(f"cannot copy versions into {destination.url}: it is read-only")
    if destination.mode == "w":
        raise ModeError(
            f"cannot copy versions into {destination.url} open in mode 'w': its save would "
            "drop the versions it holds; open it in mode 'a'"
        )
    wanted = _selected(source, selection)
    destination.load()
    held = {(n, v.created_at, v.hash) for n, vs in destination.saved_versions().items() for v in vs}
    missing = [(n, v) for n, v in wanted if (n, v.created_at, v.hash) not in held]
    if not missing:
        aliases = _copy_aliases(source, destination, wanted)
        return SyncReport(
            copied=(), present=len(wanted), objects_copied=0, bytes_copied=0, aliases=aliases
        )
    missing.sort(key=lambda nv: (nv[1].created_at, nv[0]))
    # One lease from the first copied byte to the commit: gc cannot take
    # the copied objects while nothing references them yet.
    with destination.objects.writing():
        sizes = {v.hash: v.size for _, v in missing}
        report = transfer(
            source.objects, destination.objects, list(sizes), progress=progress, sizes=sizes
        )
        queued: list[tuple[str, int]] = []
        try:
            for name, v in missing:
                queued.append(_queue(destination, name, v))
            destination.save()
        except BaseException:
            for name, number in reversed(queued):
                destination.discard_queued(name, number)
            raise
    return SyncReport(
        copied=tuple((name, v.version) for name, v in missing),
        present=len(wanted) - len(missing),
        objects_copied=len(report.copied),
        bytes_copied=report.bytes_copied,
        aliases=_copy_aliases(source, destination, wanted),
    )


def _copy_aliases(
    source: Repository, destination: Repository, wanted: list[tuple[str, ArtifactVersion]]
) -> tuple[tuple[str, str], ...]:
    """Point the destination's aliases where the source's point, for the
    aliases whose version was selected (and is now in the destination)."""
    chosen = {(name, v.version): v for name, v in wanted}
    held = destination.saved_versions()
    current = {(a.name, a.alias): (a.created_at, a.hash) for a in destination.aliases()}
    moved = []
    for info in source.aliases():
        version = chosen.get((info.name, info.version))
        if version is None or current.get((info.name, info.alias)) == (info.created_at, info.hash):
            continue
        target = next(
            v.version
            for v in held.get(info.name, ())
            if v.created_at == version.created_at and v.hash == version.hash
        )
        destination.set_alias(info.name, info.alias, version=target)
        moved.append((info.name, info.alias))
    return tuple(moved)


def _queue(destination: Repository, name: str, v: ArtifactVersion) -> tuple[str, int]:
    pending = destination.queue_version(
        name,
        handler=v.handler,
        created_at=v.created_at,
        fname=v.fname,
        stored=(v.hash, v.size),
        params=v.params,
        environment=v.environment,
        expiry=v.expiry,
    )
    return name, pending.version


def push(
    local: Repository,
    remote: Repository,
    selection: Iterable[str | tuple[str, int | None]] = (),
    *,
    progress: Progress = null,
) -> SyncReport:
    """Copy versions from ``local`` to ``remote``: :func:`copy_versions` (local, remote)."""
    return copy_versions(local, remote, selection, progress=progress)


def pull(
    local: Repository,
    remote: Repository,
    selection: Iterable[str | tuple[str, int | None]] = (),
    *,
    progress: Progress = null,
) -> SyncReport:
    """Copy versions from ``remote`` into ``local``: :func:`copy_versions` (remote, local)."""
    return copy_versions(remote, local, selection, progress=progress)
