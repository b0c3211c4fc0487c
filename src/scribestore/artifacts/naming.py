"""How lazyscribe names an artifact's file and stamps its time.

Shared by the lazyscribe handler classes so their defaults match
lazyscribe's: ``<slug of name>-<YYYYmmddHHMMSS>.<suffix>``, in naive UTC.
"""

from __future__ import annotations

import datetime as dt

from slugify import slugify

__all__ = ["artifact_fname", "naive_utcnow", "slugify"]


def naive_utcnow() -> dt.datetime:
    """The current time in UTC, naive (lazyscribe's timestamps)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def artifact_fname(name: str, created_at: dt.datetime, suffix: str) -> str:
    """lazyscribe's default file name for artifact ``name`` made at ``created_at``."""
    return f"{slugify(name)}-{created_at:%Y%m%d%H%M%S}.{suffix}"
