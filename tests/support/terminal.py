"""Running the real ``scribestore`` command in a pseudo-terminal, as a person would.

The child's stdout and stderr are the terminal (100 columns), so progress
bars are drawn, every update of them; what it wrote is returned with the percentages it showed,
in the order they were drawn.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

from support.helpers import child_env

__all__ = ["run_in_terminal"]

_PERCENT = re.compile(rb"(\d{1,3})%\|")


def run_in_terminal(
    *args: object, columns: int = 100, timeout: float = 300
) -> tuple[int, str, list[int]]:
    """Run ``scribestore ARGS`` on a pseudo-terminal ``columns`` wide (0: one
    that reports no size, as some do).

    Returns:
        The exit code, everything written (stdout and stderr together), and
        the bar percentages drawn.
    """
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24 if columns else 0, columns, 0, 0))
    command = [str(Path(sys.executable).parent / "scribestore"), *map(str, args)]
    # Every update drawn (tqdm's own environment settings), so a fast
    # machine still shows the steps between 0 and 100 %.
    env = {**child_env(), "TQDM_MININTERVAL": "0", "TQDM_MINITERS": "1"}
    proc = subprocess.Popen(
        command, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True
    )
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    code = proc.wait(timeout=timeout)
    return code, out.decode("utf-8", "replace"), [int(p) for p in _PERCENT.findall(out)]
