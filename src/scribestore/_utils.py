"""lazyscribe's ``_utils`` module name, for code that imports ``utcnow`` from it.

lazyscribe users write ``from lazyscribe._utils import utcnow`` (its handler
plugins do too); this module keeps that import working after the switch.
scribestore takes naive datetimes as UTC everywhere, so the value can be
passed back as ``created_at`` or ``expiry``.
"""

from __future__ import annotations

from scribestore.artifacts.naming import naive_utcnow as utcnow
from scribestore.registry import registry

__all__ = ["registry", "utcnow"]
