"""Writing a restored file: all or nothing, durable, written back as it goes."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest

from scribestore.artifacts import localfile


def test_writeback_starts_behind_the_writing_and_the_bytes_are_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    advised: list[tuple[int, int, int]] = []
    synced: list[int] = []
    real_fsync = os.fsync

    def advise(fd: int, offset: int, length: int, how: int) -> None:
        advised.append((offset, length, how))

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(localfile.os, "posix_fadvise", advise, raising=False)
    monkeypatch.setattr(localfile.os, "fsync", fsync)
    monkeypatch.setattr(localfile, "_WRITEBACK", 8 << 20)
    data = os.urandom(40 << 20)
    target = tmp_path / "out.bin"
    localfile.write_atomically(str(target), io.BytesIO(data))
    assert target.read_bytes() == data
    if sys.platform.startswith("linux"):
        # Contiguous ranges from the start, each at least _WRITEBACK, none past the end.
        assert advised and advised[0][0] == 0
        for (off, length, how), nxt in zip(advised, [*advised[1:], None], strict=True):
            assert how == os.POSIX_FADV_DONTNEED and length >= 8 << 20
            if nxt is not None:
                assert nxt[0] == off + length
        assert advised[-1][0] + advised[-1][1] <= len(data)
    assert synced  # the final fsync still waits for everything


def test_a_failed_stream_leaves_the_target_untouched(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"before")

    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: object) -> int:
            raise OSError("stream failed")

    with pytest.raises(OSError, match="stream failed"):
        localfile.write_atomically(str(target), io.BufferedReader(Broken()))
    assert target.read_bytes() == b"before"
    assert os.listdir(tmp_path) == ["out.bin"]
