"""lazyscribe's JSON handler class, under its module name.

Repositories and experiments store ``handler="json"`` through the built-in
:class:`scribestore.artifacts.builtin.JSONHandler`; this class is for code
that uses lazyscribe's handler class itself (``JSONArtifact.construct``,
``.read``, ``.write``) or subclasses it.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, ClassVar

import attrs

from scribestore.artifacts.base import Artifact
from scribestore.artifacts.naming import artifact_fields

__all__ = ["JSONArtifact"]


@attrs.define
class JSONArtifact(Artifact):
    """A JSON-serializable value, written as JSON text."""

    alias: ClassVar[str] = "json"
    suffix: ClassVar[str] = "json"
    binary: ClassVar[bool] = False
    output_only: ClassVar[bool] = False

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
    ) -> JSONArtifact:
        """A JSON artifact; ``fname`` defaults to the slugged name and time."""
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
        return cls(**fields)

    @classmethod
    def read(cls, buf: Any, **kwargs: Any) -> Any:
        """The value in the text buffer ``buf`` (kwargs go to :func:`json.load`)."""
        return json.load(buf, **kwargs)

    @classmethod
    def write(cls, obj: Any, buf: Any, **kwargs: Any) -> None:
        """Write ``obj`` to the text buffer ``buf`` (kwargs go to :func:`json.dump`).

        Raises:
            TypeError: ``obj`` is not JSON-serializable.
        """
        json.dump(obj, buf, **kwargs)
