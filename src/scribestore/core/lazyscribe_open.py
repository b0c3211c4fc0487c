"""Opening a lazyscribe 2.x manifest in place.

``Repository("repository.json")`` and ``Project("project.json")`` written by
lazyscribe (a JSON list, with artifact files beside it) open in every mode:
the files' bytes are stored, deduplicated, in the object store beside the
manifest (``objects/``), and the entries become scribestore records in
memory; the lazyscribe files are only read. Loads then read and verify the
stored copies. The first save in a writing mode writes scribestore's
manifest in place of lazyscribe's, after keeping the original beside it
(:func:`backup_name`), and logs what it did.
"""

from __future__ import annotations

import collections
import json
import logging
from typing import TYPE_CHECKING, Any

from scribestore.core.lazyscribe_source import (
    HANDLER_MAP,
    Source,
    SourceArtifact,
    check_missing,
    detect_kind,
    parse_artifact,
    plan_experiment,
)
from scribestore.exception import CorruptManifestError, MigrationError, ScribeStoreError
from scribestore.manifest.schema import (
    ArtifactVersion,
    ExperimentRecord,
    ProjectManifest,
    RepositoryManifest,
    decode_project,
    decode_repository,
    encode_manifest,
)
from scribestore.progress import null

if TYPE_CHECKING:
    from scribestore.storage import Storage
    from scribestore.store.objects import ObjectStore

__all__ = [
    "backup_name",
    "is_lazyscribe",
    "keep_original",
    "project_records",
    "repository_versions",
]

logger = logging.getLogger(__name__)

#: The suffix of the lazyscribe original kept at the first save; later,
#: different originals (lazyscribe wrote the path again) get ``.1``, ``.2``, ...
BACKUP_SUFFIX = ".lazyscribe"
_MAX_BACKUPS = 100


def is_lazyscribe(data: bytes) -> bool:
    """Whether manifest bytes are lazyscribe's (a JSON list), not scribestore's."""
    return data.lstrip()[:1] == b"["


def backup_name(manifest_name: str) -> str:
    """Where the lazyscribe original of ``manifest_name`` is kept (beside it)."""
    return manifest_name + BACKUP_SUFFIX


def _entries(data: bytes, url: str, kind: str) -> list[dict[str, Any]]:
    try:
        entries = json.loads(data)
        found = detect_kind(entries, url.rsplit("/", 1)[-1])
    except (ValueError, UnicodeDecodeError, MigrationError) as exc:
        raise CorruptManifestError(
            f"manifest {url} looks like lazyscribe's (a JSON list) but cannot be read: {exc}"
        ) from None
    if entries and found != kind:
        raise CorruptManifestError(
            f"manifest {url} is a lazyscribe {found}, not a {kind}; open it as a "
            f"{found.capitalize()}"
        )
    return list(entries)


def _source(url: str, options: dict[str, Any]) -> Source:
    try:
        return Source(url, options)
    except MigrationError as exc:
        raise CorruptManifestError(str(exc)) from None


def repository_versions(
    data: bytes, *, url: str, objects: ObjectStore, options: dict[str, Any]
) -> dict[str, list[ArtifactVersion]]:
    """The versions of the lazyscribe repository ``data`` (read from ``url``),
    their files' bytes stored in ``objects``. Versions of one name keep
    lazyscribe's order and are numbered 0, 1, 2, ...

    Raises:
        CorruptManifestError: an entry cannot be read.
        MigrationError: a file it lists is missing.
        StorageError: a file cannot be read or stored.
    """
    src = _source(url, options)
    planned: list[SourceArtifact] = []
    for raw in _entries(data, url, "repository"):
        art = _parsed(raw, url)
        art.rel = f"{art.name}/{art.fname}"
        planned.append(art)
    check_missing([a.rel for a in planned if not src.exists(a.rel)], src)
    by_name: dict[str, list[SourceArtifact]] = collections.defaultdict(list)
    for art in sorted(planned, key=lambda a: a.version):
        by_name[art.name].append(art)
    out: dict[str, list[ArtifactVersion]] = {}
    for name, arts in by_name.items():
        versions = []
        for number, art in enumerate(arts):
            digest, size = src.put(objects, art.rel, null)
            versions.append(
                ArtifactVersion(
                    version=number,
                    hash=digest,
                    size=size,
                    created_at=art.created_at,
                    handler=art.handler,
                    fname=art.fname,
                    expiry=art.expiry,
                    environment=art.environment,
                )
            )
        out[name] = versions
    encoded = encode_manifest(RepositoryManifest(artifacts=out))
    return dict(decode_repository(encoded, where=f"{url} (lazyscribe)").artifacts)


def project_records(
    data: bytes, *, url: str, objects: ObjectStore, options: dict[str, Any]
) -> list[ExperimentRecord]:
    """The experiments of the lazyscribe project ``data`` (read from ``url``),
    their artifact files' bytes stored in ``objects``. Each gets a stable id
    (from its slug and creation time), so two opens agree.

    Raises:
        As :func:`repository_versions`.
    """
    src = _source(url, options)
    try:
        planned = [plan_experiment(raw, src, HANDLER_MAP) for raw in _entries(data, url, "project")]
    except MigrationError as exc:
        raise CorruptManifestError(str(exc)) from None
    except (AttributeError, TypeError, ValueError) as exc:  # a field of the wrong type
        raise CorruptManifestError(
            f"manifest {url} is a malformed lazyscribe project: {exc}"
        ) from None
    check_missing([a.rel for e in planned for a in e.all_artifacts() if not src.exists(a.rel)], src)
    seen: collections.Counter[tuple[str, Any]] = collections.Counter()
    records = []
    for exp in planned:
        seen[(exp.slug, exp.created_at)] += 1
        try:
            records.append(exp.record(src, objects, null, seen[(exp.slug, exp.created_at)]))
        except (AttributeError, TypeError, ValueError) as exc:
            raise CorruptManifestError(
                f"manifest {url}: experiment {exp.slug!r} is malformed: {exc}"
            ) from None
    # What is saved later must decode: check the records as the schema reads them.
    encoded = encode_manifest(ProjectManifest(experiments=records))
    return decode_project(encoded, where=f"{url} (lazyscribe)").experiments


def _parsed(raw: dict[str, Any], url: str) -> SourceArtifact:
    try:
        return parse_artifact(raw, url, HANDLER_MAP)
    except MigrationError as exc:
        raise CorruptManifestError(str(exc)) from None


def keep_original(storage: Storage, manifest_name: str, data: bytes, url: str) -> None:
    """Keep the lazyscribe manifest ``data`` beside ``manifest_name`` before it is
    replaced, and log that it was converted. A different original kept earlier
    (lazyscribe wrote the path again since) is never overwritten: this one
    gets the next free name (``.lazyscribe.1``, ...).

    Raises:
        StorageError, ScribeStoreError: the copy could not be written; the
            manifest is then not replaced.
    """
    for attempt in range(_MAX_BACKUPS):
        backup = backup_name(manifest_name) + (f".{attempt}" if attempt else "")
        try:
            if storage.write_new(backup, [data]):
                break
            if storage.read_bytes(backup) == data:
                break  # this very original was kept earlier (a retried save)
        except OSError as exc:
            raise ScribeStoreError(
                f"could not keep the lazyscribe original of {url} as {backup}: {exc}; "
                "nothing was saved"
            ) from exc
    else:
        raise ScribeStoreError(
            f"could not keep the lazyscribe original of {url}: {_MAX_BACKUPS} other originals "
            f"are kept beside it already ({backup_name(manifest_name)}*); move them away"
        )
    logger.warning(
        "converted lazyscribe manifest %s to scribestore's format; the lazyscribe original "
        "is kept beside it as %s (artifact files are left as they are)",
        url,
        backup,
    )
