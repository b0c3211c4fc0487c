"""The facts each page shows, read from a repository or project as frozen Structs.

Pages render these and nothing else, so what the web view claims (sizes,
hashes, what a version cost on storage) is computed here, by the same
library calls a script would make, and tested without a browser.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from scribestore.artifacts import get_handler
from scribestore.exception import (
    ArtifactNotFoundError,
    ExperimentNotFoundError,
    IntegrityError,
    ObjectNotFoundError,
    UnknownHandlerError,
)

if TYPE_CHECKING:
    from scribestore.core.aliases import AliasInfo
    from scribestore.experiment import Experiment
    from scribestore.manifest.schema import ArtifactRecord, ArtifactVersion
    from scribestore.project import Project
    from scribestore.repository import Repository
    from scribestore.store.objects import ObjectStore

__all__ = [
    "ArtifactSummary",
    "ArtifactView",
    "ExperimentRow",
    "ExperimentView",
    "ProjectView",
    "RepositoryView",
    "TestView",
    "VersionRow",
    "artifact_view",
    "experiment_view",
    "is_text",
    "metric_series",
    "number",
    "project_view",
    "repository_view",
    "usable",
]

Order = Literal["asc", "desc"]


class VersionRow(msgspec.Struct, frozen=True, kw_only=True):
    """One saved version on an artifact's timeline."""

    version: int
    created_at: str
    size: int
    hash: str
    fname: str
    handler: str
    #: Whether it is text that can be diffed.
    text: bool
    aliases: tuple[str, ...]
    expiry: str | None
    expired: bool
    #: Bytes this version added on storage beyond every version saved before
    #: it (None: its object is missing, damaged or lacks chunks).
    added_bytes: int | None


class ArtifactSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One artifact of a repository: its newest version and how many there are."""

    name: str
    handler: str
    versions: int
    latest: int
    latest_size: int
    latest_created_at: str
    aliases: tuple[str, ...]


class RepositoryView(msgspec.Struct, frozen=True, kw_only=True):
    """A repository: its artifacts, and logical against stored bytes."""

    url: str
    artifacts: tuple[ArtifactSummary, ...]
    logical_bytes: int
    stored_bytes: int
    missing_objects: int


class ArtifactView(msgspec.Struct, frozen=True, kw_only=True):
    """An artifact's version timeline, oldest first."""

    name: str
    handler: str
    #: Whether its newest version is text that can be diffed.
    text: bool
    versions: tuple[VersionRow, ...]
    aliases: tuple[AliasInfo, ...]
    logical_bytes: int
    stored_bytes: int


class ExperimentRow(msgspec.Struct, frozen=True, kw_only=True):
    """One experiment in a project's table."""

    slug: str
    name: str
    author: str
    created_at: dt.datetime
    tags: tuple[str, ...]
    metrics: dict[str, Any]
    parameters: dict[str, Any]


class ProjectView(msgspec.Struct, frozen=True, kw_only=True):
    """A project's experiments, sorted as asked, and the columns they have."""

    url: str
    experiments: tuple[ExperimentRow, ...]
    metric_names: tuple[str, ...]
    parameter_names: tuple[str, ...]
    #: The column sorted by (``created_at``, ``metric:NAME`` or ``param:NAME``).
    sort: str
    order: Order


class TestView(msgspec.Struct, frozen=True, kw_only=True):
    """A test of an experiment."""

    name: str
    description: str | None
    metrics: dict[str, Any]
    parameters: dict[str, Any]
    artifacts: tuple[ArtifactRecord, ...]


class ExperimentView(msgspec.Struct, frozen=True, kw_only=True):
    """Everything an experiment holds."""

    row: ExperimentRow
    last_updated: str
    last_updated_by: str
    dependencies: tuple[str, ...]
    artifacts: tuple[ArtifactRecord, ...]
    tests: tuple[TestView, ...]


def _time(value: dt.datetime) -> str:
    return value.isoformat(timespec="seconds")


def repository_view(repo: Repository) -> RepositoryView:
    """The artifacts of ``repo`` with its logical and stored bytes.

    Raises:
        StorageError: the store could not be read.
    """
    saved = repo.saved_versions()
    aliases = _aliases_by_version(repo.aliases())
    summaries = []
    for name, versions in sorted(saved.items()):
        latest = versions[-1]
        summaries.append(
            ArtifactSummary(
                name=name,
                handler=latest.handler,
                versions=len(versions),
                latest=latest.version,
                latest_size=latest.size,
                latest_created_at=_time(latest.created_at),
                aliases=tuple(
                    sorted({a for (n, _), names in aliases.items() if n == name for a in names})
                ),
            )
        )
    every = [v for versions in saved.values() for v in versions]
    hashes = {v.hash for v in every}
    loadable = usable(repo.objects, hashes)
    return RepositoryView(
        url=repo.url,
        artifacts=tuple(summaries),
        logical_bytes=sum(v.size for v in every),
        stored_bytes=repo.objects.stored_bytes(loadable),
        missing_objects=len(hashes - loadable),
    )


def artifact_view(repo: Repository, name: str) -> ArtifactView:
    """The timeline of ``name`` in ``repo``: each version with what it cost on storage.

    A version's cost is what it added to the store beyond every version of
    the repository saved before it (of any artifact), so a copy of content
    another artifact holds costs nothing.

    Raises:
        ArtifactNotFoundError: ``repo`` has no saved version of ``name``.
        StorageError: the store could not be read.
    """
    saved = repo.saved_versions()
    versions = saved.get(name)
    if not versions:
        raise ArtifactNotFoundError(f"no saved artifact {name!r} in {repo.url}")
    aliases = _aliases_by_version(repo.aliases(name))
    costs = _costs(repo.objects, saved)
    now = dt.datetime.now(dt.timezone.utc)
    rows = tuple(
        VersionRow(
            version=v.version,
            created_at=_time(v.created_at),
            size=v.size,
            hash=v.hash,
            fname=v.fname,
            handler=v.handler,
            text=is_text(v.handler),
            aliases=tuple(sorted(aliases.get((name, v.version), ()))),
            expiry=None if v.expiry is None else _time(v.expiry),
            expired=v.expiry is not None and v.expiry <= now,
            added_bytes=costs.get((name, v.version)),
        )
        for v in versions
    )
    loadable = usable(repo.objects, {v.hash for v in versions})
    return ArtifactView(
        name=name,
        handler=versions[-1].handler,
        text=rows[-1].text,
        versions=rows,
        aliases=tuple(repo.aliases(name)),
        logical_bytes=sum(v.size for v in versions),
        stored_bytes=repo.objects.stored_bytes(loadable),
    )


def is_text(handler: str) -> bool:
    """Whether versions stored by ``handler`` are text (False for a handler
    this process does not have: the timeline needs none)."""
    try:
        return not get_handler(handler).binary
    except UnknownHandlerError:
        return False


def usable(objects: ObjectStore, digests: set[str]) -> set[str]:
    """The ``digests`` whose objects are present, readable and complete (every
    chunk in a pack): the versions that can be loaded and costed."""
    found = set()
    for digest in digests:
        try:
            if objects.has(digest) and objects.missing_chunks(digest) == 0:
                found.add(digest)
        except (IntegrityError, ObjectNotFoundError):
            continue
    return found


def _costs(
    objects: ObjectStore, saved: dict[str, tuple[ArtifactVersion, ...]]
) -> dict[tuple[str, int], int]:
    """What each loadable version added on storage, versions taken in the order
    they were saved; versions that cannot be loaded are left out."""
    ordered = sorted(
        ((v.created_at, name, v.version, v.hash) for name, vs in saved.items() for v in vs)
    )
    loadable = usable(objects, {digest for *_, digest in ordered})
    kept = [(name, number, digest) for _, name, number, digest in ordered if digest in loadable]
    added = objects.added_bytes([digest for *_, digest in kept])
    return {(name, number): cost for (name, number, _), cost in zip(kept, added, strict=True)}


def _aliases_by_version(infos: list[AliasInfo]) -> dict[tuple[str, int], list[str]]:
    found: dict[tuple[str, int], list[str]] = {}
    for info in infos:
        found.setdefault((info.name, info.version), []).append(info.alias)
    return found


# --- projects ----------------------------------------------------------------------


def _row(exp: Experiment) -> ExperimentRow:
    return ExperimentRow(
        slug=exp.slug,
        name=exp.name,
        author=exp.author,
        created_at=exp.created_at,
        tags=tuple(exp.tags),
        metrics=dict(exp.metrics),
        parameters=dict(exp.parameters),
    )


def project_view(
    project: Project, *, sort: str = "created_at", order: Order = "asc"
) -> ProjectView:
    """The experiments of ``project`` sorted by ``sort``.

    ``sort`` is ``created_at``, ``metric:NAME`` or ``param:NAME``; experiments
    without a number in that column come last in either order.

    Raises:
        ValueError: ``sort`` names no column of the project, or ``order`` is
            neither ``asc`` nor ``desc``.
    """
    if order not in ("asc", "desc"):
        raise ValueError(f"order must be 'asc' or 'desc', not {order!r}")
    rows = [_row(exp) for exp in project.experiments]
    metrics = tuple(sorted({k for r in rows for k in r.metrics}))
    params = tuple(sorted({k for r in rows for k in r.parameters}))
    columns = {"created_at", *(f"metric:{m}" for m in metrics), *(f"param:{p}" for p in params)}
    if sort not in columns:
        raise ValueError(
            f"no column {sort!r} in {project.url}; columns: {', '.join(sorted(columns))}"
        )
    # Stable: experiments created in the same instant keep the project's order.
    rows.sort(key=lambda r: r.created_at, reverse=order == "desc")
    if sort != "created_at":
        kind, _, key = sort.partition(":")
        rows = _sorted_by(rows, kind, key, descending=order == "desc")
    return ProjectView(
        url=project.url,
        experiments=tuple(rows),
        metric_names=metrics,
        parameter_names=params,
        sort=sort,
        order=order,
    )


def _sorted_by(
    rows: list[ExperimentRow], kind: str, key: str, *, descending: bool
) -> list[ExperimentRow]:
    def value(row: ExperimentRow) -> Any:
        return (row.metrics if kind == "metric" else row.parameters).get(key)

    numbers = [r for r in rows if number(value(r)) is not None]
    texts = [r for r in rows if number(value(r)) is None and value(r) is not None]
    absent = [r for r in rows if value(r) is None]
    numbers.sort(key=lambda r: number(value(r)) or 0.0, reverse=descending)
    texts.sort(key=lambda r: str(value(r)), reverse=descending)
    return numbers + texts + absent


def metric_series(project: Project, metric: str) -> list[tuple[str, float]]:
    """(slug, value) of each experiment with a number for ``metric``, in the
    project's order (the order they were logged)."""
    found = ((exp.slug, number(exp.metrics.get(metric))) for exp in project.experiments)
    return [(slug, value) for slug, value in found if value is not None]


def number(value: Any) -> float | None:
    """``value`` as a finite float when it is a real number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        result = float(value)
    except OverflowError:  # an int beyond any float
        return None
    return result if math.isfinite(result) else None


def experiment_view(project: Project, slug: str) -> ExperimentView:
    """Everything the experiment ``slug`` of ``project`` holds.

    Raises:
        ExperimentNotFoundError: no experiment has that slug.
    """
    for exp in project.experiments:
        if exp.slug == slug:
            break
    else:
        raise ExperimentNotFoundError(f"no experiment {slug!r} in {project.url}")
    return ExperimentView(
        row=_row(exp),
        last_updated=_time(exp.last_updated),
        last_updated_by=exp.last_updated_by,
        dependencies=tuple(sorted(exp.dependencies)),
        artifacts=tuple(exp.saved_artifacts()),
        tests=tuple(
            TestView(
                name=t.name,
                description=t.description,
                metrics=dict(t.metrics),
                parameters=dict(t.parameters),
                artifacts=tuple(t.saved_artifacts()),
            )
            for t in exp.tests
        ),
    )
