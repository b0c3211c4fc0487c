"""Opt-in progress reporting for long operations.

A :class:`Progress` receives three calls: :meth:`~Progress.start` once with the
expected total (in bytes unless the operation documents another unit, as gc
counts files; ``None`` when unknown) and a short description,
:meth:`~Progress.advance` as work is done, and :meth:`~Progress.close` at the
end, also after an error. Library code takes a ``progress`` argument typed as
:class:`Progress` and defaults to :data:`null`, so nothing is shown unless the
caller asks.

Two implementations ship: :class:`NullProgress` (:data:`null`, does nothing)
and :class:`TqdmProgress` (a ``tqdm`` bar on stderr). Anything with the three
methods works too, for example a callback into a GUI or a log line every few
seconds. :class:`ProgressReader` wraps a binary stream so that reading it
advances a progress.
"""

from __future__ import annotations

import io
import os
import sys
from typing import IO, TYPE_CHECKING, Any, Protocol, runtime_checkable

from scribestore.storage.base import BLOCK_SIZE

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "NullProgress",
    "PartOf",
    "Progress",
    "ProgressReader",
    "TqdmProgress",
    "copy_stream",
    "null",
    "terminal_progress",
]


@runtime_checkable
class Progress(Protocol):
    """What a long operation reports to.

    Implementations must accept ``start`` being called again after ``close``
    (one object may report several operations in turn) and must never raise
    from these methods: progress is advisory, the work goes on regardless.
    """

    def start(self, total: int | None, desc: str) -> None:
        """A new operation begins: ``total`` units (bytes) expected, or ``None``."""

    def advance(self, n: int) -> None:
        """``n`` more units are done."""

    def close(self) -> None:
        """The operation ended (successfully or not)."""


class NullProgress:
    """A :class:`Progress` that shows nothing; the default everywhere."""

    def start(self, total: int | None, desc: str) -> None:
        """Ignore the start of an operation."""

    def advance(self, n: int) -> None:
        """Ignore progress."""

    def close(self) -> None:
        """Ignore the end of an operation."""

    def __repr__(self) -> str:
        return "NullProgress()"


#: The shared do-nothing progress.
null: Progress = NullProgress()


class PartOf:
    """A :class:`Progress` for one step of a larger operation reported to ``whole``.

    Its advances go to ``whole``; starting and closing are ``whole``'s own,
    so several steps (the files of one save) move one bar.
    """

    def __init__(self, whole: Progress) -> None:
        self._whole = whole

    def start(self, total: int | None, desc: str) -> None:
        """Ignore: the whole operation was started by its owner."""

    def advance(self, n: int) -> None:
        """Report ``n`` more units to the whole operation."""
        self._whole.advance(n)

    def close(self) -> None:
        """Ignore: the whole operation is closed by its owner."""


class TqdmProgress:
    """A :class:`Progress` drawn as a ``tqdm`` bar.

    Args:
        file: where to draw; default ``sys.stderr``.
        leave: keep the finished bar on screen.
        unit: ``"B"`` (bytes, in auto-scaled binary units) or the name of
            what is counted (``"file"``), shown as plain counts.
        **tqdm_options: passed to ``tqdm.tqdm``.

    Raises:
        ImportError: (from :meth:`start`) tqdm is not installed.
    """

    def __init__(
        self,
        file: IO[str] | None = None,
        *,
        leave: bool = False,
        unit: str = "B",
        **tqdm_options: Any,
    ) -> None:
        self._file = file
        self._leave = leave
        units: dict[str, Any] = (
            {"unit": "B", "unit_scale": True, "unit_divisor": 1024}
            if unit == "B"
            else {"unit": f" {unit}", "unit_scale": False}
        )
        self._options = {**units, **tqdm_options}
        self._bar: Any = None

    def start(self, total: int | None, desc: str) -> None:
        """Open a new bar (closing any previous one)."""
        # Imported here so that `import scribestore` never pays for tqdm.
        from tqdm import tqdm  # type: ignore[import-untyped,unused-ignore]

        self.close()
        file = self._file if self._file is not None else sys.stderr
        # A terminal that reports no width (some pseudo-terminals) would get an
        # empty bar from tqdm: draw 80 columns and 24 rows there instead.
        width = {"dynamic_ncols": True} if _columns(file) else {"ncols": 80, "nrows": 24}
        self._bar = tqdm(
            total=total,
            desc=desc,
            file=file,
            leave=self._leave,
            **{**width, **self._options},
        )

    def advance(self, n: int) -> None:
        """Move the bar forward by ``n`` bytes."""
        if self._bar is not None and n:
            self._bar.update(n)

    def close(self) -> None:
        """Close the bar, if one is open."""
        bar, self._bar = self._bar, None
        if bar is not None:
            bar.close()

    def __repr__(self) -> str:
        return f"TqdmProgress(open={self._bar is not None})"


def _columns(stream: IO[str]) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


def terminal_progress(
    *, enabled: bool = True, stream: IO[str] | None = None, unit: str = "B"
) -> Progress:
    """A :class:`TqdmProgress` counting ``unit`` when ``enabled`` and ``stream``
    (default stderr) is a terminal and tqdm is installed; :data:`null` otherwise.

    Bars are drawn only for people: never into files, pipes or CI logs.
    """
    target = stream if stream is not None else sys.stderr
    if not enabled:
        return null
    try:
        interactive = target.isatty()
    except (AttributeError, ValueError):  # closed or fake streams
        interactive = False
    if not interactive:
        return null
    try:
        import tqdm  # type: ignore[import-untyped,unused-ignore]  # noqa: F401
    except ImportError:
        return null
    return TqdmProgress(target, unit=unit)


class ProgressReader(io.RawIOBase):
    """A binary stream that advances ``progress`` by every byte read from ``raw``.

    Closing the reader closes ``raw``; it does not close ``progress``.
    Attributes of ``raw`` not defined here (e.g. ``verified`` of a
    :class:`~scribestore.ObjectReader`) are reached through the wrapper.
    """

    def __init__(self, raw: IO[bytes] | io.RawIOBase, progress: Progress) -> None:
        super().__init__()
        self._raw = raw
        self._progress = progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._raw.read(len(view))
        if not data:
            return 0
        n = len(data)
        view[:n] = data
        self._progress.advance(n)
        return n

    def close(self) -> None:
        if not self.closed:
            try:
                self._raw.close()
            finally:
                super().close()

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes the wrapper itself lacks; "_raw" itself
        # is looked up before __init__ sets it when an error is being reported.
        if name == "_raw":
            raise AttributeError(name)
        return getattr(self._raw, name)

    def __enter__(self) -> ProgressReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def copy_stream(
    source: IO[bytes] | io.RawIOBase,
    target: IO[bytes],
    progress: Progress = null,
    *,
    total: int | None = None,
    desc: str = "copying",
) -> int:
    """Copy ``source`` to ``target`` in blocks, reporting to ``progress``.

    For a verifying stream (an :class:`~scribestore.ObjectReader`) the copy
    only returns once the stream has reached its verified end.

    Returns:
        The number of bytes copied.

    Raises:
        IntegrityError: a verifying stream's bytes did not match its hash
            (raised at the end of the stream).
        OSError: reading or writing failed. Whatever is raised, ``progress``
            is closed.
    """
    copied = 0
    progress.start(total, desc)
    try:
        while True:
            block = source.read(BLOCK_SIZE)
            if not block:
                return copied
            target.write(block)
            copied += len(block)
            progress.advance(len(block))
    finally:
        progress.close()
