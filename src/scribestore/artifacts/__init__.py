"""Artifact handlers: how logged values become stored bytes and back.

See :mod:`scribestore.artifacts.base` for the contract and
:mod:`scribestore.artifacts.registry` for how aliases are resolved.
"""

from __future__ import annotations

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
    "available_handlers",
    "get_handler",
    "register_handler",
]
