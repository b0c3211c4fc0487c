"""How lazyscribe names an artifact's file and stamps its time.

Shared by the lazyscribe handler classes so their defaults match
lazyscribe's: ``<slug of name>-<YYYYmmddHHMMSS>.<suffix>``, in naive UTC.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from slugify import slugify

__all__ = ["artifact_fields", "artifact_fname", "naive_utcnow", "slugify"]


def naive_utcnow() -> dt.datetime:
    """The current time in UTC, naive (lazyscribe's timestamps)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def artifact_fname(name: str, created_at: dt.datetime, suffix: str) -> str:
    """lazyscribe's default file name for artifact ``name`` made at ``created_at``."""
    return f"{slugify(name)}-{created_at:%Y%m%d%H%M%S}.{suffix}"


def artifact_fields(
    name: str,
    suffix: str,
    *,
    value: Any,
    fname: str | None,
    created_at: dt.datetime | None,
    expiry: dt.datetime | None,
    writer_kwargs: dict[str, Any] | None,
    version: int,
    dirty: bool,
) -> dict[str, Any]:
    """The base fields of a lazyscribe ``Artifact``, with lazyscribe's defaults
    (now, and the file name :func:`artifact_fname` gives)."""
    created_at = created_at or naive_utcnow()
    return {
        "name": name,
        "value": value,
        "fname": fname or artifact_fname(name, created_at, suffix),
        "created_at": created_at,
        "expiry": expiry,
        "writer_kwargs": writer_kwargs or {},
        "version": version,
        "dirty": dirty,
    }
