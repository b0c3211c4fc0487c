"""An artifact version logged but not saved yet: one type for repositories and experiments."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import datetime as dt

__all__ = ["PendingArtifact"]


@dataclasses.dataclass
class PendingArtifact:
    """An artifact logged but not yet saved.

    ``version`` numbers a repository's versions of one name (experiments
    hold one version per name: 0). ``stored`` is set once the bytes are in
    the object store, as ``(hash, size)``, so a retried save does not
    serialize the value again. ``copied`` marks a copy of a version saved
    elsewhere, with its origin's creation time and hash (promotion, push): a
    save skips it when another writer committed that very version meanwhile.
    ``skip_unchanged`` makes a save skip it when the newest saved version of
    its name holds the same bytes with the same handler.
    """

    name: str
    value: Any
    handler: str
    params: dict[str, Any]
    created_at: dt.datetime
    fname: str
    environment: dict[str, str]
    version: int = 0
    expiry: dt.datetime | None = None
    stored: tuple[str, int] | None = None
    copied: bool = False
    skip_unchanged: bool = False
