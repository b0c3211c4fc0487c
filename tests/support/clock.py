"""Time passing for the stat cache, which no test can wait for."""

from __future__ import annotations

import time
import types

import pytest

from scribestore.store import writer


def writer_clock_ahead(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Run the writer's clock ``seconds`` ahead from now on, as if every file
    written so far were that much older: its change time too, which a test
    cannot set back (``os.utime`` sets only access and modification times)."""
    real = time.time_ns
    ahead = int(seconds * 1e9)
    monkeypatch.setattr(writer, "time", types.SimpleNamespace(time_ns=lambda: real() + ahead))
