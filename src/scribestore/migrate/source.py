"""Reading a lazyscribe manifest and its files: the shared part of the import.

The parsing itself is :mod:`scribestore.core.lazyscribe_source`, shared with
opening lazyscribe manifests in place.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any

from scribestore.artifacts import get_handler
from scribestore.core.lazyscribe_source import (
    FALLBACK_HANDLER,
    HANDLER_MAP,
    Kind,
    Source,
    SourceArtifact,
    check_missing,
    detect_kind,
    parse_artifact,
    timestamp,
)
from scribestore.exception import MigrationError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from scribestore.progress import Progress

__all__ = [
    "FALLBACK_HANDLER",
    "HANDLER_MAP",
    "ImportJob",
    "Kind",
    "MigrationError",
    "MigrationReport",
    "Source",
    "SourceArtifact",
    "check_handlers",
    "check_missing",
    "detect_kind",
    "parse_artifact",
    "timestamp",
]


@dataclasses.dataclass
class MigrationReport:
    """What :func:`import_lazyscribe` did.

    Attributes:
        source, dest: the manifests read and written.
        kind: ``"repository"`` or ``"project"``.
        versions_added: repository versions (or experiment and test artifacts)
            added to the destination.
        versions_skipped: repository versions already in the destination.
        experiments_added, experiments_skipped: for projects.
        expiries_updated: versions already imported whose expiry was set in
            lazyscribe since.
        bytes_read: bytes of source artifact files read.
        handlers: for each lazyscribe alias met, the scribestore handler used.
    """

    source: str
    dest: str
    kind: Kind
    versions_added: int = 0
    versions_skipped: int = 0
    experiments_added: int = 0
    experiments_skipped: int = 0
    expiries_updated: int = 0
    bytes_read: int = 0
    handlers: dict[str, str] = dataclasses.field(default_factory=dict)

    def count_stored(self, size: int) -> None:
        """One source file of ``size`` bytes was stored."""
        self.bytes_read += size
        self.versions_added += 1

    @property
    def changed(self) -> bool:
        """Whether the destination manifest was written."""
        return bool(self.versions_added or self.experiments_added or self.expiries_updated)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-able data."""
        return {**dataclasses.asdict(self), "changed": self.changed}


@dataclasses.dataclass(frozen=True)
class ImportJob:
    """One import: the source and its parsed entries, the destination, and how to report."""

    src: Source
    entries: list[dict[str, Any]]
    dest: str
    objects: str | os.PathLike[str] | None
    handlers: Mapping[str, str]
    progress: Progress
    report: MigrationReport
    storage_options: dict[str, Any]


def check_handlers(artifacts: Iterable[SourceArtifact], report: MigrationReport) -> None:
    for art in artifacts:
        if art.lz_handler not in report.handlers:
            get_handler(art.handler)  # UnknownHandlerError before anything is written
            report.handlers[art.lz_handler] = art.handler
