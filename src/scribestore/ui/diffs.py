"""Text diffs between two versions of an artifact, as lines a page can colour."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import msgspec

from scribestore.exception import VersionNotFoundError

if TYPE_CHECKING:
    from scribestore.repository import Repository

__all__ = ["MAX_DIFF_BYTES", "DiffLine", "DiffView", "text_diff"]

#: Versions larger than this are not diffed in the page (a diff of megabytes
#: is not read by a person, and both texts are held in memory).
MAX_DIFF_BYTES = 2 * 1024 * 1024

LineKind = Literal["header", "hunk", "added", "removed", "same"]


class DiffLine(msgspec.Struct, frozen=True, kw_only=True):
    """One line of a unified diff and what it is."""

    kind: LineKind
    text: str


class DiffView(msgspec.Struct, frozen=True, kw_only=True):
    """The diff of versions ``old`` and ``new`` of ``name`` (no lines: identical)."""

    name: str
    old: int
    new: int
    lines: tuple[DiffLine, ...]
    added: int
    removed: int


def text_diff(repo: Repository, name: str, old: int, new: int) -> DiffView:
    """The unified diff of versions ``old`` and ``new`` of the text artifact ``name``.

    Raises:
        ArtifactNotFoundError, VersionNotFoundError: no such saved version.
        BinaryArtifactError: the artifact is not text (a ValueError).
        ValueError: a version is larger than :data:`MAX_DIFF_BYTES`.
        IntegrityError: stored bytes do not match their hash.
    """
    versions = {v.version: v for v in repo.saved_versions().get(name, ())}
    for number in (old, new):
        found = versions.get(number)
        if found is None:
            raise VersionNotFoundError(f"artifact {name!r} has no saved version {number}")
        if found.size > MAX_DIFF_BYTES:
            raise ValueError(
                f"version {number} of {name!r} is {found.size} bytes; the web view diffs "
                f"versions of at most {MAX_DIFF_BYTES} bytes"
            )
    text = "" if old == new else repo.get_version_diff(name, (old, new))
    lines = _lines(text)
    return DiffView(
        name=name,
        old=old,
        new=new,
        lines=lines,
        added=sum(1 for line in lines if line.kind == "added"),
        removed=sum(1 for line in lines if line.kind == "removed"),
    )


def _lines(diff: str) -> tuple[DiffLine, ...]:
    """The lines of a unified diff, classified. File headers come only before
    the first hunk (a removed line ``-- x`` reads ``--- x`` in a hunk); the
    empty lines lazyscribe's diff has after its headers are dropped (a blank
    context line is a single space)."""
    lines = []
    in_hunks = False
    for line in diff.splitlines():
        if not line:
            continue
        if line.startswith("@@"):
            in_hunks = True
            lines.append(DiffLine(kind="hunk", text=line))
        elif not in_hunks:
            lines.append(DiffLine(kind="header", text=line))
        elif line.startswith("+"):
            lines.append(DiffLine(kind="added", text=line))
        elif line.startswith("-"):
            lines.append(DiffLine(kind="removed", text=line))
        else:
            lines.append(DiffLine(kind="same", text=line))
    return tuple(lines)
