"""Releases: named sets of artifact versions of a repository, as in lazyscribe.

A :class:`Release` records, for each artifact of a repository, the version it
had when the release was made, and (scribestore's addition) that version's
BLAKE3 hash, so the release can later be loaded bit for bit:
:func:`check_release` confirms a repository still holds exactly those bytes,
and :func:`minimal_repository_from_release` copies them, verified, into a new
repository. ``dump``/``dumps``/``load``/``loads`` read and write the
``releases.json`` lazyscribe writes; files without hashes load too.
"""

from __future__ import annotations

import bisect
import json
import logging
import operator
import os
import sys
import warnings
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any, Literal

import attrs
import fsspec

from scribestore._utils import utcnow
from scribestore.core.artifact_set import copy_object
from scribestore.exception import (
    IntegrityError,
    ModeError,
    UnsavedError,
    VersionNotFoundError,
)
from scribestore.repository import Repository

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "Release",
    "check_release",
    "create_release",
    "dump",
    "dumps",
    "find_release",
    "load",
    "loads",
    "minimal_repository_from_release",
    "release_from_toml",
]

LOG = logging.getLogger(__name__)


@attrs.define
class Release:
    """A release: ``tag``, the ``(name, version)`` of each artifact, and when it
    was made (naive UTC). ``hashes`` maps each name to its version's BLAKE3
    hash (empty for releases written by lazyscribe); it does not take part in
    equality."""

    tag: str
    artifacts: list[tuple[str, int]]
    created_at: datetime = attrs.Factory(utcnow)
    hashes: dict[str, str] = attrs.field(factory=dict, eq=False, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        """lazyscribe's form (``created_at`` in whole seconds); :func:`dump` adds ``hashes``."""
        return {
            "tag": self.tag,
            "artifacts": self.artifacts,
            "created_at": self.created_at.isoformat(timespec="seconds"),
        }

    def to_json(self) -> dict[str, Any]:
        """What ``releases.json`` holds for this release: :meth:`to_dict` plus ``hashes``."""
        out = self.to_dict()
        if self.hashes:
            out["hashes"] = dict(self.hashes)
        return out

    @classmethod
    def from_dict(cls, info: dict[str, Any]) -> Release:
        """The release ``info`` describes (as :meth:`to_json` or lazyscribe writes it).

        Raises:
            KeyError: ``tag``, ``artifacts`` or ``created_at`` is missing.
            ValueError: a field has the wrong type, or ``created_at`` is not an
                ISO time.
        """
        try:
            return cls(
                tag=info["tag"],
                artifacts=list(info["artifacts"]),
                created_at=datetime.fromisoformat(info["created_at"]),
                hashes=dict(info.get("hashes") or {}),
            )
        except (TypeError, AttributeError) as exc:  # a field of the wrong type
            raise ValueError(f"not a release: {info!r} ({exc})") from None


def create_release(repository: Repository, tag: str) -> Release:
    """A release of the newest unexpired version of every artifact in ``repository``.

    Raises:
        ModeError: ``repository`` is not open read-only (a RuntimeError).
        UnsavedError: it has unsaved versions (a RuntimeError).
    """
    if repository.mode != "r":
        raise ModeError(
            f"create_release needs repository {repository.url} open read-only (mode='r'), "
            f"not mode={repository.mode!r}: save it and open it again with mode='r'"
        )
    if any(art.dirty for art in repository.artifacts):
        raise UnsavedError(
            f"repository {repository.url} has unsaved versions; save it and open it again "
            "with mode='r' before making a release"
        )
    artifacts: list[tuple[str, int]] = []
    hashes: dict[str, str] = {}
    for name in sorted({art.name for art in repository.artifacts}):
        try:
            meta = repository.get_artifact_metadata(name)
        except VersionNotFoundError:
            continue  # every version of it has expired
        artifacts.append((name, meta["version"]))
        hashes[name] = meta["hash"]
    return Release(tag=tag, artifacts=artifacts, hashes=hashes)


def find_release(
    releases: list[Release],
    version: str | datetime | None = None,
    match: Literal["asof", "exact"] = "exact",
) -> Release:
    """The release with tag ``version`` (a str), made at ``version`` (a datetime,
    ``exact``) or the newest made by then (``asof``); None: the newest.

    Raises:
        VersionNotFoundError: no release matches (or there is none).
        ValueError: ``asof`` with a tag, or an unknown ``match``.
    """
    if match not in ("exact", "asof"):
        raise ValueError(f"match must be 'exact' or 'asof', not {match!r}")
    if match == "asof" and isinstance(version, str):
        raise ValueError("an 'asof' match needs a datetime, not a tag; give a datetime.datetime")
    ordered = sorted(releases, key=operator.attrgetter("created_at"))
    if not ordered:
        raise VersionNotFoundError("there are no releases to search")
    if version is None:
        found = ordered[-1]
    elif match == "exact" and isinstance(version, str):
        found = _first(ordered, lambda r: r.tag == version, f"no release with tag {version!r}")
    elif match == "exact" and isinstance(version, datetime):
        found = _first(
            ordered, lambda r: r.created_at == version, f"no release made at {version!s}"
        )
    elif match == "asof" and isinstance(version, datetime):
        index = bisect.bisect(ordered, version, key=operator.attrgetter("created_at"))
        if index == 0:
            raise VersionNotFoundError(
                f"{version!s} predates the earliest release, {ordered[0].tag!r} "
                f"({ordered[0].created_at!s})"
            )
        found = ordered[index - 1]
    else:
        raise ValueError(f"version must be a tag (str), a datetime or None, not {version!r}")
    LOG.info("Found release %r (%s)", found.tag, found.created_at)
    return found


def _first(releases: list[Release], test: Any, message: str) -> Release:
    for release in releases:
        if test(release):
            return release
    raise VersionNotFoundError(message)


def dump(obj: list[Release], fp: IO[str], **kwargs: Any) -> None:
    """Write ``obj`` to the text file ``fp`` as JSON (kwargs go to :func:`json.dump`)."""
    json.dump([r.to_json() for r in obj], fp, **kwargs)


def dumps(obj: list[Release], **kwargs: Any) -> str:
    """``obj`` as JSON text (kwargs go to :func:`json.dumps`)."""
    return json.dumps([r.to_json() for r in obj], **kwargs)


def load(fp: IO[str], **kwargs: Any) -> list[Release]:
    """The releases in the JSON text file ``fp``.

    Raises:
        ValueError: not JSON, or a release without a valid ``created_at``.
        KeyError: a release without ``tag``, ``artifacts`` or ``created_at``.
    """
    return [Release.from_dict(r) for r in json.load(fp, **kwargs)]


def loads(s: str, **kwargs: Any) -> list[Release]:
    """The releases in the JSON text ``s`` (errors as :func:`load`)."""
    return [Release.from_dict(r) for r in json.loads(s, **kwargs)]


def release_from_toml(cfg: str) -> None:
    """Release every repository named in a pyproject's ``[tool.lazyscribe]`` table.

    ``repositories`` lists the ``repository.json`` paths; the tag is
    ``[project].version`` (else ``[tool.lazyscribe].version``), or the
    deprecated ``format`` (``"v{version}"``, with ``year``/``month``/``day``).
    Each release is added to ``releases.json`` beside its repository unless
    a release with that tag is there already (then a warning is logged).

    Raises:
        tomllib.TOMLDecodeError: ``cfg`` is not TOML.
        KeyError: the table, its ``repositories`` or a version is missing.
        ManifestNotFoundError: a listed repository does not exist.
    """
    data = tomllib.loads(cfg)
    table = data["tool"]["lazyscribe"]
    try:
        current = data["project"]["version"]
    except KeyError:
        current = table["version"]
    fmt = table.get("format")
    if fmt is not None:
        warnings.warn(
            "[tool.lazyscribe].format is deprecated (as in lazyscribe 2.0.1); the "
            "project version is used as the tag in lazyscribe 3",
            DeprecationWarning,
            stacklevel=2,
        )
    for fpath in table["repositories"]:
        repo = Repository(fpath, mode="r")
        release = create_release(repo, tag=current)
        if isinstance(fmt, str):
            when = release.created_at
            release.tag = fmt.format(
                version=current, year=when.year, month=when.month, day=when.day
            )
        _add_release(repo, release)


def _add_release(repo: Repository, release: Release) -> None:
    target = f"{str(repo.url).rsplit('/', 1)[0]}/releases.json"
    if "://" not in str(repo.url):
        target = os.path.join(os.path.dirname(os.path.abspath(repo.url)), "releases.json")
    fs, path = fsspec.core.url_to_fs(target, **repo.storage_options)
    releases: list[Release] = []
    if fs.exists(path):
        with fs.open(path, "r") as infile:
            releases = load(infile)
        if any(r.tag == release.tag for r in releases):
            LOG.warning(
                "Release '%s' already exists for the repository at '%s'. Skipping...",
                release.tag,
                repo.url,
            )
            return
    releases.append(release)
    with fs.open(path, "w") as outfile:
        dump(releases, outfile, indent=4)


def check_release(repository: Repository, release: Release) -> Repository:
    """The read-only view of ``repository`` holding exactly ``release``'s versions,
    after checking each still has the hash the release recorded.

    Raises:
        ArtifactNotFoundError, VersionNotFoundError: a version is gone.
        IntegrityError: a version's hash is not the one recorded (the
            repository was rewritten since the release).
    """
    view = repository.filter(release.artifacts)
    for name, version in release.artifacts:
        want = release.hashes.get(name)
        have = repository.get_artifact_metadata(name, version=version)["hash"]
        if want is not None and have != want:
            raise IntegrityError(
                want,
                have,
                artifact=name,
                version=version,
                detail=f"release {release.tag!r} recorded another hash for this version "
                f"than repository {repository.url} holds (the repository was rewritten)",
            )
    return view


def minimal_repository_from_release(
    location: str | os.PathLike[str] | Path,
    repository: Repository,
    release: Release,
) -> None:
    """Write a repository at ``location`` (a directory) holding only ``release``'s
    versions, their bytes copied (verified) into its own ``objects/``.

    Versions keep their numbers' order, creation times, handlers and expiry;
    they are numbered from 0 in the new repository, as lazyscribe's are.

    Raises:
        ModeError: ``repository`` is not open read-only.
        IntegrityError: a version's bytes are not the ones the release recorded.
        SaveError: the copy or the new manifest could not be written; the
            new repository's manifest is then not written.
    """
    if repository.mode != "r":
        raise ModeError(
            f"minimal_repository_from_release needs repository {repository.url} open "
            f"read-only (mode='r'), not mode={repository.mode!r}"
        )
    view = check_release(repository, release)
    base = os.fspath(location).rstrip("/")
    LOG.info("Creating a new repository in %s", base)
    target = Repository(f"{base}/repository.json", mode="w", **repository.storage_options)
    for name, version in release.artifacts:
        meta = repository.get_artifact_metadata(name, version=version)
        copy_object(view.objects, target.objects, meta["hash"], f"artifact {name!r}")
        LOG.info("Copying version %i of '%s' to %s", version, name, base)
        expiry = meta["expiry_timestamp"]
        target.queue_version(
            name,
            handler=meta["handler"],
            created_at=datetime.fromisoformat(meta["timestamp"]),
            fname=meta["fname"],
            stored=(meta["hash"], meta["size"]),
            params=meta["params"],
            environment=meta["environment"],
            expiry=None if expiry is None else datetime.fromisoformat(expiry),
        )
    target.save()
