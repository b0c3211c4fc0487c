"""scribestore cache info|prune: the local cache in front of remote stores."""

from __future__ import annotations

import click
import msgspec

from scribestore.cli.app import CliError, cli, emit, human, output_options
from scribestore.store.cache import ChunkCache, default_cache


def _cache() -> ChunkCache:
    cache = default_cache()
    if cache is None:
        raise CliError("the cache is off (SCRIBESTORE_CACHE=off); nothing to show or prune")
    return cache


@cli.group()
def cache() -> None:
    """The local cache that loads from remote stores read through.

    It lives in SCRIBESTORE_CACHE_DIR (default ~/.cache/scribestore) and holds
    at most SCRIBESTORE_CACHE_SIZE bytes; SCRIBESTORE_CACHE=off disables it.
    """


@cache.command()
@output_options
def info() -> None:
    """Where the cache is, how many entries and bytes it holds, and its limit."""
    found = _cache().info()
    emit(
        msgspec.to_builtins(found),
        lambda: [
            f"cache {found.root}: {found.entries} entries, {human(found.bytes)} "
            f"of {human(found.limit)}"
        ],
    )


@cache.command()
@click.option(
    "--to",
    "keep",
    type=int,
    default=0,
    show_default=True,
    help="Bytes to keep: the most recently used entries stay.",
)
@output_options
def prune(keep: int) -> None:
    """Delete the least recently used entries until at most --to bytes remain."""
    target = _cache()
    deleted, freed = target.prune(keep)
    emit(
        {"deleted": deleted, "freed": freed, "root": str(target.root)},
        lambda: [f"deleted {deleted} entries ({human(freed)}) from {target.root}"],
        report=True,
    )
