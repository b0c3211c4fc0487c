"""Finding artifact handlers by alias.

Lookup order: the built-in handlers, then handlers registered with
:func:`register_handler`, then entry points in the group
``scribestore.handlers`` (name = alias, value = ``module:Class``), then
lazyscribe's entry point group ``lazyscribe.artifact_type``, then the loaded
subclasses of lazyscribe's ``Artifact`` base (scribestore's or lazyscribe's
own). Entry points are listed once, on first need, and each is imported only
when its alias is first asked for. A third-party entry point cannot shadow a
built-in alias; lazyscribe's own entries (its json and pickle handlers) are
served by the built-ins of the same name.

A lazyscribe handler class, wherever it is found or registered, is used
through :func:`scribestore.artifacts.adapter.adapt`.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import threading
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from scribestore.artifacts.adapter import (
    adapt,
    find_subclass,
    is_lazyscribe_style,
    subclass_aliases,
)
from scribestore.artifacts.base import ArtifactHandler
from scribestore.artifacts.builtin import BUILTIN_HANDLERS
from scribestore.exception import HandlerRegistrationError, UnknownHandlerError

__all__ = [
    "ENTRY_POINT_GROUP",
    "LAZYSCRIBE_ENTRY_POINT_GROUP",
    "HandlerRegistrationError",
    "available_handlers",
    "forget_registrations",
    "get_handler",
    "register_handler",
]

ENTRY_POINT_GROUP = "scribestore.handlers"
#: lazyscribe's group: its handler plugins (lazyscribe-yaml, ...) register here.
LAZYSCRIBE_ENTRY_POINT_GROUP = "lazyscribe.artifact_type"
#: Where lazyscribe's own handlers live; the built-ins stand in for them.
_LAZYSCRIBE_OWN = "lazyscribe.artifacts."

logger = logging.getLogger(__name__)


_BUILTINS: dict[str, type[ArtifactHandler]] = {cls.alias: cls for cls in BUILTIN_HANDLERS}

# Reentrant: importing an entry point's module may call register_handler().
_lock = threading.RLock()
_registered: dict[str, type[ArtifactHandler]] = {}
_entry_points: dict[str, EntryPoint] | None = None
_loaded: dict[str, type[ArtifactHandler]] = {}
_instances: dict[str, ArtifactHandler] = {}


def get_handler(alias: str) -> ArtifactHandler:
    """The handler registered under ``alias`` (one cached instance per alias).

    Raises:
        UnknownHandlerError: no handler has this alias (or it is not a str);
            the message lists the available aliases.
        HandlerRegistrationError: the entry point for ``alias`` cannot be
            imported or does not name a usable ArtifactHandler subclass.
    """
    with _lock:
        if isinstance(alias, str) and alias in _instances:
            return _instances[alias]
        cls = _find_class(alias)
        instance = _instances[alias] = cls()
        return instance


def available_handlers() -> list[str]:
    """Every alias that :func:`get_handler` may accept, sorted.

    Entry points are listed without being imported, so an alias here can
    still fail to load.
    """
    with _lock:
        return sorted({*_BUILTINS, *_registered, *_discover(), *subclass_aliases()})


def register_handler(cls: type[Any]) -> type[Any]:
    """Register ``cls`` under ``cls.alias``; returns ``cls`` (usable as a decorator).

    ``cls`` is an :class:`ArtifactHandler` subclass or a lazyscribe handler
    class (used through :func:`scribestore.artifacts.adapter.adapt`).

    Registering the class already found under that alias again does nothing.

    Raises:
        HandlerRegistrationError: ``cls`` is not a concrete ArtifactHandler
            subclass with a non-empty str ``alias``, or the alias belongs to
            another class (a built-in, registered or entry-point handler).
    """
    original = cls
    cls = _validate(cls, f"register_handler({cls!r})")
    alias = cls.alias
    with _lock:
        existing = _BUILTINS.get(alias) or _registered.get(alias)
        if existing is None and alias in _discover():
            ep = _discover()[alias]
            with contextlib.suppress(HandlerRegistrationError):  # a broken plugin keeps its alias
                existing = _load_entry_point(alias)
            if existing is not cls:
                raise HandlerRegistrationError(
                    f"cannot register {_qualname(original)} as {alias!r}: the entry point "
                    f"{ep.value!r} (group {ep.group!r}) provides that alias; "
                    "choose another alias"
                )
            return original
        if existing is not None and existing is not cls:
            raise HandlerRegistrationError(
                f"cannot register {_qualname(original)} as {alias!r}: that alias belongs to "
                f"{_qualname(existing)}; choose another alias"
            )
        _registered[alias] = cls
        return original


def _find_class(alias: object) -> type[ArtifactHandler]:
    """The handler class for ``alias``, importing its entry point if needed."""
    if isinstance(alias, str):
        found = _BUILTINS.get(alias) or _registered.get(alias)
        if found is not None:
            return found
        if alias in _discover():
            return _load_entry_point(alias)
        subclass = find_subclass(alias)
        if subclass is not None:
            return adapt(subclass)
    names = ", ".join(sorted({*_BUILTINS, *_registered, *_discover(), *subclass_aliases()}))
    raise UnknownHandlerError(
        f"no artifact handler named {alias!r}; available: {names}. Install the package "
        f"that provides it (entry point group {ENTRY_POINT_GROUP!r}) or call "
        "scribestore.artifacts.register_handler()"
    )


def _discover() -> dict[str, EntryPoint]:
    """The entry points of the handler group, by name, listed once (under _lock)."""
    global _entry_points
    if _entry_points is None:
        found: dict[str, EntryPoint] = {}
        lazy = [
            ep
            for ep in entry_points(group=LAZYSCRIBE_ENTRY_POINT_GROUP)
            if not ep.value.startswith(_LAZYSCRIBE_OWN)
        ]
        for ep in [*entry_points(group=ENTRY_POINT_GROUP), *lazy]:
            if ep.name in found and ep.group != found[ep.name].group:
                continue  # scribestore's group comes first
            if ep.name in _BUILTINS:
                logger.warning(
                    "ignoring entry point %r = %r (group %r): it would shadow the built-in "
                    "%r handler",
                    ep.name,
                    ep.value,
                    ep.group,
                    ep.name,
                )
            elif ep.name in found and found[ep.name].value != ep.value:
                logger.warning(
                    "ignoring entry point %r = %r (group %r): %r already provides that alias",
                    ep.name,
                    ep.value,
                    ep.group,
                    found[ep.name].value,
                )
            else:
                found.setdefault(ep.name, ep)
        _entry_points = found
    return _entry_points


def _load_entry_point(alias: str) -> type[ArtifactHandler]:
    """Import the entry point named ``alias`` and check what it names (under _lock).

    Raises:
        HandlerRegistrationError: the import fails or the object is unusable.
    """
    if alias in _loaded:
        return _loaded[alias]
    ep = _discover()[alias]
    where = f"entry point {ep.name!r} = {ep.value!r} (group {ep.group!r})"
    try:
        obj = ep.load()
    except Exception as exc:
        raise HandlerRegistrationError(f"cannot import {where}: {exc}") from exc
    cls = _validate(obj, where)
    if cls.alias != alias:
        raise HandlerRegistrationError(
            f"{where} names {_qualname(cls)} whose alias is {cls.alias!r}; "
            "the entry point name must equal the handler's alias"
        )
    _loaded[alias] = cls
    return cls


def _validate(obj: object, where: str) -> type[ArtifactHandler]:
    """``obj``, checked to be a concrete handler class with an alias (a
    lazyscribe handler class is checked, then adapted).

    Raises:
        HandlerRegistrationError: it is not.
    """
    if is_lazyscribe_style(obj):
        if inspect.isabstract(obj) or not obj.alias:  # type: ignore[attr-defined]
            raise HandlerRegistrationError(
                f"{where}: {_qualname(obj)} is abstract or has an empty alias"  # type: ignore[arg-type]
            )
        return adapt(obj)  # type: ignore[arg-type]
    if not (inspect.isclass(obj) and issubclass(obj, ArtifactHandler)):
        raise HandlerRegistrationError(
            f"{where} must name a subclass of scribestore.artifacts.ArtifactHandler "
            f"or a lazyscribe Artifact handler class, got {obj!r}"
        )
    alias = getattr(obj, "alias", None)
    if not isinstance(alias, str) or not alias:
        raise HandlerRegistrationError(
            f"{where}: {_qualname(obj)} needs a non-empty str class attribute 'alias'"
        )
    if inspect.isabstract(obj):
        missing = ", ".join(sorted(getattr(obj, "__abstractmethods__", ())))
        raise HandlerRegistrationError(
            f"{where}: {_qualname(obj)} is abstract; it must implement {missing}"
        )
    return obj


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def forget_registrations() -> None:
    """Forget registered handlers, discovered entry points and cached instances.

    The next lookup discovers entry points again: for tests, and for a session
    that installed a handler package after its first lookup.
    """
    global _entry_points
    with _lock:
        _registered.clear()
        _loaded.clear()
        _instances.clear()
        _entry_points = None
