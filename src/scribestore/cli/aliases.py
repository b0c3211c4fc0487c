"""scribestore alias set|rm|ls|history: named, movable pointers to versions."""

from __future__ import annotations

import click
import msgspec

from scribestore.cli.app import (
    cli,
    emit,
    output_options,
    parse_version,
    store_options,
    table,
)
from scribestore.cli.artifacts import open_repository


@cli.group()
def alias() -> None:
    """Aliases: named pointers to versions (production, candidate), moved at will.

    A version argument NAME@ALIAS (or --version @ALIAS) selects the version an
    alias points at wherever a version is taken.
    """


@alias.command(name="set")
@click.argument("manifest")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.argument("version", required=False)
@store_options
@output_options
def set_(manifest: str, name: str, alias_name: str, version: str | None) -> None:
    """Point ALIAS of artifact NAME at VERSION (default: the newest), moving it."""
    repo = open_repository(manifest, mode="a")
    info = repo.set_alias(name, alias_name, version=parse_version(version))
    emit(
        msgspec.to_builtins(info),
        lambda: [f"{name}@{alias_name} -> version {info.version} ({info.hash[:16]})"],
        report=True,
    )


@alias.command(name="rm")
@click.argument("manifest")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@store_options
@output_options
def rm(manifest: str, name: str, alias_name: str) -> None:
    """Remove ALIAS of artifact NAME (its history is kept)."""
    repo = open_repository(manifest, mode="a")
    repo.remove_alias(name, alias_name)
    emit(
        {"name": name, "alias": alias_name, "removed": True},
        lambda: [f"removed {name}@{alias_name}"],
        report=True,
    )


@alias.command(name="ls")
@click.argument("manifest")
@click.argument("name", required=False)
@store_options
@output_options
def ls(manifest: str, name: str | None) -> None:
    """List the aliases (of NAME, or of every artifact) and where they point."""
    found = open_repository(manifest).aliases(name)
    emit(
        msgspec.to_builtins(found),
        lambda: table(
            [[a.name, a.alias, str(a.version), a.hash[:16], a.moved_at, a.moved_by] for a in found],
            ["ARTIFACT", "ALIAS", "VERSION", "BLAKE3", "MOVED (UTC)", "BY"],
        ),
    )


@alias.command(name="history")
@click.argument("manifest")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@store_options
@output_options
def history(manifest: str, name: str, alias_name: str) -> None:
    """Every move of ALIAS of artifact NAME, oldest first."""
    moves = open_repository(manifest).alias_history(name, alias_name)
    emit(
        msgspec.to_builtins(moves),
        lambda: table(
            [
                [
                    m.moved_at.isoformat(),
                    m.moved_by,
                    "removed" if m.target is None else f"version {m.target.version}",
                    "-" if m.target is None else m.target.hash[:16],
                ]
                for m in moves
            ],
            ["MOVED (UTC)", "BY", "TO", "BLAKE3"],
        ),
    )
