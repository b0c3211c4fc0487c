"""The artifact handler contract: how a value becomes bytes and back.

A handler turns a Python value into the bytes stored for an artifact version
(``write``) and those bytes back into a value (``read``). The repository hashes
and stores the bytes; ``read`` is only ever given bytes whose BLAKE3 digest has
already been verified.

Third-party handlers subclass :class:`ArtifactHandler` and register under the
entry point group ``scribestore.handlers`` (name = alias, value =
``module:Class``).
"""

from __future__ import annotations

import abc
from typing import IO, TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["ArtifactHandler"]


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
    """

    alias: ClassVar[str]
    suffix: ClassVar[str]
    binary: ClassVar[bool] = True
    streams_path: ClassVar[bool] = False
    runs_code_on_load: ClassVar[bool] = False

    def environment(self) -> dict[str, str]:
        """Facts about the writing environment to record with each version.

        Checked by :meth:`check_environment` when the version is loaded with
        ``validate=True``. Default: nothing.
        """
        return {}

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
