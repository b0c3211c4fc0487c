"""Commands on artifacts: log, ls, history, show, get, cat, diff, promote."""

from __future__ import annotations

import difflib
import os
import stat
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import click

from scribestore.artifacts import get_handler
from scribestore.artifacts.localfile import check_no_link_between, write_atomically
from scribestore.cli.app import (
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    CliError,
    cli,
    emit,
    human,
    manifest_kind,
    output_options,
    parse_ref,
    parse_version,
    settings,
    store_options,
    table,
)
from scribestore.exception import ObjectNotFoundError
from scribestore.manifest.schema import validate_fname
from scribestore.progress import copy_stream, null
from scribestore.project import Project
from scribestore.repository import Repository

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scribestore.store.objects import ObjectStore

__all__ = ["export_target", "open_repository"]


def open_repository(url: str, mode: str = "r") -> Repository:
    """The repository at ``url`` with the command's store options.

    For ``mode="r"`` the manifest must exist; for any mode it must not be a project.

    Raises:
        CliError: no manifest (exit 3) or a project manifest (exit 2).
    """
    s = settings()
    if mode == "r" or _exists(url, s.storage_options):
        kind = manifest_kind(url, s.storage_options)
        if kind != "repository":
            raise CliError(
                f"{url} is a {kind} manifest; this command needs a repository manifest",
                EXIT_USAGE,
            )
    return Repository(url, mode=mode, objects=s.objects, **s.storage_options)


def _exists(url: str, options: dict[str, Any]) -> bool:
    try:
        manifest_kind(url, options)
    except CliError as exc:
        if exc.exit_code == EXIT_NOT_FOUND:
            return False
    except Exception:  # corrupt: let the Repository report it properly
        return True
    return True


def stored_size(objects: ObjectStore, digest: str | None) -> int | None:
    """Bytes ``digest`` occupies in ``objects``; None when it is missing."""
    if digest is None:
        return None
    try:
        return objects.stat(digest).stored_size
    except ObjectNotFoundError:
        return None


def _match(*, asof: bool) -> Any:
    return "asof" if asof else "exact"


asof_option = click.option(
    "--asof",
    is_flag=True,
    help="Select the newest unexpired version at the VERSION timestamp, not an exact match.",
)


# --- log ------------------------------------------------------------------------------


def _files(name: str, path: Path) -> list[tuple[str, Path]]:
    """(artifact name, file) pairs: the file itself, or every file under a directory."""
    if path.is_file():
        return [(name, path)]
    found: list[tuple[str, Path]] = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for fname in sorted(files):
            full = Path(root, fname)
            if stat.S_ISREG(full.stat().st_mode):
                found.append((f"{name}/{full.relative_to(path).as_posix()}", full))
    if not found:
        raise CliError(f"directory {path} holds no files to log", EXIT_USAGE)
    return found


@cli.command()
@click.argument("manifest")
@click.argument("name")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--skip-unchanged",
    is_flag=True,
    help="Add no version when the bytes equal those of the newest saved version.",
)
@click.option(
    "--folder",
    is_flag=True,
    help="Log a directory as one version of NAME (handler 'folder'), not one per file.",
)
@store_options
@output_options
def log(manifest: str, name: str, path: Path, *, skip_unchanged: bool, folder: bool) -> None:
    """Add PATH as a new version of artifact NAME and save.

    A file becomes one version of NAME (handler 'file': streamed in, never
    whole in memory). A directory becomes one version of NAME/<relative
    path> for each file under it, all saved together in one manifest write;
    with --folder, one version of NAME holding the whole tree.
    The manifest is created if it does not exist.
    """
    s = settings()
    repo = open_repository(manifest, mode="a")
    if folder and not path.is_dir():
        raise CliError(f"--folder needs a directory; {path} is not one", EXIT_USAGE)
    items = [(name, path)] if folder else _files(name, path)
    for artifact, file in items:
        handler = "folder" if folder else "file"
        repo.log_artifact(artifact, file, handler=handler, skip_unchanged=skip_unchanged)
    before = {a: len(vs) for a, vs in repo.saved_versions().items()}
    repo.save(progress=s.progress())
    after = repo.saved_versions()
    logged = [repo.get_artifact_metadata(artifact) for artifact, _ in items]
    for meta in logged:  # a skipped file added no version
        meta["unchanged"] = len(after.get(meta["name"], ())) == before.get(meta["name"], 0)
    emit(
        logged,
        lambda: (
            f"{'unchanged' if m['unchanged'] else 'logged'} {m['name']}@{m['version']}  "
            f"{human(m['size'])}  blake3 {m['hash']}"
            for m in logged
        ),
        report=True,
    )


# --- listing -----------------------------------------------------------------------


@cli.command(name="ls")
@click.argument("manifest")
@store_options
@output_options
def ls(manifest: str) -> None:
    """List artifacts with their latest version, size and stored size."""
    repo = open_repository(manifest)
    counts: dict[str, int] = {}
    for meta in repo:
        counts[meta["name"]] = counts.get(meta["name"], 0) + 1
    rows = []
    for name, count in counts.items():
        latest = repo.get_artifact_metadata(name)
        rows.append(
            {
                "name": name,
                "versions": count,
                "latest_version": latest["version"],
                "created_at": latest["timestamp"],
                "handler": latest["handler"],
                "size": latest["size"],
                "stored_size": stored_size(repo.objects, latest["hash"]),
                "hash": latest["hash"],
            }
        )

    def text() -> Iterator[str]:
        if not rows:
            yield f"no artifacts in {manifest}"
            return
        yield from table(
            [
                [
                    r["name"],
                    str(r["latest_version"]),
                    str(r["versions"]),
                    human(r["size"]),
                    human(r["stored_size"]) if r["stored_size"] is not None else "MISSING",
                    r["handler"],
                    r["created_at"][:19],
                ]
                for r in rows
            ],
            ["NAME", "LATEST", "VERSIONS", "SIZE", "STORED", "HANDLER", "CREATED (UTC)"],
        )

    emit(rows, text)


@cli.command()
@click.argument("manifest")
@click.argument("name")
@store_options
@output_options
def history(manifest: str, name: str) -> None:
    """List every version of artifact NAME, oldest first."""
    repo = open_repository(manifest)
    repo.get_artifact_metadata(
        name
    )  # raises ArtifactNotFoundError (exit 3) naming the artifacts there are
    versions = [m for m in repo if m["name"] == name]
    emit(
        versions,
        lambda: table(
            [
                [
                    str(m["version"]),
                    m["timestamp"],
                    m["expiry"] or "-",
                    human(m["size"]),
                    m["handler"],
                    (m["hash"] or "")[:16],
                ]
                for m in versions
            ],
            ["VERSION", "CREATED (UTC)", "EXPIRES", "SIZE", "HANDLER", "BLAKE3"],
        ),
    )


@cli.command()
@click.argument("manifest")
@click.argument("ref", metavar="NAME[@VERSION]")
@asof_option
@store_options
@output_options
def show(manifest: str, ref: str, *, asof: bool) -> None:
    """Show the metadata of one version (default: the newest unexpired)."""
    repo = open_repository(manifest)
    name, version = parse_ref(ref)
    meta = repo.get_artifact_metadata(name, version=version, match=_match(asof=asof))
    meta["stored_size"] = stored_size(repo.objects, meta["hash"])

    def text() -> Iterator[str]:
        for key, value in meta.items():
            if key in ("size", "stored_size"):
                value = f"{value} ({human(value)})" if value is not None else "MISSING"
            yield f"{key + ':':<13} {value}"

    emit(meta, text)


# --- export -----------------------------------------------------------------------


def export_target(dest: Path, fname: str, *, force: bool) -> Path:
    """Where an export of a version named ``fname`` to ``dest`` writes.

    Raises:
        CliError: an unsafe ``fname``, an existing target without ``force``,
            or a missing directory.
    """
    into = dest.is_dir()
    try:
        target = dest / validate_fname(fname) if into else dest
        if into:
            check_no_link_between(dest, target)
    except ValueError as exc:  # an InvalidNameError, or a symlink on the way
        raise CliError(f"refusing to export: {exc}", EXIT_USAGE) from exc
    if target.exists() and not force:
        raise CliError(f"{target} exists; pass --force to replace it", EXIT_USAGE)
    if into and target.parent != dest:
        target.parent.mkdir(parents=True, exist_ok=True)  # a logged "weights/model.json"
    if not target.parent.is_dir():
        raise CliError(f"directory {target.parent} does not exist", EXIT_NOT_FOUND)
    return target


@cli.command()
@click.argument("manifest")
@click.argument("ref", metavar="NAME[@VERSION]")
@click.argument("dest", type=click.Path(path_type=Path))
@asof_option
@click.option("-f", "--force", is_flag=True, help="Replace DEST if it exists.")
@store_options
@output_options
def get(manifest: str, ref: str, dest: Path, *, asof: bool, force: bool) -> None:
    """Export one version to DEST, verified.

    DEST is a file path, or a directory to write the version's file name
    into. The bytes go to a temporary file beside DEST, which replaces DEST
    only once the whole stream has been read and matched its BLAKE3 hash:
    on any error DEST is left as it was.
    """
    s = settings()
    repo = open_repository(manifest)
    name, version = parse_ref(ref)
    meta = repo.get_artifact_metadata(name, version=version, match=_match(asof=asof))
    if meta["handler"] == "folder" and force:
        raise CliError(
            "--force does not replace a folder: remove it, or give a new DEST", EXIT_USAGE
        )
    target = export_target(dest, meta["fname"], force=force)
    progress = s.progress()
    progress.start(meta["size"], f"exporting {name}")
    try:
        if meta["handler"] == "folder":  # the tree, restored all or nothing
            repo.load_artifact(name, version=meta["version"], dest=target)
            progress.advance(meta["size"])
        else:
            with repo.open_artifact(name, version=meta["version"]) as stream:
                write_atomically(str(target), cast("IO[bytes]", stream), progress=progress)
    finally:
        progress.close()
    result = {**meta, "path": str(target)}
    emit(
        result,
        lambda: [
            f"wrote {target}: {name}@{meta['version']}, {human(meta['size'])}, "
            f"blake3 {meta['hash']} (verified)"
        ],
        report=True,
    )


@cli.command()
@click.argument("manifest")
@click.argument("ref", metavar="NAME[@VERSION]")
@asof_option
@store_options
def cat(manifest: str, ref: str, *, asof: bool) -> None:
    """Write the raw bytes of one version to stdout.

    The bytes are checked as they stream; a damaged version ends with exit
    code 4 after part of it was written. Use 'get' for an all-or-nothing export.
    """
    s = settings()
    repo = open_repository(manifest)
    name, version = parse_ref(ref)
    out: IO[bytes] = sys.stdout.buffer
    # A bar would garble data shown on the same terminal.
    progress = null if out.isatty() else s.progress()
    with repo.open_artifact(name, version=version, match=_match(asof=asof)) as stream:
        copy_stream(stream, out, progress, total=stream.size, desc=f"reading {name}")
    out.flush()


# --- compare and promote ----------------------------------------------------------


@cli.command()
@click.argument("manifest")
@click.argument("name")
@click.argument("v1", metavar="VERSION1")
@click.argument("v2", metavar="VERSION2")
@asof_option
@store_options
@output_options
def diff(manifest: str, name: str, v1: str, v2: str, *, asof: bool) -> None:
    """Compare two versions of NAME.

    Text artifacts (json, text) get a unified diff (older version first);
    binary ones a line saying whether their bytes are identical.
    """
    repo = open_repository(manifest)
    match = _match(asof=asof)
    first = repo.get_artifact_metadata(name, version=parse_version(v1), match=match)
    second = repo.get_artifact_metadata(name, version=parse_version(v2), match=match)
    old, new = sorted((first, second), key=lambda m: m["timestamp"])
    binary = get_handler(old["handler"]).binary or get_handler(new["handler"]).binary
    text_diff = None if binary else _text_diff(repo, name, old["version"], new["version"])
    result = {
        "name": name,
        "from": old["version"],
        "to": new["version"],
        "identical": old["hash"] == new["hash"],
        "binary": binary,
        "diff": text_diff,
    }

    def text() -> Iterator[str]:
        label = f"{name}@{old['version']} and {name}@{new['version']}"
        if binary:
            verdict = "are identical" if result["identical"] else "differ"
            yield (
                f"binary versions {label} {verdict} ({human(old['size'])} -> {human(new['size'])})"
            )
        elif text_diff:
            yield text_diff.rstrip("\n")
        else:
            yield f"no differences between {label}"

    emit(result, text)


@cli.command()
@click.argument("project")
@click.argument("experiment")
@click.argument("name")
@click.argument("repository")
@click.option(
    "--project-objects", metavar="URL", help="Object store of PROJECT (default: beside it)."
)
@store_options
@output_options
def promote(
    project: str, experiment: str, name: str, repository: str, project_objects: str | None
) -> None:
    """Make artifact NAME of EXPERIMENT the newest version of NAME in REPOSITORY.

    EXPERIMENT is a slug or short slug. When both manifests share an object
    store this writes only the repository manifest; otherwise the bytes the
    repository lacks are copied first, verified. --objects names the
    repository's object store.
    """
    s = settings()
    kind = manifest_kind(project, s.storage_options)
    if kind != "project":
        raise CliError(f"{project} is a {kind} manifest, not a project", EXIT_USAGE)
    proj = Project(project, mode="r", objects=project_objects, **s.storage_options)
    exp = proj[experiment]
    repo = open_repository(repository, mode="a")
    exp.promote_artifact(repo, name)
    meta = repo.get_artifact_metadata(name)
    emit(
        meta,
        lambda: [
            f"promoted {name} from {exp.slug} to {repository} as "
            f"{name}@{meta['version']} (blake3 {meta['hash']})"
        ],
        report=True,
    )


def _text_diff(repo: Repository, name: str, old: int, new: int) -> str:
    """A unified diff of two verified text versions, headed ``name@old``/``name@new``."""
    texts = []
    for version in (old, new):
        with repo.open_artifact(name, version=version) as stream:
            texts.append(stream.read().decode("utf-8").splitlines())
    lines = difflib.unified_diff(
        texts[0], texts[1], fromfile=f"{name}@{old}", tofile=f"{name}@{new}", lineterm=""
    )
    return "\n".join(lines)
