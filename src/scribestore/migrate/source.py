"""Reading a lazyscribe manifest and its files: the shared part of the import."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from scribestore.artifacts import get_handler
from scribestore.artifacts.adapter import environment_text
from scribestore.exception import (
    HandlerRegistrationError,
    InvalidNameError,
    MigrationError,
    UnknownHandlerError,
)
from scribestore.experiment import slugify
from scribestore.manifest.schema import validate_name
from scribestore.manifest.versions import to_utc
from scribestore.progress import Progress, ProgressReader
from scribestore.storage import open_storage, split_file_url, split_url

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from scribestore.storage import Storage
    from scribestore.store.objects import ObjectStore

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

#: lazyscribe handler alias -> scribestore handler alias, for the handlers
#: whose bytes scribestore's handler reads back to the same value.
HANDLER_MAP: dict[str, str] = {"json": "json", "pickle": "pickle"}
#: Handler used for lazyscribe aliases that are neither mapped nor installed
#: (an installed lazyscribe plugin reads its own files and is used as is).
FALLBACK_HANDLER = "file"

# Keys lazyscribe writes for every artifact; any other key is a handler's
# record of its environment (e.g. pickle's "python_version").
_ARTIFACT_KEYS = frozenset({"name", "version", "fname", "handler", "created_at", "expiry"})

Kind = Literal["repository", "project"]


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

    @property
    def changed(self) -> bool:
        """Whether the destination manifest was written."""
        return bool(self.versions_added or self.experiments_added or self.expiries_updated)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-able data."""
        return {**dataclasses.asdict(self), "changed": self.changed}


def detect_kind(entries: object, fname: str = "") -> Kind:
    """Whether decoded lazyscribe JSON ``entries`` is a repository or a project.

    A repository is a list of artifact dicts (``name``, ``fname``,
    ``handler``); a project a list of experiment dicts (``slug``). An empty
    list is told apart by the file name (``project`` in it: a project).

    Raises:
        MigrationError: neither.
    """
    if isinstance(entries, dict) and "format" in entries:
        raise MigrationError(
            f"{fname or 'the source'} is already a scribestore manifest "
            f"({entries.get('format')!r}); nothing to import"
        )
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise MigrationError(
            f"{fname or 'the source'} is not a lazyscribe repository.json or project.json: "
            "expected a JSON list of objects"
        )
    if not entries:
        return "project" if "project" in os.path.basename(fname).lower() else "repository"
    if all("slug" in e for e in entries):
        return "project"
    if all({"name", "fname", "handler"} <= e.keys() for e in entries):
        return "repository"
    raise MigrationError(
        f"{fname or 'the source'} is neither a lazyscribe repository (a list of artifacts "
        "with name, fname and handler) nor a project (a list of experiments with a slug)"
    )


# --- reading the source --------------------------------------------------------


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


class Source:
    """The source manifest's directory, read-only."""

    def __init__(self, url: str, options: Mapping[str, Any]) -> None:
        try:
            self.dir, self.name = split_file_url(url)
        except ValueError as exc:
            raise MigrationError(str(exc)) from None
        self.url = url
        self.storage: Storage = open_storage(self.dir, **dict(options))
        protocol, _ = split_url(self.dir)
        # Local files are handed to the object store as paths, which it hashes
        # and copies without spooling; remote ones are streamed.
        self.local: Path | None = None if protocol else Path(self.dir)

    def read_entries(self) -> list[dict[str, Any]]:
        try:
            data = self.storage.read_bytes(self.name)
        except FileNotFoundError:
            raise MigrationError(f"no lazyscribe manifest at {self.url}") from None
        try:
            entries = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MigrationError(f"{self.url} is not JSON: {exc}") from None
        detect_kind(entries, self.name)  # raises for anything but a list of dicts
        return list(entries)

    def exists(self, rel: str) -> bool:
        try:
            return self.storage.exists(rel)
        except ValueError:  # an unsafe relative path
            return False

    def size(self, rel: str) -> int:
        return self.storage.size(rel)

    def find_test_file(self, slug: str, test_name: str, fname: str) -> str | None:
        """The path of a test artifact: lazyscribe slugifies the test name with
        python-slugify, whose transliteration can differ from ours, so fall
        back to the one file named ``fname`` one level under the experiment."""
        direct = f"{slug}/{slugify(test_name)}/{fname}"
        if self.exists(direct):
            return direct
        try:
            found = [
                p
                for p in self.storage.list(slug)
                if p.count("/") == 2 and p.rsplit("/", 1)[1] == fname
            ]
        except (FileNotFoundError, ValueError):
            return None
        return found[0] if len(found) == 1 else None

    def put(self, objects: ObjectStore, rel: str, progress: Progress) -> tuple[str, int]:
        """Store the file ``rel`` in ``objects`` (deduplicated); return (hash, size)."""
        if self.local is not None:
            digest, size = objects.put_sized(self.local.joinpath(*rel.split("/")))
            progress.advance(size)
            return digest, size
        with ProgressReader(self.storage.open_read(rel), progress) as stream:
            return objects.put_sized(stream)


# --- parsing lazyscribe entries ------------------------------------------------


def timestamp(value: object, what: str) -> dt.datetime:
    """A lazyscribe timestamp (naive UTC ISO) as an aware UTC datetime.

    Raises:
        MigrationError: not an ISO timestamp.
    """
    if not isinstance(value, str):
        raise MigrationError(f"{what} is {value!r}, not an ISO timestamp")
    try:
        # Python 3.10's fromisoformat does not take a trailing "Z".
        parsed = dt.datetime.fromisoformat(value.removesuffix("Z"))
    except ValueError:
        raise MigrationError(f"{what} is {value!r}, not an ISO timestamp") from None
    return to_utc(parsed)


@dataclasses.dataclass
class SourceArtifact:
    """One lazyscribe artifact entry, checked, with its file located."""

    name: str
    version: int
    created_at: dt.datetime
    expiry: dt.datetime | None
    lz_handler: str
    handler: str
    fname: str
    environment: dict[str, str]
    rel: str


def parse_artifact(
    raw: Mapping[str, Any], where: str, handlers: Mapping[str, str]
) -> SourceArtifact:
    """The checked artifact, its file not located yet (``rel`` empty).

    Raises:
        MigrationError: a field is missing or malformed.
    """
    name = raw.get("name")
    label = f"artifact {name!r} in {where}"
    for key in ("name", "fname", "handler"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise MigrationError(f"{label} has no valid {key!r}")
    try:
        validate_name(raw["name"])
    except InvalidNameError as exc:
        raise MigrationError(f"{where}: {exc}") from None
    fname = raw["fname"]
    if "/" in fname or "\\" in fname or fname in (".", ".."):
        raise MigrationError(f"{label} has a file name with a path in it: {fname!r}")
    version = raw.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise MigrationError(f"{label} has version {version!r}, not a non-negative int")
    expiry = raw.get("expiry")
    lz_handler = raw["handler"]
    return SourceArtifact(
        name=raw["name"],
        version=version,
        created_at=timestamp(raw.get("created_at"), f"created_at of {label}"),
        expiry=None if expiry is None else timestamp(expiry, f"expiry of {label}"),
        lz_handler=lz_handler,
        handler=handlers.get(lz_handler) or _installed(lz_handler) or FALLBACK_HANDLER,
        fname=fname,
        environment={k: environment_text(v) for k, v in raw.items() if k not in _ARTIFACT_KEYS},
        rel="",
    )


def _installed(alias: str) -> str | None:
    """``alias`` if a handler by that name is installed (a lazyscribe plugin), else None."""
    try:
        get_handler(alias)
    except (UnknownHandlerError, HandlerRegistrationError):
        return None
    return alias


def check_handlers(artifacts: Iterable[SourceArtifact], report: MigrationReport) -> None:
    for art in artifacts:
        if art.lz_handler not in report.handlers:
            get_handler(art.handler)  # UnknownHandlerError before anything is written
            report.handlers[art.lz_handler] = art.handler


def check_missing(missing: list[str], source: Source) -> None:
    if missing:
        listing = ", ".join(missing[:10]) + (
            f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        )
        raise MigrationError(
            f"{len(missing)} artifact file(s) listed in {source.url} are missing from "
            f"{source.dir}: {listing}. Nothing was imported; restore them or remove the "
            "entries from the lazyscribe manifest"
        )
