"""Counting what a store reads from its storage: bytes and requests, by kind of file."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scribestore.storage import Storage


@dataclass
class Reads:
    """Bytes and read requests a storage served, split into pack and other files."""

    pack_bytes: int = 0
    other_bytes: int = 0
    requests: int = 0
    paths: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.pack_bytes + self.other_bytes

    def add(self, path: str, n: int) -> None:
        if path.endswith(".pack"):
            self.pack_bytes += n
        else:
            self.other_bytes += n


class _CountedFile(io.RawIOBase):
    def __init__(self, inner: IO[bytes], path: str, reads: Reads) -> None:
        super().__init__()
        self._inner = inner
        self._path = path
        self._reads = reads

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(memoryview(buffer)))
        n = len(data)
        memoryview(buffer).cast("B")[:n] = data
        self._reads.add(self._path, n)
        return n

    def close(self) -> None:
        self._inner.close()
        super().close()


@contextlib.contextmanager
def count_reads(storage: Storage) -> Iterator[Reads]:
    """Count every byte ``storage`` returns while the block runs."""
    reads = Reads()
    with pytest.MonkeyPatch.context() as mp:
        for name in ("read_bytes", "read_range", "read_view", "open_read"):
            real = getattr(storage, name)

            def counted(path: str, *args: Any, _real: Any = real, _name: str = name) -> Any:
                reads.requests += 1
                reads.paths.append(path)
                result = _real(path, *args)
                if _name == "open_read":
                    return _CountedFile(result, path, reads)
                reads.add(path, len(result))
                return result

            mp.setattr(storage, name, counted)
        yield reads
