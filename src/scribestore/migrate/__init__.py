"""Import a lazyscribe repository or project into scribestore.

:func:`import_lazyscribe` reads a lazyscribe ``repository.json`` or
``project.json`` (lazyscribe 2.x layout, checked against 2.2.2) and the
artifact files beside it, and adds every version to a scribestore manifest:

- the artifact bytes are stored exactly as lazyscribe wrote them, so each
  version's ``hash`` is the BLAKE3 (``b3sum``) of its lazyscribe file, and
  identical files are stored once;
- timestamps keep their value (lazyscribe writes naive UTC, second precision;
  they become timezone-aware UTC), as do expiries, file names and what the
  handler recorded about its environment (``python_version`` for pickle);
- lazyscribe's ``json`` and ``pickle`` handlers map to scribestore's handlers
  of the same name; any other alias is imported with the ``file`` handler
  (bytes intact, loaded back as a stream) unless ``handler_map`` says
  otherwise. lazyscribe does not record writer keyword arguments, so
  migrated versions have empty ``params``.

The source is only read. A rerun is idempotent: a repository version already
in the destination, recognised by (name, created_at, hash), and an experiment
already there, recognised by (slug, created_at), is skipped; when nothing is
new the destination manifest is not written at all. A lazyscribe repository
that gained versions since the last import gets only those added.

Layout read (relative to the source manifest's directory):

- repository: ``<artifact name>/<fname>``;
- project: ``<experiment slug>/<fname>`` and, for tests,
  ``<experiment slug>/<slugified test name>/<fname>``.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
from typing import TYPE_CHECKING, Any

from scribestore.migrate.project import import_project
from scribestore.migrate.source import (
    FALLBACK_HANDLER,
    HANDLER_MAP,
    ImportJob,
    Kind,
    MigrationError,
    MigrationReport,
    Source,
    SourceArtifact,
    check_handlers,
    check_missing,
    detect_kind,
    parse_artifact,
)
from scribestore.progress import Progress, null
from scribestore.repository import Repository
from scribestore.storage import open_storage, split_file_url, split_url

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "FALLBACK_HANDLER",
    "HANDLER_MAP",
    "MigrationError",
    "MigrationReport",
    "detect_kind",
    "import_lazyscribe",
]


# --- the import ----------------------------------------------------------------


def import_lazyscribe(
    source: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    objects: str | os.PathLike[str] | None = None,
    source_options: Mapping[str, Any] | None = None,
    handler_map: Mapping[str, str] | None = None,
    progress: Progress = null,
    **storage_options: Any,
) -> MigrationReport:
    """Import a lazyscribe repository or project into the scribestore manifest ``dest``.

    Args:
        source: path or URL of a lazyscribe ``repository.json`` or
            ``project.json``, with its artifact files beside it.
        dest: path or URL of the scribestore ``repository.json`` or
            ``project.json`` to add to (created if missing). A repository
            source needs a repository destination and a project a project.
        objects: object store URL for ``dest`` (default ``objects/`` beside it).
        source_options: fsspec options for reading ``source``.
        handler_map: extra or overriding lazyscribe alias -> scribestore
            handler mappings (see :data:`HANDLER_MAP`).
        progress: told about the bytes read from the source.
        **storage_options: fsspec options for ``dest`` and its objects.

    Returns:
        A :class:`MigrationReport`.

    Raises:
        MigrationError: the source is not a lazyscribe manifest, lists a file
            that is missing or a malformed entry, ``dest`` is the source
            itself, or ``dest`` holds newer versions of an artifact than one
            to import. Raised before anything is written.
        UnknownHandlerError: ``handler_map`` names a handler that does not exist.
        CorruptManifestError, UnsupportedFormatError: ``dest`` cannot be read.
        SaveError, StorageError: writing the destination failed; its manifest
            is unchanged.
    """
    src_url, dest_url = os.fspath(source), os.fspath(dest)
    if _same_file(src_url, dest_url):
        raise MigrationError(
            f"the destination {dest_url} is the lazyscribe source itself; choose another path"
        )
    src = Source(src_url, source_options or {})
    entries = src.read_entries()
    kind = detect_kind(entries, src.name)
    handlers = {**HANDLER_MAP, **(handler_map or {})}
    _check_dest_kind(dest_url, kind, storage_options)
    report = MigrationReport(source=src_url, dest=dest_url, kind=kind)
    job = ImportJob(
        src, entries, dest_url, objects, handlers, progress, report, dict(storage_options)
    )
    if kind == "repository":
        _import_repository(job)
    else:
        import_project(job)
    return report


def _check_dest_kind(dest: str, kind: Kind, storage_options: Mapping[str, Any]) -> None:
    """Refuse a destination manifest of the other kind, in plain words.

    Raises:
        MigrationError: ``dest`` is a scribestore manifest of the other kind.
    """
    directory, name = split_file_url(dest)
    options = {k: v for k, v in storage_options.items()}
    try:
        data = open_storage(directory, **options).read_bytes(name)
        envelope = json.loads(data)
    except (OSError, ValueError):
        return  # missing (created by the import) or unreadable (reported by the open)
    found = envelope.get("format") if isinstance(envelope, dict) else None
    expected = f"scribestore.{kind}"
    if isinstance(found, str) and found.startswith("scribestore.") and found != expected:
        raise MigrationError(
            f"{dest} is a {found} manifest, but the source is a lazyscribe {kind}; "
            f"import it into a {kind} manifest"
        )


def _same_file(a: str, b: str) -> bool:
    pa, ra = split_url(a)
    pb, rb = split_url(b)
    if pa or pb:
        return pa == pb and ra.rstrip("/") == rb.rstrip("/")
    return os.path.abspath(ra) == os.path.abspath(rb)


def _import_repository(job: ImportJob) -> None:
    src, dest, progress, report = job.src, job.dest, job.progress, job.report
    by_name = _plan_repository(src, job.entries, job.handlers, report)
    repo = Repository(dest, mode="a", objects=job.objects, **job.storage_options)
    existing: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for meta in repo:
        existing[meta["name"]].append(meta)
    for name, versions in by_name.items():
        _check_order(name, versions, existing.get(name, []), dest)

    progress.start(sum(src.size(a.rel) for arts in by_name.values() for a in arts), "importing")
    try:
        for name, versions in by_name.items():
            have = existing.get(name, [])
            matched: set[int] = set()
            latest = max((_meta_time(m) for m in have), default=None)
            for art in versions:
                digest, size = src.put(repo.objects, art.rel, progress)
                report.bytes_read += size
                match = next(
                    (
                        m
                        for m in have
                        if m["version"] not in matched
                        and m["hash"] == digest
                        and _meta_time(m) == art.created_at
                    ),
                    None,
                )
                if match is not None:
                    matched.add(match["version"])
                    report.versions_skipped += 1
                    if art.expiry is not None and match["expiry_timestamp"] != _iso(art.expiry):
                        repo.set_artifact_expiry(name, version=match["version"], expiry=art.expiry)
                        report.expiries_updated += 1
                    continue
                if latest is not None and art.created_at < latest:
                    raise MigrationError(
                        f"version {art.version} of artifact {name!r} in {src.url} (created "
                        f"{art.created_at.isoformat()}) differs from the version saved in {dest} "
                        f"at that time; import into a new manifest. Nothing was imported"
                    )
                repo.queue_version(
                    name,
                    handler=art.handler,
                    created_at=art.created_at,
                    fname=art.fname,
                    environment=art.environment,
                    stored=(digest, size),
                    expiry=art.expiry,
                )
                report.versions_added += 1
    finally:
        progress.close()
    if report.changed:
        repo.save()


def _plan_repository(
    src: Source, entries: list[dict[str, Any]], handlers: Mapping[str, str], report: MigrationReport
) -> dict[str, list[SourceArtifact]]:
    """Every entry parsed and checked, its file found, before anything is written.

    Returns versions of one name in lazyscribe's order, names in order of
    first appearance.

    Raises:
        MigrationError: an entry cannot be imported or a file it names is missing.
    """
    planned: list[SourceArtifact] = []
    missing: list[str] = []
    for raw in entries:
        art = parse_artifact(raw, src.url, handlers)
        art.rel = f"{art.name}/{art.fname}"
        if not src.exists(art.rel):
            missing.append(art.rel)
        planned.append(art)
    check_missing(missing, src)
    check_handlers(planned, report)
    planned.sort(key=lambda a: a.version)
    by_name: dict[str, list[SourceArtifact]] = {}
    for raw in entries:
        by_name.setdefault(raw["name"], [])
    for art in planned:
        by_name[art.name].append(art)

    return by_name


def _meta_time(meta: Mapping[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(meta["timestamp"])


def _iso(when: dt.datetime) -> str:
    return when.isoformat(timespec="microseconds")


def _check_order(
    name: str, versions: list[SourceArtifact], have: list[dict[str, Any]], dest: str
) -> None:
    """Refuse, before writing, versions older than ``dest``'s newest that are not in it."""
    if not have:
        return
    latest = max(_meta_time(m) for m in have)
    times = {_meta_time(m) for m in have}
    for art in versions:
        if art.created_at < latest and art.created_at not in times:
            raise MigrationError(
                f"artifact {name!r} in {dest} has versions newer than version {art.version} "
                f"to import (created {art.created_at.isoformat()}), which it does not hold; "
                "versions cannot be inserted into the past. Import into a new manifest"
            )
