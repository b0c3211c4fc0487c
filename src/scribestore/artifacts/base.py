"""The artifact handler contract: how a value becomes bytes and back.

A handler turns a Python value into the bytes stored for an artifact version
(``write``) and those bytes back into a value (``read``). The repository hashes
and stores the bytes; ``read`` is only ever given bytes whose BLAKE3 digest has
already been verified.

Third-party handlers subclass :class:`ArtifactHandler` and register under the
entry point group ``scribestore.handlers`` (name = alias, value =
``module:Class``).

:class:`Artifact` is lazyscribe's handler base, under its name: handlers
written for lazyscribe (subclasses of this class or of lazyscribe's own, and
the plugins lazyscribe finds under the entry point group
``lazyscribe.artifact_type``) are used through an adapter
(:mod:`scribestore.artifacts.adapter`).
"""

from __future__ import annotations

import abc
import datetime as dt
import io
import os
from typing import IO, TYPE_CHECKING, Any, ClassVar

import attrs

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["Artifact", "ArtifactHandler"]


class ArtifactHandler(abc.ABC):
    """Base class of artifact handlers.

    Class attributes:
        alias: the name passed as ``handler=`` to ``log_artifact``.
        suffix: file extension (without dot) for exported files.
        binary: False when the bytes are UTF-8 text that can be diffed.
        streams_path: True for handlers whose value is a local file path that
            is stored by streaming the file (the ``file`` handler); such
            handlers implement :meth:`source_path` and :meth:`load_stream`
            instead of ``write``/``read``.
        runs_code_on_load: True for handlers whose ``read`` can execute code
            chosen by whoever wrote the bytes (``pickle``, and any handler
            built on pickle, such as joblib or cloudpickle formats). Stores
            opened with ``trust_pickle=False`` refuse to load through them.
        output_only: True when ``read`` does not give back the logged object
            (lazyscribe's meaning); loads then warn with a ``UserWarning``.
    """

    alias: ClassVar[str]
    suffix: ClassVar[str]
    binary: ClassVar[bool] = True
    streams_path: ClassVar[bool] = False
    runs_code_on_load: ClassVar[bool] = False
    output_only: ClassVar[bool] = False

    def environment(self) -> dict[str, str]:
        """Facts about the writing environment to record with each version.

        Checked by :meth:`check_environment` when the version is loaded with
        ``validate=True``. Default: nothing.
        """
        return {}

    def environment_for(self, value: Any, **params: Any) -> dict[str, str]:
        """The environment to record for a version holding ``value``.

        For handlers whose recorded facts depend on the value (the package of
        a model, say). Default: :meth:`environment`.

        Raises:
            Any exception saying why the facts cannot be found; the value is
            then refused when it is logged.
        """
        return self.environment()

    def check_environment(self, recorded: Mapping[str, str]) -> str | None:
        """A message describing why ``recorded`` does not match this
        environment, or None when loading is safe. Default: compare
        :meth:`environment` key by key for the keys that were recorded."""
        current = self.environment()
        for key, value in recorded.items():
            if key in current and current[key] != value:
                return f"written with {key}={value}, this environment has {key}={current[key]}"
        return None

    def check_value(self, value: Any, **params: Any) -> None:
        """Refuse, when it is logged, a value that :meth:`write` could not store.

        Called by ``log_artifact`` with the writer params, so a bad value is
        refused before it is queued instead of failing every later save.
        Cheap checks only; default: nothing (the value is checked at save).

        Raises:
            Any exception saying why ``value`` cannot be stored.
        """
        return None

    @abc.abstractmethod
    def write(self, value: Any, buf: IO[bytes], **params: Any) -> None:
        """Serialize ``value`` into the binary buffer ``buf``.

        Raises:
            Any exception when ``value`` cannot be serialized; the repository
            reports it as a SaveError and writes nothing for the version.
        """

    @abc.abstractmethod
    def read(self, buf: IO[bytes], **params: Any) -> Any:
        """Deserialize a value from the verified bytes in ``buf``."""

    def source_path(self, value: Any) -> str:
        """For ``streams_path`` handlers: the local file holding ``value``.

        Raises:
            TypeError or FileNotFoundError: ``value`` does not name a file.
        """
        raise NotImplementedError(f"handler {self.alias!r} does not stream files")

    def load_stream(self, stream: IO[bytes], **params: Any) -> Any:
        """For ``streams_path`` handlers: the loaded value, given a stream of
        the stored bytes that verifies as it is read."""
        raise NotImplementedError(f"handler {self.alias!r} does not stream files")

    def open_source(self, path: str) -> IO[bytes] | None:
        """For ``streams_path`` handlers: a stream of the bytes to store for the
        path :meth:`source_path` gave, or None (default) to store that file."""
        return None

    def source_size(self, path: str) -> int | None:
        """For ``streams_path`` handlers: how many bytes storing ``path`` takes
        (for progress bars), or None when unknown. Default: the file's size."""
        try:
            return os.stat(path).st_size
        except OSError:
            return None


@attrs.define
class Artifact(metaclass=abc.ABCMeta):
    """lazyscribe's handler base: one artifact version, with its handler's
    ``construct``, ``read`` and ``write``.

    Subclass it (decorated with ``attrs.define``) exactly as for lazyscribe;
    the subclass is found by its ``alias``. Fields a subclass adds (such as a
    package version) are recorded with each version and compared on loads
    with ``validate=True``; declare one with ``attrs.field(eq=False)`` to
    record it without comparing it.

    Class attributes: ``alias``, ``suffix``, ``binary`` (whether ``read`` and
    ``write`` take binary or text buffers) and ``output_only``.
    """

    alias: ClassVar[str]
    suffix: ClassVar[str]
    binary: ClassVar[bool]
    output_only: ClassVar[bool] = False

    name: str = attrs.field(eq=False)
    fname: str = attrs.field(eq=False)
    value: Any = attrs.field(eq=False)
    writer_kwargs: dict[str, Any] = attrs.field(eq=False)
    created_at: dt.datetime = attrs.field(eq=False)
    expiry: dt.datetime | None = attrs.field(eq=False)
    version: int = attrs.field(eq=False)
    dirty: bool = attrs.field(eq=False)

    @classmethod
    @abc.abstractmethod
    def construct(
        cls,
        name: str,
        value: Any = None,
        fname: str | None = None,
        created_at: dt.datetime | None = None,
        expiry: dt.datetime | None = None,
        writer_kwargs: dict[str, Any] | None = None,
        version: int = 0,
        dirty: bool = True,
        **kwargs: Any,
    ) -> Artifact:
        """A new artifact; handler fields not given describe this environment."""

    @classmethod
    @abc.abstractmethod
    def read(cls, buf: Any, **kwargs: Any) -> Any:
        """The value held in ``buf`` (binary or text, as ``binary`` says)."""

    @classmethod
    @abc.abstractmethod
    def write(cls, obj: Any, buf: Any, **kwargs: Any) -> None:
        """Write ``obj`` into ``buf`` (binary or text, as ``binary`` says)."""

    def __getstate__(self) -> dict[str, Any]:
        """The fields, with the value as its written form (so any value pickles)."""
        state = attrs.asdict(self, recurse=False)
        if state.get("value") is not None:
            buf: io.BytesIO | io.StringIO = io.BytesIO() if self.binary else io.StringIO()
            self.write(state["value"], buf, **self.writer_kwargs)
            state["value"] = buf.getvalue()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore the fields, reading the value back from its written form."""
        for key, value in state.items():
            if key == "value" and value is not None:
                buf = io.BytesIO(value) if self.binary else io.StringIO(value)
                value = self.read(buf)
            object.__setattr__(self, key, value)
