"""Aliases: named, movable pointers to saved versions of an artifact (no I/O).

An alias names its version by creation time and hash, which survive
renumbering; every move is recorded with when and by whom, the last move
being where the alias points now (or that it was removed). ``"@name"`` is
the version selector that reads an alias.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import msgspec

from scribestore.exception import InvalidVersionError, SaveError, VersionNotFoundError
from scribestore.manifest.schema import (
    ALIAS_PATTERN,
    AliasMove,
    AliasTarget,
    ArtifactVersion,
    RepositoryManifest,
)
from scribestore.manifest.versions import utcnow

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "AliasInfo",
    "Aliases",
    "alias_selector",
    "current_aliases",
    "keep_live",
    "moved",
    "resolve",
    "validate_alias",
    "with_alias_moved",
]

#: Artifact name -> alias name -> moves, oldest first.
Aliases = dict[str, dict[str, list[AliasMove]]]

_ALIAS = re.compile(ALIAS_PATTERN)
#: What reads as a version number or a timestamp (``NAME@3``, ``NAME@2026-01-02``).
_VERSION_LIKE = re.compile(r"[0-9]+\Z|[0-9]{4}-[0-9]{2}-[0-9]{2}")


class AliasInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Where an alias points now, and its last move."""

    name: str
    alias: str
    version: int
    created_at: str
    hash: str
    moved_at: str
    moved_by: str


def validate_alias(alias: object) -> str:
    """``alias`` if it is a usable alias name (``production``, ``v1.2-rc``).

    Raises:
        InvalidVersionError: it is not a string of up to 100 letters, digits,
            ``.``, ``_`` or ``-`` starting with a letter or digit.
    """
    if not isinstance(alias, str) or _ALIAS.match(alias) is None or _VERSION_LIKE.match(alias):
        raise InvalidVersionError(
            f"invalid alias {alias!r}: use up to 100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, and not a number or a date (those name "
            "versions)"
        )
    return alias


def alias_selector(version: object) -> str | None:
    """The alias a version selector names (``"@production"`` gives ``production``), or None.

    Raises:
        InvalidVersionError: it starts with ``@`` but the rest is not an alias name.
    """
    if isinstance(version, str) and version.startswith("@"):
        return validate_alias(version[1:])
    return None


def _target_of(moves: Sequence[AliasMove]) -> AliasTarget | None:
    return moves[-1].target if moves else None


def resolve(
    aliases: Aliases, name: str, alias: str, versions: Sequence[ArtifactVersion], where: str
) -> ArtifactVersion:
    """The saved version of ``name`` that ``alias`` points at.

    Raises:
        VersionNotFoundError: no such alias, it was removed, or its version
            is no longer in ``versions`` (a mode ``"w"`` save dropped it).
    """
    target = _target_of(aliases.get(name, {}).get(alias, ()))
    if target is None:
        known = sorted(a for a, m in aliases.get(name, {}).items() if _target_of(m) is not None)
        raise VersionNotFoundError(
            f"artifact {name!r} in repository {where} has no alias {alias!r} "
            f"(aliases: {', '.join(known) if known else 'none'})"
        )
    for candidate in reversed(versions):
        if candidate.created_at == target.created_at and candidate.hash == target.hash:
            return candidate
    raise VersionNotFoundError(
        f"alias {alias!r} of artifact {name!r} points at a version (created "
        f"{target.created_at.isoformat()}) that is not among the versions of {where} "
        "(a filtered view, or a mode 'w' save dropped it)"
    )


def moved(
    aliases: Aliases, name: str, alias: str, target: ArtifactVersion | None, by: str
) -> Aliases:
    """``aliases`` with ``alias`` of ``name`` moved to ``target`` (None: removed).

    Raises:
        VersionNotFoundError: removing an alias that does not point anywhere.
    """
    history = list(aliases.get(name, {}).get(alias, ()))
    if target is None and _target_of(history) is None:
        raise VersionNotFoundError(f"artifact {name!r} has no alias {alias!r} to remove")
    point = (
        None
        if target is None
        else AliasTarget(version=target.version, created_at=target.created_at, hash=target.hash)
    )
    history.append(AliasMove(target=point, moved_at=utcnow(), moved_by=by))
    out = {n: dict(a) for n, a in aliases.items()}
    out.setdefault(name, {})[alias] = history
    return out


def keep_live(aliases: Aliases, artifacts: Mapping[str, Sequence[ArtifactVersion]]) -> Aliases:
    """``aliases`` without those whose current version is not in ``artifacts``,
    and with each target's recorded number updated to its version now."""
    out: Aliases = {}
    for name, by_alias in aliases.items():
        versions = artifacts.get(name, ())
        ids = {(v.created_at, v.hash): v.version for v in versions}
        for alias, moves in by_alias.items():
            target = _target_of(moves)
            if target is None:
                out.setdefault(name, {})[alias] = moves
                continue
            number = ids.get((target.created_at, target.hash))
            if number is None:
                continue
            if number != target.version:
                last = msgspec.structs.replace(
                    moves[-1], target=msgspec.structs.replace(target, version=number)
                )
                moves = [*moves[:-1], last]
            out.setdefault(name, {})[alias] = moves
    return out


def current_aliases(aliases: Aliases, name: str | None = None) -> list[AliasInfo]:
    """Every alias that points somewhere (of ``name``, or of every artifact), by name."""
    found = []
    for artifact in sorted(aliases) if name is None else [name]:
        for alias, moves in sorted(aliases.get(artifact, {}).items()):
            target = _target_of(moves)
            if target is None:
                continue
            found.append(
                AliasInfo(
                    name=artifact,
                    alias=alias,
                    version=target.version,
                    created_at=target.created_at.isoformat(),
                    hash=target.hash,
                    moved_at=moves[-1].moved_at.isoformat(),
                    moved_by=moves[-1].moved_by,
                )
            )
    return found


def with_alias_moved(
    manifest: RepositoryManifest, name: str, alias: str, target: ArtifactVersion | None, by: str
) -> RepositoryManifest:
    """``manifest`` (as saved now) with ``alias`` of ``name`` moved to ``target``.

    Raises:
        SaveError: ``target`` is no longer in ``manifest`` (a concurrent mode
            ``"w"`` save dropped it); nothing is written.
        VersionNotFoundError: removing an alias that does not point anywhere.
    """
    versions = manifest.artifacts.get(name, [])
    on_disk = None
    if target is not None:
        # The version as saved now: its number there, not the caller's.
        on_disk = next(
            (v for v in versions if v.created_at == target.created_at and v.hash == target.hash),
            None,
        )
        if on_disk is None:
            raise SaveError(
                f"version {target.version} of artifact {name!r} was removed by another "
                f"writer before alias {alias!r} could point at it; nothing was changed"
            )
    live = keep_live(manifest.aliases, manifest.artifacts)
    return msgspec.structs.replace(manifest, aliases=moved(live, name, alias, on_disk, by))
