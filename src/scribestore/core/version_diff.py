"""The text diff of two saved versions of an artifact, in lazyscribe's form."""

from __future__ import annotations

import difflib
import logging
from typing import TYPE_CHECKING

from scribestore.artifacts import get_handler
from scribestore.exception import BinaryArtifactError

if TYPE_CHECKING:
    from scribestore.manifest.schema import ArtifactVersion
    from scribestore.store.objects import ObjectStore

__all__ = ["version_diff"]

logger = logging.getLogger("scribestore.repository")


def version_diff(
    objects: ObjectStore, name: str, old: ArtifactVersion, new: ArtifactVersion
) -> str:
    """lazyscribe's diff of ``old`` and ``new``: the lines of
    :func:`difflib.unified_diff` of their text lines, joined by newlines
    (each header keeps its own newline, so a blank line follows it). The
    same version twice logs a warning and gives an empty diff.

    Raises:
        BinaryArtifactError: a version uses a binary handler (a ValueError).
        IntegrityError: stored bytes do not match their hash.
    """
    texts = []
    for entry in (old, new):
        if get_handler(entry.handler).binary:
            raise BinaryArtifactError(
                f"artifact {name!r} is stored by the binary handler {entry.handler!r}; "
                "only text artifacts (json, text) can be diffed"
            )
        data = objects.get(entry.hash, artifact=name, version=entry.version)
        texts.append(data.decode("utf-8").splitlines())
    if old is new:
        logger.warning(
            "get_version_diff: only version %s of artifact %r was given to compare",
            old.version,
            name,
        )
    return "\n".join(difflib.unified_diff(texts[0], texts[1]))
