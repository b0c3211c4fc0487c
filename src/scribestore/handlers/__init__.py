"""Artifact handlers: how logged values become stored bytes and back.

See :mod:`scribestore.handlers.base` for the contract and
:mod:`scribestore.handlers.registry` for how aliases are resolved.
"""

from __future__ import annotations

from scribestore.handlers.base import ArtifactHandler
from scribestore.handlers.registry import (
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
