"""scribestore journal ls|restore: manifest states a save replaced, and bringing one back."""

from __future__ import annotations

import click
import msgspec

from scribestore.cli.app import (
    EXIT_NOT_FOUND,
    CliError,
    cli,
    emit,
    human,
    output_options,
    settings,
    store_options,
    table,
)
from scribestore.core.manifest_file import ManifestFile
from scribestore.ops.journal import JournalEntry
from scribestore.project import Project
from scribestore.repository import Repository
from scribestore.storage import join_url, split_file_url


def _holder(manifest: str, kind: str) -> ManifestFile:
    # Mode "w" reads a damaged manifest tolerantly and a missing one as empty,
    # so a state can be listed and restored when the manifest is either.
    s = settings()
    cls = Project if kind == "project" else Repository
    return cls(manifest, mode="w", objects=s.objects, **s.storage_options)


def _entries(manifest: str) -> list[JournalEntry]:
    directory, name = split_file_url(manifest)
    return _holder(join_url(directory, name), "repository").journal()


@cli.group()
def journal() -> None:
    """Manifest states that saves replaced (mode w, w+ edits, restores), restorable.

    gc keeps each state, and every object it references, for --keep-journal
    (default 7 days).
    """


@journal.command(name="ls")
@click.argument("manifest")
@store_options
@output_options
def ls(manifest: str) -> None:
    """List the replaced states of MANIFEST, oldest first."""
    entries = _entries(manifest)
    emit(
        msgspec.to_builtins(entries),
        lambda: table(
            [
                [e.id, e.replaced_at.isoformat(), e.replaced_by, e.reason, human(e.size)]
                for e in entries
            ],
            ["ID", "REPLACED (UTC)", "BY", "REASON", "SIZE"],
        ),
    )


@journal.command()
@click.argument("manifest")
@click.argument("entry_id", metavar="[ID]", required=False)
@store_options
@output_options
def restore(manifest: str, entry_id: str | None) -> None:
    """Make state ID (default: the newest) of MANIFEST the saved manifest again;
    the current one is journaled first."""
    entries = _entries(manifest)
    kinds = {e.id: e.kind for e in entries}
    if entry_id is None and entries:
        entry_id = entries[-1].id
    if entry_id is None or entry_id not in kinds:
        raise CliError(
            f"no journal entry {entry_id or '(none at all)'} for {manifest}; "
            f"`scribestore journal ls {manifest}` lists them",
            EXIT_NOT_FOUND,
        )
    _holder(manifest, kinds[entry_id]).restore(entry_id)
    emit(
        {"manifest": manifest, "restored": entry_id},
        lambda: [f"restored {manifest} to the state replaced at {entry_id}"],
        report=True,
    )
