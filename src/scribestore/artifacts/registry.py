"""Finding artifact handlers by alias.

Lookup order: the built-in handlers, then handlers registered with
:func:`register_handler`, then entry points in the group
``scribestore.handlers`` (name = alias, value = ``module:Class``). Entry points
are listed once, on first need, and each is imported only when its alias is
first asked for. A third-party entry point cannot shadow a built-in alias.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import threading
from importlib.metadata import EntryPoint, entry_points

from scribestore.artifacts.base import ArtifactHandler
from scribestore.artifacts.builtin import BUILTIN_HANDLERS
from scribestore.exception import HandlerRegistrationError, UnknownHandlerError

__all__ = [
    "ENTRY_POINT_GROUP",
    "HandlerRegistrationError",
    "available_handlers",
    "forget_registrations",
    "get_handler",
    "register_handler",
]

ENTRY_POINT_GROUP = "scribestore.handlers"

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
        return sorted({*_BUILTINS, *_registered, *_discover()})


def register_handler(cls: type[ArtifactHandler]) -> type[ArtifactHandler]:
    """Register ``cls`` under ``cls.alias``; returns ``cls`` (usable as a decorator).

    Registering the class already found under that alias again does nothing.

    Raises:
        HandlerRegistrationError: ``cls`` is not a concrete ArtifactHandler
            subclass with a non-empty str ``alias``, or the alias belongs to
            another class (a built-in, registered or entry-point handler).
    """
    _validate(cls, f"register_handler({cls!r})")
    alias = cls.alias
    with _lock:
        existing = _BUILTINS.get(alias) or _registered.get(alias)
        if existing is None and alias in _discover():
            ep = _discover()[alias]
            with contextlib.suppress(HandlerRegistrationError):  # a broken plugin keeps its alias
                existing = _load_entry_point(alias)
            if existing is not cls:
                raise HandlerRegistrationError(
                    f"cannot register {_qualname(cls)} as {alias!r}: the entry point "
                    f"{ep.value!r} (group {ENTRY_POINT_GROUP!r}) provides that alias; "
                    "choose another alias"
                )
            return cls
        if existing is not None and existing is not cls:
            raise HandlerRegistrationError(
                f"cannot register {_qualname(cls)} as {alias!r}: that alias belongs to "
                f"{_qualname(existing)}; choose another alias"
            )
        _registered[alias] = cls
        return cls


def _find_class(alias: object) -> type[ArtifactHandler]:
    """The handler class for ``alias``, importing its entry point if needed."""
    if isinstance(alias, str):
        found = _BUILTINS.get(alias) or _registered.get(alias)
        if found is not None:
            return found
        if alias in _discover():
            return _load_entry_point(alias)
    names = ", ".join(sorted({*_BUILTINS, *_registered, *_discover()}))
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
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in _BUILTINS:
                logger.warning(
                    "ignoring entry point %r = %r (group %r): it would shadow the built-in "
                    "%r handler",
                    ep.name,
                    ep.value,
                    ENTRY_POINT_GROUP,
                    ep.name,
                )
            elif ep.name in found and found[ep.name].value != ep.value:
                logger.warning(
                    "ignoring entry point %r = %r (group %r): %r already provides that alias",
                    ep.name,
                    ep.value,
                    ENTRY_POINT_GROUP,
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
    where = f"entry point {ep.name!r} = {ep.value!r} (group {ENTRY_POINT_GROUP!r})"
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
    """``obj``, checked to be a concrete handler class with an alias.

    Raises:
        HandlerRegistrationError: it is not.
    """
    if not (inspect.isclass(obj) and issubclass(obj, ArtifactHandler)):
        raise HandlerRegistrationError(
            f"{where} must name a subclass of scribestore.artifacts.ArtifactHandler, got {obj!r}"
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
