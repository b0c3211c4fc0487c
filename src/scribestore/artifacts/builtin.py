"""The built-in artifact handlers: json, text, bytes, pickle, numpy, file, and
(from their own modules) folder, safetensors and dataframe.

Each is a small :class:`ArtifactHandler`; the registry instantiates them by
alias. numpy is optional and imported only inside the numpy handler's methods.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import stat
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar

import numpy

from scribestore.artifacts.base import ArtifactHandler
from scribestore.artifacts.folder import FolderHandler
from scribestore.artifacts.frames import DataFrameHandler
from scribestore.artifacts.localfile import check_no_link_between, write_atomically
from scribestore.artifacts.tensors import SafetensorsHandler
from scribestore.storage.base import BLOCK_SIZE

if TYPE_CHECKING:
    from collections.abc import Mapping

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

    def check_value(self, value: Any, **params: Any) -> None:
        # JSON artifacts are small: serializing once more costs little and
        # catches every value json cannot hold (a Path, an ndarray, a set).
        json.dumps(value, **params)

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

    def check_value(self, value: Any, **params: Any) -> None:
        _no_params(self.alias, "write", params)
        if not isinstance(value, str):
            raise TypeError(
                f"the 'text' handler stores str values, not {type(value).__name__}; "
                "use the 'bytes' handler for binary data"
            )

    def write(self, value: Any, buf: IO[bytes], **params: Any) -> None:
        self.check_value(value, **params)
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

    def check_value(self, value: Any, **params: Any) -> None:
        _no_params(self.alias, "write", params)
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"the 'bytes' handler stores bytes, bytearray or memoryview, "
                f"not {type(value).__name__}"
            )

    def write(self, value: Any, buf: IO[bytes], **params: Any) -> None:
        self.check_value(value, **params)
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


class NumpyHandler(ArtifactHandler):
    """A numpy array, stored in ``.npy`` format without pickle.

    dtype and shape round-trip exactly. Object arrays need pickle and are
    refused; use the ``pickle`` handler for them. The numpy major version is
    recorded and checked on load, since ``.npy`` files from one major version
    are not promised to load identically under another.

    Raises:
        ValueError: (write) an object array (``allow_pickle`` is off);
            (read) the bytes are not a ``.npy`` array.
        TypeError: ``allow_pickle`` was passed: this handler never pickles.
    """

    alias: ClassVar[str] = "numpy"
    suffix: ClassVar[str] = "npy"

    def environment(self) -> dict[str, str]:
        return {"numpy_version": numpy.__version__.split(".")[0]}

    def check_value(self, value: Any, **params: Any) -> None:
        self._refuse_pickle(params)
        if isinstance(value, numpy.ndarray) and value.dtype.hasobject:
            raise ValueError(
                "the 'numpy' handler cannot store object arrays (they need pickle); "
                "use the 'pickle' handler for them"
            )

    def write(self, value: Any, buf: IO[bytes], **params: Any) -> None:
        self._refuse_pickle(params)
        numpy.save(buf, value, allow_pickle=False, **params)

    def read(self, buf: IO[bytes], **params: Any) -> Any:
        self._refuse_pickle(params)
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
        or an existing directory plus ``fname``, whose subfolders are made) the
        content is copied in
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
        if os.path.isdir(dest) and not os.path.isdir(parent):
            os.makedirs(parent)  # the subfolders of a logged "weights/model.json"
        if not os.path.isdir(parent):
            raise FileNotFoundError(f"cannot write {target}: directory {parent} does not exist")
        write_atomically(target, stream)
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
    # fname must stay inside dest: "/"-separated plain components (a logged
    # "weights/model.json" is restored under dest/weights), no "." / "..".
    parts = fname.split("/") if isinstance(fname, str) else []
    if (
        not parts
        or any(p in ("", ".", "..") or os.path.basename(p) != p for p in parts)
        or (os.altsep is not None and os.altsep in fname)
        or "\\" in fname
        or "\x00" in fname
    ):
        raise ValueError(
            f"fname must be a relative file name ('model.json', 'weights/model.json'), "
            f"got {fname!r}"
        )
    inside = os.path.join(target, *parts)
    check_no_link_between(target, inside)
    return inside


#: Every built-in handler class, in the order they are documented.
BUILTIN_HANDLERS: tuple[type[ArtifactHandler], ...] = (
    JSONHandler,
    TextHandler,
    BytesHandler,
    PickleHandler,
    NumpyHandler,
    FileHandler,
    FolderHandler,
    SafetensorsHandler,
    DataFrameHandler,
)
