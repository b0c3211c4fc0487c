"""Artifact versions as lazyscribe's artifact objects.

lazyscribe code reads an experiment's or repository's artifacts as instances
of their handler classes (``exp.artifacts[0].fname``, ``.value``, ``.dirty``,
a handler's own fields such as ``python_version``). :func:`artifact_class`
gives the class for a handler alias and :func:`build` an instance for one
version:

- a handler written for lazyscribe (a plugin, a subclass of either
  ``Artifact``) gives its own class;
- ``json`` and ``pickle`` give :class:`~scribestore.artifacts.json.JSONArtifact`
  and :class:`~scribestore.artifacts.pickle.PickleArtifact`;
- every other scribestore handler gives a class made for it, a subclass of
  :class:`HandlerArtifact` whose ``read`` and ``write`` are the handler's and
  whose ``environment`` field holds what the handler recorded.

The bytes, their hash and size stay in the store; an object describes the
version and, while it is unsaved, holds its value.
"""

from __future__ import annotations

import datetime as dt
import inspect
import io
import json
import threading
from typing import Any, ClassVar

import attrs

from scribestore.artifacts.adapter import BASE_FIELDS, LazyscribeHandler, environment_text
from scribestore.artifacts.base import Artifact, ArtifactHandler
from scribestore.artifacts.json import JSONArtifact
from scribestore.artifacts.naming import artifact_fields
from scribestore.artifacts.pickle import PickleArtifact
from scribestore.artifacts.registry import get_handler

__all__ = ["HandlerArtifact", "artifact_class", "build", "recorded_environment"]

_LAZYSCRIBE_CLASSES: dict[str, type[Artifact]] = {"json": JSONArtifact, "pickle": PickleArtifact}

_lock = threading.Lock()
_made: dict[type[ArtifactHandler], type[HandlerArtifact]] = {}


@attrs.define
class HandlerArtifact(Artifact):
    """The artifact object of a version stored by a scribestore handler.

    Attributes:
        environment: what the handler recorded where the bytes were written
            (compared on loads with ``validate=True``).
    """

    handler_class: ClassVar[type[ArtifactHandler]]
    environment: dict[str, str] = attrs.field(factory=dict, kw_only=True)

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
    ) -> HandlerArtifact:
        """An artifact of this handler; ``environment`` defaults to this one's."""
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
        environment = kwargs.get("environment")
        if environment is None:
            environment = cls.handler_class().environment()
        return cls(**fields, environment=dict(environment))

    @classmethod
    def read(cls, buf: Any, **kwargs: Any) -> Any:
        """The value in ``buf``, read by the handler."""
        if isinstance(buf, io.TextIOBase):
            buf = io.BytesIO(buf.read().encode("utf-8"))
        return cls.handler_class().read(buf, **kwargs)

    @classmethod
    def write(cls, obj: Any, buf: Any, **kwargs: Any) -> None:
        """Write ``obj`` into ``buf`` as the handler writes it."""
        if isinstance(buf, io.TextIOBase):
            raw = io.BytesIO()
            cls.handler_class().write(obj, raw, **kwargs)
            buf.write(raw.getvalue().decode("utf-8"))
            return
        cls.handler_class().write(obj, buf, **kwargs)


def artifact_class(alias: str) -> type[Any]:
    """The lazyscribe artifact class of the handler ``alias``.

    Raises:
        UnknownHandlerError: no handler has this alias.
        HandlerRegistrationError: its plugin cannot be loaded.
    """
    handler = get_handler(alias)
    if isinstance(handler, LazyscribeHandler):
        return handler.artifact_class
    if alias in _LAZYSCRIBE_CLASSES:
        return _LAZYSCRIBE_CLASSES[alias]
    return _stored_class(type(handler))


def _stored_class(handler_cls: type[ArtifactHandler]) -> type[HandlerArtifact]:
    with _lock:
        made = _made.get(handler_cls)
        if made is None:
            name = "".join(p.capitalize() for p in handler_cls.alias.replace("-", "_").split("_"))
            made = attrs.define(
                type(
                    f"{name}Artifact",
                    (HandlerArtifact,),
                    {
                        "__module__": __name__,
                        "__doc__": f"Artifact object of handler {handler_cls.alias!r}.",
                        "alias": handler_cls.alias,
                        "suffix": handler_cls.suffix,
                        "binary": handler_cls.binary,
                        "output_only": handler_cls.output_only,
                        "handler_class": handler_cls,
                    },
                )
            )
            _made[handler_cls] = made
        return made


def build(
    alias: str,
    *,
    name: str,
    value: Any,
    fname: str,
    created_at: dt.datetime,
    expiry: dt.datetime | None,
    params: dict[str, Any],
    version: int,
    dirty: bool,
    environment: dict[str, str],
) -> Any:
    """The artifact object of one version (timestamps as naive UTC, as in lazyscribe).

    The handler's own fields come from ``environment``, as recorded.

    Raises:
        UnknownHandlerError, HandlerRegistrationError: as :func:`artifact_class`.
    """
    cls = artifact_class(alias)
    base = {
        "name": name,
        "value": value,
        "fname": fname,
        "created_at": _naive(created_at),
        "expiry": None if expiry is None else _naive(expiry),
        "writer_kwargs": dict(params),
        "version": version,
        "dirty": dirty,
    }
    if issubclass(cls, HandlerArtifact):
        return cls.construct(**base, environment=environment)
    own = _own_fields(cls)
    recorded = {f.name: _decoded(f, environment[f.name]) for f in own if f.name in environment}
    accepted = inspect.signature(cls.construct).parameters
    given = {k: v for k, v in recorded.items() if k in accepted}
    obj = cls.construct(**base, **given)
    for key, field_value in recorded.items():
        if key not in given:
            object.__setattr__(obj, key, field_value)
    return obj


def recorded_environment(obj: Any) -> dict[str, str]:
    """The environment an artifact object says its version was written in."""
    if isinstance(obj, HandlerArtifact):
        return dict(obj.environment)
    return {f.name: environment_text(getattr(obj, f.name)) for f in _own_fields(type(obj))}


def _own_fields(cls: type) -> list[attrs.Attribute[Any]]:
    if not attrs.has(cls):
        return []
    return [f for f in attrs.fields(cls) if f.name not in BASE_FIELDS]


def _decoded(field: attrs.Attribute[Any], text: str) -> Any:
    """A recorded field back as its value: text for ``str`` fields, else JSON."""
    if field.type in (str, "str"):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _naive(when: dt.datetime) -> dt.datetime:
    if when.tzinfo is None:
        return when
    return when.astimezone(dt.timezone.utc).replace(tzinfo=None)
