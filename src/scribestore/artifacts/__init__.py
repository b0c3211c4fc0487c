"""Artifact handlers: how logged values become stored bytes and back.

See :mod:`scribestore.artifacts.base` for the contract and
:mod:`scribestore.artifacts.registry` for how aliases are resolved.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from scribestore.artifacts.base import ArtifactHandler
from scribestore.artifacts.registry import (
    HandlerRegistrationError,
    available_handlers,
    get_handler,
    register_handler,
)

__all__ = [
    "ArtifactHandler",
    "HandlerRegistrationError",
    "_get_handler",
    "available_handlers",
    "get_handler",
    "register_handler",
]


def _get_handler(alias: str) -> type[Any]:
    """lazyscribe's handler lookup: the artifact class for ``alias``.

    Searches lazyscribe's entry point group first, as lazyscribe does, then
    every handler scribestore knows; the class is the one
    :func:`scribestore.artifacts.objects.artifact_class` gives.

    Raises:
        ImportError: the entry point named ``alias`` cannot be imported.
        TypeError: that entry point is not a class.
        UnknownHandlerError: no handler has this alias (a ValueError).
    """
    from scribestore.artifacts.objects import artifact_class
    from scribestore.artifacts.registry import LAZYSCRIBE_ENTRY_POINT_GROUP

    for entry in entry_points(group=LAZYSCRIBE_ENTRY_POINT_GROUP):
        if entry.name == alias:
            try:
                found = entry.load()
            except ImportError as exc:
                raise ImportError(f"cannot import the handler {alias!r} ({entry}): {exc}") from exc
            if not isinstance(found, type):
                raise TypeError(f"entry point {entry} for handler {alias!r} is not a class")
            if not getattr(found, "__module__", "").startswith("lazyscribe.artifacts."):
                return found
    return artifact_class(alias)
