"""lazyscribe's pickle handler class, under its module name.

Repositories and experiments store ``handler="pickle"`` through the built-in
:class:`scribestore.artifacts.builtin.PickleHandler`; this class is for code
that uses lazyscribe's handler class itself or subclasses it.
"""

from __future__ import annotations

import datetime as dt
import pickle
import sys
from typing import Any, ClassVar

import attrs

from scribestore.artifacts.base import Artifact
from scribestore.artifacts.naming import artifact_fields

__all__ = ["PickleArtifact"]


@attrs.define
class PickleArtifact(Artifact):
    """Any picklable value. Reading runs code chosen by whoever wrote the bytes.

    Attributes:
        python_version: ``major.minor`` of the writing interpreter, compared on
            loads with ``validate=True``.
    """

    alias: ClassVar[str] = "pickle"
    suffix: ClassVar[str] = "pkl"
    binary: ClassVar[bool] = True
    output_only: ClassVar[bool] = False
    runs_code_on_load: ClassVar[bool] = True

    python_version: str = attrs.field()

    @classmethod
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
    ) -> PickleArtifact:
        """A pickle artifact; ``python_version`` defaults to this interpreter's."""
        fields = artifact_fields(
            name,
            cls.suffix,
            value=value,
            fname=fname,
            created_at=created_at,
            expiry=expiry,
            writer_kwargs=writer_kwargs,
            version=version,
            dirty=dirty,
        )
        python_version = kwargs.get("python_version") or "{}.{}".format(*sys.version_info)
        return cls(**fields, python_version=python_version)

    @classmethod
    def read(cls, buf: Any, **kwargs: Any) -> Any:
        """The value unpickled from ``buf`` (trusted bytes only)."""
        return pickle.load(buf, **kwargs)

    @classmethod
    def write(cls, obj: Any, buf: Any, **kwargs: Any) -> None:
        """Pickle ``obj`` into ``buf``."""
        pickle.dump(obj, buf, **kwargs)
