"""The ``scribestore`` command line (``python -m scribestore.cli`` works too).

Commands: log, ls, history, show, get, cat, diff, promote, exp, alias, journal, push, pull,
verify, fsck, du, gc, cache, ui and import-lazyscribe. Exit codes are listed in
:data:`EXIT_CODES`.
"""

from __future__ import annotations

from scribestore.cli import (  # noqa: F401  (register the commands)
    aliases,
    artifacts,
    cache,
    experiments,
    journal,
    maintenance,
    sync,
    ui,
)
from scribestore.cli.app import EXIT_CODES, cli, exit_code_for, main

__all__ = ["EXIT_CODES", "cli", "exit_code_for", "main"]
