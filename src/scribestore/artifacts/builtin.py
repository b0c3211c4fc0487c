"""The built-in artifact handlers: json, text, bytes, pickle, numpy and file.

Each is a small :class:`ArtifactHandler`; the registry instantiates them by
alias. numpy is optional and imported only inside the numpy handler's methods.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar

from scribestore.artifacts.base import ArtifactHandler
from scribestore.exception import ArtifactLoadError, ArtifactLogError
from scribestore.storage.base import BLOCK_SIZE

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import ModuleType

__all__ = [
    "BUILTIN_HANDLERS",
    "BytesHandler",
    "FileHandler",
    "JSONHandler",
    "NumpyHandler",
    "PickleHandler",
    "TextHandler",
]


def _no_params(alias: str, what: str, params: Mapping[str, Any]) -> None:
    """Raise TypeError naming ``params`` when a handler step takes none."""
    if params:
        names = ", ".join(sorted(params))
        raise TypeError(f"the {alias!r} handler's {what} takes no parameters, got: {names}")


class JSONHandler(ArtifactHandler):
    """A JSON-serializable value, stored as UTF-8 JSON text.

    ``write`` params go to :func:`json.dumps` (``indent=4``, ``sort_keys=True``),
    ``read`` params to :func:`json.loads`.

    Raises:
        TypeError: (write) the value is not JSON-serializable.
        ValueError: (read) the bytes are not UTF-8 JSON.
    """

    alias: ClassVar[str] = "json"
    suffix: ClassVar[str] = "json"
    binary: ClassVar[bool] = False

    def write(self, value: Any, buf: IO[bytes], **params: Any) -> None:
        buf.write(json.dumps(value, **params).encode("utf-8"))

    def read(self, buf: IO[bytes], **params: Any) -> Any:
        return json.loads(buf.read().decode("utf-8"), **params)


class TextHandler(ArtifactHandler):
    """A ``str``, stored as UTF-8.

    Raises:
        TypeError: (write) the value is not a ``str``, or params were given.
        UnicodeError: (write) the string holds lone surrogates; (read) the
            bytes are not UTF-8.
    """

    alias: ClassVar[str] = "text"
    suffix: ClassVar[str] = "txt"
    binary: ClassVar[bool] = False

    def write(self, value: Any, buf: IO[bytes], **params: Any) -> None:
        _no_params(self.alias, "write", params)
        if not isinstance(value, str):
            raise TypeError(
                f"the 'text' handler stores str values, not {type(value).__name__}; "
                "use the 'bytes' handler for binary data"
            )
        buf.write(value.encode("utf-8"))

    def read(self, buf: IO[bytes], **params: Any) -> str:
        _no_params(self.alias, "read", params)
        return buf.read().decode("utf-8")


class BytesHandler(ArtifactHandler):
    """Raw bytes: ``bytes``, ``bytearray`` or ``memoryview`` in, ``bytes`` out.

    Raises:
        TypeError: (write) the value is not bytes-like, or params were given.
    """

    alias: ClassVar[str] = "bytes"
    suffix: ClassVar[str] = "bin"

    def write(self, value: Any, buf: IO[bytes], **params: Any) -> None:
        _no_params(self.alias, "write", params)
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"the 'bytes' handler stores bytes, bytearray or memoryview, "
                f"not {type(value).__name__}"
            )
        view = memoryview(value)
        if not view.c_contiguous:
            # cast() refuses strided views; their bytes must be gathered once.
            view = memoryview(view.tobytes())
        buf.write(view.cast("B"))

    def read(self, buf: IO[bytes], **params: Any) -> bytes:
        _no_params(self.alias, "read", params)
        return buf.read()


class PickleHandler(ArtifactHandler):
    """Any picklable value, stored with :mod:`pickle`.

    .. warning::
        Loading a pickle runs arbitrary code chosen by whoever wrote it.
        Only load pickle artifacts from stores you trust completely; the
        BLAKE3 check proves the bytes are the ones stored, not that they are
        safe: anyone who can write to the store can write a pickle that runs
        their code in every process that loads it. Prefer ``json``, ``text``
        or ``numpy`` where they fit.

        Loads through this handler are refused with
        :class:`~scribestore.exception.UntrustedPickleError` (before any byte is
        read) by a repository or project opened with ``trust_pickle=False``,
        or with ``SCRIBESTORE_TRUST_PICKLE=0`` set in the environment. The
        default is to trust, as lazyscribe does. See docs/guarantees.md.

    ``write`` params go to :func:`pickle.dump` (``protocol=4``), ``read`` params
    to :func:`pickle.load` (``encoding=...``). The Python ``major.minor`` is
    recorded; a load under another version is reported by
    :meth:`check_environment`.

    Raises:
        pickle.PicklingError, TypeError, AttributeError: (write) the value
            cannot be pickled.
        Any exception: (read) raised by the unpickled code.
    """

    alias: ClassVar[str] = "pickle"
    suffix: ClassVar[str] = "pkl"
    runs_code_on_load: ClassVar[bool] = True

    def environment(self) -> dict[str, str]:
        return {"python_version": f"{sys.version_info.major}.{sys.version_info.minor}"}

    def write(self, value: Any, buf: IO[bytes], **params: Any) -> None:
        pickle.dump(value, buf, **params)

    def read(self, buf: IO[bytes], **params: Any) -> Any:
        return pickle.load(buf, **params)  # trusted stores only: see the class docstring


def _import_numpy(error: type[ArtifactLogError | ArtifactLoadError], action: str) -> ModuleType:
    """numpy, imported on first use because it is an optional dependency.

    Raises:
        ``error``: numpy is not installed.
    """
    try:
        import numpy
    except ImportError as exc:
        raise error(
            f"the 'numpy' handler needs numpy to {action}, and it is not installed; "
            "install it with `pip install numpy`"
        ) from exc
    return numpy


class NumpyHandler(ArtifactHandler):
    """A numpy array, stored in ``.npy`` format without pickle.

    dtype and shape round-trip exactly. Object arrays need pickle and are
    refused; use the ``pickle`` handler for them. The numpy major version is
    recorded and checked on load, since ``.npy`` files from one major version
    are not promised to load identically under another.

    Raises:
        ArtifactLogError: (write) numpy is not installed.
        ArtifactLoadError: (read) numpy is not installed.
        ValueError: (write) an object array (``allow_pickle`` is off);
            (read) the bytes are not a ``.npy`` array.
        TypeError: ``allow_pickle`` was passed: this handler never pickles.
    """

    alias: ClassVar[str] = "numpy"
    suffix: ClassVar[str] = "npy"

    def environment(self) -> dict[str, str]:
        numpy = _import_numpy(ArtifactLogError, "record its version")
        return {"numpy_version": numpy.__version__.split(".")[0]}

    def check_environment(self, recorded: Mapping[str, str]) -> str | None:
        try:
            self.environment()
        except ArtifactLogError as exc:
            # No numpy here: loading is impossible, which is a mismatch to report.
            return str(exc)
        return super().check_environment(recorded)

    def write(self, value: Any, buf: IO[bytes], **params: Any) -> None:
        self._refuse_pickle(params)
        numpy = _import_numpy(ArtifactLogError, "save arrays")
        numpy.save(buf, value, allow_pickle=False, **params)

    def read(self, buf: IO[bytes], **params: Any) -> Any:
        self._refuse_pickle(params)
        numpy = _import_numpy(ArtifactLoadError, "load arrays")
        loaded = numpy.load(buf, allow_pickle=False, **params)
        if not isinstance(loaded, numpy.ndarray):
            # Only .npy bytes are ever written; an .npz archive here is foreign data.
            loaded.close()
            raise ValueError("the stored bytes are not a .npy array")
        return loaded

    @staticmethod
    def _refuse_pickle(params: Mapping[str, Any]) -> None:
        if "allow_pickle" in params:
            raise TypeError(
                "the 'numpy' handler never pickles (allow_pickle is always off); "
                "use the 'pickle' handler for object arrays"
            )


class FileHandler(ArtifactHandler):
    """A local file, stored by streaming it; loaded as a stream or to a path.

    The value logged is a path (``str`` or ``os.PathLike``) to an existing
    regular file. Its bytes are copied in blocks of :data:`BLOCK_SIZE`; no
    step holds the whole file in memory.
    """

    alias: ClassVar[str] = "file"
    suffix: ClassVar[str] = "bin"
    streams_path: ClassVar[bool] = True

    def source_path(self, value: Any) -> str:
        """The absolute path of the regular local file named by ``value``.

        Raises:
            TypeError: ``value`` is not a ``str`` or ``os.PathLike`` of ``str``.
            FileNotFoundError: nothing exists at the path, or it is a
                directory or another non-regular file.
        """
        if not isinstance(value, (str, os.PathLike)):
            raise TypeError(
                f"the 'file' handler takes a str or os.PathLike path, not {type(value).__name__}"
            )
        raw = os.fspath(value)
        if not isinstance(raw, str):
            raise TypeError(f"the 'file' handler takes str paths, not bytes: {raw!r}")
        path = os.path.abspath(raw)
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            hint = "; only local files can be logged" if "://" in raw else ""
            raise FileNotFoundError(f"no file to log at {path}{hint}") from None
        if stat.S_ISDIR(mode):
            raise FileNotFoundError(f"{path} is a directory; the 'file' handler logs one file")
        if not stat.S_ISREG(mode):
            raise FileNotFoundError(f"{path} is not a regular file (device, FIFO or socket)")
        return path

    def write(self, value: Any, buf: IO[bytes], **params: Any) -> None:
        """Copy the file named by ``value`` into ``buf`` in blocks.

        Raises:
            TypeError, FileNotFoundError: as :meth:`source_path`.
        """
        _no_params(self.alias, "write", params)
        with open(self.source_path(value), "rb") as f:
            shutil.copyfileobj(f, buf, BLOCK_SIZE)

    def read(self, buf: IO[bytes], **params: Any) -> bytes:
        """The whole content as bytes (prefer :meth:`load_stream` for large files)."""
        _no_params(self.alias, "read", params)
        return buf.read()

    def load_stream(
        self,
        stream: IO[bytes],
        dest: str | os.PathLike[str] | None = None,
        fname: str | None = None,
        **params: Any,
    ) -> Any:
        """The stored file: ``stream`` itself, or its content written to ``dest``.

        Without ``dest`` the stream is returned unread; it verifies as the
        caller reads it, and the caller closes it. With ``dest`` (a file path,
        or an existing directory plus ``fname``) the content is copied in
        blocks to a temporary file beside the destination, which replaces the
        destination only after the stream reached its verified end and the
        data was fsynced. The stream is read to its end but not closed.
        ``fname`` is used only when ``dest`` is an existing directory and is
        ignored otherwise.

        Returns:
            ``stream``, or the :class:`pathlib.Path` written.

        Raises:
            IntegrityError: from ``stream``; ``dest`` is left untouched and
                the temporary file is removed.
            IsADirectoryError: ``dest`` is a directory and ``fname`` is not given.
            FileNotFoundError: the directory that would hold ``dest`` is missing.
            TypeError, ValueError: bad ``dest``/``fname``, or other params given.
            OSError: writing failed; ``dest`` is left untouched.
        """
        _no_params(self.alias, "load", params)
        if dest is None:
            return stream
        target = _destination(dest, fname)
        parent = os.path.dirname(target) or "."
        if not os.path.isdir(parent):
            raise FileNotFoundError(f"cannot write {target}: directory {parent} does not exist")
        fd, tmp = tempfile.mkstemp(
            prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=parent
        )
        try:
            with os.fdopen(fd, "wb") as out:
                while block := stream.read(BLOCK_SIZE):
                    out.write(block)
                # Reaching here means the stream hit its clean (verified) end.
                out.flush()
                os.fsync(out.fileno())
            # mkstemp creates 0600; give the file the mode a plain open() would.
            os.chmod(tmp, _new_file_mode(target))
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        _fsync_dir(parent)
        return Path(target)


def _destination(dest: str | os.PathLike[str], fname: str | None) -> str:
    """The file path ``load_stream`` writes for ``dest`` and ``fname``.

    Raises:
        TypeError, ValueError, IsADirectoryError.
    """
    if not isinstance(dest, (str, os.PathLike)):
        raise TypeError(f"dest must be a str or os.PathLike path, not {type(dest).__name__}")
    target = os.fspath(dest)
    if not isinstance(target, str):
        raise TypeError(f"dest must be a str path, not bytes: {target!r}")
    if not os.path.isdir(target):
        # fname only names the file inside a directory dest; callers pass the
        # stored file name unconditionally, so a file dest simply wins.
        return target
    if fname is None:
        raise IsADirectoryError(
            f"dest {target} is a directory; pass fname= to name the file to write inside it"
        )
    # fname must stay inside dest: no separators, no "." / "..".
    if (
        not isinstance(fname, str)
        or fname in ("", ".", "..")
        or os.path.basename(fname) != fname
        or (os.altsep is not None and os.altsep in fname)
    ):
        raise ValueError(f"fname must be a plain file name, got {fname!r}")
    return os.path.join(target, fname)


def _new_file_mode(target: str) -> int:
    """Permission bits for the file replacing ``target``: its own if it exists,
    else 0o666 minus the process umask."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    # Linux exposes the umask read-only; os.umask() must set it to read it,
    # which briefly changes it for every thread, so it is only the fallback.
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(path: str) -> None:
    # Makes the rename durable on POSIX; directories cannot be opened on Windows.
    if os.name != "posix":
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


#: Every built-in handler class, in the order they are documented.
BUILTIN_HANDLERS: tuple[type[ArtifactHandler], ...] = (
    JSONHandler,
    TextHandler,
    BytesHandler,
    PickleHandler,
    NumpyHandler,
    FileHandler,
)
