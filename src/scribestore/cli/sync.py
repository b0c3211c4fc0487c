"""push and pull: copy versions between a working store and a remote one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
import msgspec

from scribestore.cli.app import (
    EXIT_USAGE,
    CliError,
    cli,
    emit,
    human,
    manifest_kind,
    output_options,
    settings,
    store_options,
)
from scribestore.repository import Repository
from scribestore.storage import split_url
from scribestore.sync import SyncReport, copy_versions

if TYPE_CHECKING:
    from collections.abc import Iterator


def _options_for(url: str) -> dict[str, Any]:
    """The command's storage options for a remote URL; none for a local path."""
    return settings().storage_options if split_url(url)[0] else {}


def _open(url: str, mode: str) -> Repository:
    options = _options_for(url)
    if mode == "r" and manifest_kind(url, options) != "repository":
        raise CliError(f"{url} is not a repository manifest", EXIT_USAGE)
    return Repository(url, mode=mode, **options)


def _run(source: str, destination: str, selection: tuple[str, ...], verb: str) -> None:
    s = settings()
    report = copy_versions(
        _open(source, "r"), _open(destination, "a"), selection, progress=s.progress()
    )
    emit(msgspec.to_builtins(report), lambda: _text(report, source, destination, verb), report=True)


def _text(report: SyncReport, source: str, destination: str, verb: str) -> Iterator[str]:
    moved = ", ".join(f"{name}@{alias}" for name, alias in report.aliases)
    if not report.copied:
        if moved:
            yield f"{verb}ed aliases from {source} to {destination}: {moved}"
        else:
            yield f"nothing to {verb}: {destination} holds every selected version of {source}"
        return
    names = ", ".join(f"{name}@{number}" for name, number in report.copied)
    yield f"{verb}ed {len(report.copied)} versions from {source} to {destination}: {names}"
    yield (
        f"copied {report.objects_copied} objects ({human(report.bytes_copied)}); "
        f"{report.present} selected versions were already there"
    )
    if moved:
        yield f"set aliases: {moved}"


@cli.command()
@click.argument("local")
@click.argument("remote")
@click.argument("selection", nargs=-1, metavar="[NAME[@VERSION]]...")
@store_options
@output_options
def push(local: str, remote: str, selection: tuple[str, ...]) -> None:
    """Copy versions of repository LOCAL (all, or those selected) into REMOTE.

    Only the versions and the bytes REMOTE lacks are copied, verified, and
    REMOTE's manifest is merged as a concurrent save would merge it: its new
    versions are numbered after the ones it holds. Running it again copies
    nothing. -o options apply to the remote (non-local) store.
    """
    _run(local, remote, selection, "push")


@cli.command()
@click.argument("local")
@click.argument("remote")
@click.argument("selection", nargs=-1, metavar="[NAME[@VERSION]]...")
@store_options
@output_options
def pull(local: str, remote: str, selection: tuple[str, ...]) -> None:
    """Copy versions of repository REMOTE (all, or those selected) into LOCAL.

    As push, in the other direction: LOCAL is the working store in both.
    """
    _run(remote, local, selection, "pull")
