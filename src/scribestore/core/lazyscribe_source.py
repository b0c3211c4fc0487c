"""Reading lazyscribe's manifests and artifact files (lazyscribe 2.x layout).

lazyscribe keeps a JSON list beside per-artifact files: ``<dir>/<name>/<fname>``
for a repository's versions, ``<dir>/<slug>/<fname>`` for an experiment's
artifacts and ``<dir>/<slug>/<test-slug>/<fname>`` for a test's. This module
parses those entries and stores the files' bytes in an object store; the
import (:mod:`scribestore.migrate`) and opening a lazyscribe manifest in
place (:mod:`scribestore.core.lazyscribe_open`) are built on it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from scribestore.artifacts import get_handler
from scribestore.artifacts.adapter import environment_text
from scribestore.artifacts.naming import slugify
from scribestore.exception import (
    HandlerRegistrationError,
    InvalidNameError,
    MigrationError,
    UnknownHandlerError,
)
from scribestore.manifest.schema import (
    ArtifactRecord,
    ExperimentRecord,
    TestRecord,
    jsonable_params,
    validate_fname,
    validate_name,
)
from scribestore.manifest.versions import to_utc
from scribestore.progress import Progress, ProgressReader
from scribestore.storage import open_storage, split_file_url, split_url
from scribestore.store.hashing import hash_bytes

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from scribestore.storage import Storage
    from scribestore.store.objects import ObjectStore

__all__ = [
    "FALLBACK_HANDLER",
    "HANDLER_MAP",
    "Kind",
    "PlannedExperiment",
    "PlannedTest",
    "Source",
    "SourceArtifact",
    "check_missing",
    "dependencies",
    "detect_kind",
    "parse_artifact",
    "plan_experiment",
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
    try:
        validate_fname(fname)
    except InvalidNameError:
        raise MigrationError(f"{label} has a file name that could escape: {fname!r}") from None
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
        handler=handlers.get(lz_handler) or installed_handler(lz_handler) or FALLBACK_HANDLER,
        fname=fname,
        environment={k: environment_text(v) for k, v in raw.items() if k not in _ARTIFACT_KEYS},
        rel="",
    )


def installed_handler(alias: str) -> str | None:
    """``alias`` if a handler by that name is installed (a lazyscribe plugin), else None."""
    try:
        get_handler(alias)
    except (UnknownHandlerError, HandlerRegistrationError):
        return None
    return alias


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


@dataclasses.dataclass
class PlannedTest:
    raw: dict[str, Any]
    artifacts: list[SourceArtifact]


@dataclasses.dataclass
class PlannedExperiment:
    raw: dict[str, Any]
    slug: str
    created_at: dt.datetime
    artifacts: list[SourceArtifact]
    tests: list[PlannedTest]

    def all_artifacts(self) -> list[SourceArtifact]:
        return [*self.artifacts, *(a for t in self.tests for a in t.artifacts)]

    def record(
        self,
        src: Source,
        objects: ObjectStore,
        progress: Progress,
        occurrence: int,
        on_stored: Callable[[int], None] = lambda size: None,
    ) -> ExperimentRecord:
        """Store this experiment's artifact bytes and return its record.

        ``occurrence`` numbers experiments sharing a slug and creation time
        (from 1), so each gets its own stable id; ``on_stored`` is told the
        size of each file stored.
        """

        def stored(arts: list[SourceArtifact]) -> list[ArtifactRecord]:
            out = []
            for art in arts:
                digest, size = src.put(objects, art.rel, progress)
                on_stored(size)
                out.append(
                    ArtifactRecord(
                        name=art.name,
                        hash=digest,
                        size=size,
                        created_at=art.created_at,
                        handler=art.handler,
                        fname=art.fname,
                        environment=art.environment,
                    )
                )
            return out

        raw = self.raw
        last_updated = timestamp(raw.get("last_updated", raw["created_at"]), "last_updated")
        author = str(raw.get("author", ""))
        # A stable id: a rerun that meets this experiment again (say, after the
        # destination was copied elsewhere) merges with it instead of doubling it.
        seed = f"lazyscribe:{self.slug}:{self.created_at.isoformat()}:{occurrence}"
        return ExperimentRecord(
            id=hash_bytes(seed.encode())[:32],
            name=str(raw.get("name", self.slug)),
            slug=self.slug,
            short_slug=str(raw.get("short_slug", slugify(str(raw.get("name", self.slug))))),
            author=author,
            last_updated_by=str(raw.get("last_updated_by", author)),
            created_at=self.created_at,
            last_updated=max(last_updated, self.created_at),
            metrics=dict(raw.get("metrics") or {}),
            parameters=jsonable_params(raw.get("parameters") or {}),
            tags=[str(t) for t in raw.get("tags") or []],
            dependencies=dependencies(raw.get("dependencies")),
            tests=[
                TestRecord(
                    name=str(t.raw.get("name", "")),
                    description=t.raw.get("description"),
                    metrics=dict(t.raw.get("metrics") or {}),
                    parameters=jsonable_params(t.raw.get("parameters") or {}),
                    artifacts=stored(t.artifacts),
                )
                for t in self.tests
            ],
            artifacts=stored(self.artifacts),
        )


def dependencies(raw: object) -> dict[str, str]:
    """lazyscribe's ``["<project>|<slug>", ...]`` keyed by the upstream slug."""
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    out: dict[str, str] = {}
    for dep in raw if isinstance(raw, list) else []:
        text = str(dep)
        out[text.rsplit("|", 1)[-1]] = text
    return out


def plan_experiment(
    raw: dict[str, Any], src: Source, handlers: Mapping[str, str]
) -> PlannedExperiment:
    slug = raw.get("slug")
    if not isinstance(slug, str) or not slug:
        raise MigrationError(f"an experiment in {src.url} has no slug")
    try:
        validate_name(slug, kind="experiment")
    except InvalidNameError as exc:
        raise MigrationError(f"{src.url}: {exc}") from None
    where = f"experiment {slug!r} of {src.url}"
    artifacts = []
    for a in raw.get("artifacts") or []:
        art = parse_artifact(a, where, handlers)
        art.rel = f"{slug}/{art.fname}"
        artifacts.append(art)
    tests = []
    for t in raw.get("tests") or []:
        test_arts = []
        for a in t.get("artifacts") or []:
            name = str(t.get("name", ""))
            art = parse_artifact(a, f"test {name!r} of {where}", handlers)
            art.rel = src.find_test_file(slug, name, art.fname) or (
                f"{slug}/{slugify(name)}/{art.fname}"
            )
            test_arts.append(art)
        tests.append(PlannedTest(raw=t, artifacts=test_arts))
    return PlannedExperiment(
        raw=raw,
        slug=slug,
        created_at=timestamp(raw.get("created_at"), f"created_at of {where}"),
        artifacts=artifacts,
        tests=tests,
    )
