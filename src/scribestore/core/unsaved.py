"""Warning when a Repository or Project is discarded with changes it never saved.

Forgetting ``save()`` would otherwise lose everything without a word. The
holder's unsaved state is kept in a small object that outlives it, so a
finalizer (run when the holder is collected, or at interpreter exit) can
count what was never saved and warn.
"""

from __future__ import annotations

import warnings
import weakref
from typing import TYPE_CHECKING, Protocol

from scribestore.exception import UnsavedChangesWarning

if TYPE_CHECKING:
    from collections.abc import Iterable, Sized

__all__ = ["UnsavedChanges", "watch"]


class _MayBeUnsaved(Protocol):
    @property
    def has_unsaved(self) -> bool: ...


class UnsavedChanges:
    """What a manifest holder has not saved: its queued versions and its experiments."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.versions: Sized = ()
        self.experiments: Iterable[_MayBeUnsaved] = ()

    def count(self) -> int:
        """Queued versions plus experiments with unsaved changes."""
        return len(self.versions) + sum(1 for e in self.experiments if e.has_unsaved)


def watch(holder: object, label: str) -> UnsavedChanges:
    """Warn with :class:`UnsavedChangesWarning` if ``holder`` goes away unsaved.

    The caller keeps the returned object's ``versions`` and ``experiments``
    pointing at what the holder would save.
    """
    changes = UnsavedChanges(label)
    weakref.finalize(holder, _warn_if_unsaved, changes)
    return changes


def _warn_if_unsaved(changes: UnsavedChanges) -> None:
    count = changes.count()
    if count:
        warnings.warn(
            f"{changes.label} was discarded with {count} unsaved change(s): they are lost. "
            "Call save() before the object goes out of scope or the program ends",
            UnsavedChangesWarning,
            stacklevel=2,
        )
