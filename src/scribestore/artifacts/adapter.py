"""Handlers written for lazyscribe, used as scribestore handlers.

A lazyscribe handler is a class with ``alias``, ``suffix``, ``binary`` and the
classmethods ``construct``, ``read`` and ``write``: a subclass of
:class:`scribestore.artifacts.base.Artifact`, of lazyscribe's own
``Artifact``, or a plugin listed under lazyscribe's entry point group. Such a
class is recognised by that shape, so lazyscribe need not be installed for
scribestore to use one (a plugin brings it along).

:func:`adapt` wraps the class in an :class:`ArtifactHandler`:

- ``write`` and ``read`` go to the class's; a class that is not ``binary``
  is given text buffers (lazyscribe opens its files in text mode), held in
  memory and stored as UTF-8;
- the fields the class adds to lazyscribe's base (a package version, say) are
  recorded as the version's environment, and compared, as lazyscribe
  compares them, by loads with ``validate=True``;
- a class may say ``runs_code_on_load``; one that does not is taken to run
  code when it loads (it may be built on pickle, as joblib is), so stores
  that do not trust pickles refuse it.
"""

from __future__ import annotations

import inspect
import io
import json
import sys
import threading
from typing import IO, TYPE_CHECKING, Any, ClassVar

import attrs

from scribestore.artifacts.base import Artifact, ArtifactHandler

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

__all__ = [
    "LazyscribeHandler",
    "adapt",
    "environment_text",
    "find_subclass",
    "is_lazyscribe_style",
    "subclass_aliases",
]

#: The fields of lazyscribe's ``Artifact`` base: the version, not its environment.
BASE_FIELDS = frozenset(
    {"name", "fname", "value", "writer_kwargs", "created_at", "expiry", "version", "dirty"}
)
#: Where lazyscribe's base class lives when lazyscribe is imported.
LAZYSCRIBE_BASE_MODULE = "lazyscribe.artifacts.base"

_lock = threading.Lock()
_adapted: dict[type, type[LazyscribeHandler]] = {}


def is_lazyscribe_style(obj: object) -> bool:
    """Whether ``obj`` is a class shaped as a lazyscribe handler."""
    return (
        inspect.isclass(obj)
        and not issubclass(obj, ArtifactHandler)
        and all(callable(getattr(obj, m, None)) for m in ("construct", "read", "write"))
        and isinstance(getattr(obj, "alias", None), str)
    )


def adapt(cls: type) -> type[LazyscribeHandler]:
    """The :class:`ArtifactHandler` class over the lazyscribe handler ``cls``
    (one per class, made on first need)."""
    with _lock:
        found = _adapted.get(cls)
        if found is None:
            runs_code = getattr(cls, "runs_code_on_load", True)
            found = type(
                f"{cls.__name__}Handler",
                (LazyscribeHandler,),
                {
                    "__module__": __name__,
                    "__doc__": f"scribestore's handler over {cls.__module__}.{cls.__qualname__}.",
                    "artifact_class": cls,
                    "alias": cls.alias,  # type: ignore[attr-defined]
                    "suffix": getattr(cls, "suffix", "bin"),
                    "binary": bool(getattr(cls, "binary", True)),
                    "output_only": bool(getattr(cls, "output_only", False)),
                    "runs_code_on_load": bool(runs_code),
                },
            )
            _adapted[cls] = found
        return found


def find_subclass(alias: str) -> type | None:
    """A loaded subclass of scribestore's or lazyscribe's ``Artifact`` named ``alias``."""
    for cls in _subclasses():
        if getattr(cls, "alias", None) == alias and not inspect.isabstract(cls):
            return cls
    return None


def subclass_aliases() -> set[str]:
    """The aliases of the loaded subclasses of either ``Artifact`` base."""
    return {a for cls in _subclasses() if isinstance(a := getattr(cls, "alias", None), str)}


def _subclasses() -> Iterator[type]:
    bases: list[type] = [Artifact]
    lazy_base = getattr(sys.modules.get(LAZYSCRIBE_BASE_MODULE), "Artifact", None)
    if inspect.isclass(lazy_base):
        bases.append(lazy_base)
    seen: set[type] = set()
    while bases:
        subs: list[type] = bases.pop().__subclasses__()
        for sub in subs:
            if sub not in seen:
                seen.add(sub)
                bases.append(sub)
                yield sub


def environment_text(value: Any) -> str:
    """A handler field as recorded in a version's environment: a string as it
    is, anything else as canonical JSON (so the same value always records the
    same text, whether computed here or read from a lazyscribe manifest)."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


class LazyscribeHandler(ArtifactHandler):
    """An :class:`ArtifactHandler` over a lazyscribe handler class.

    Attributes:
        artifact_class: the lazyscribe handler class.
    """

    artifact_class: ClassVar[type]

    def construct(self, name: str, **kwargs: Any) -> Any:
        """An instance of the lazyscribe class (its ``construct``)."""
        return self.artifact_class.construct(name=name, **kwargs)  # type: ignore[attr-defined]

    def _own_fields(self) -> list[attrs.Attribute[Any]]:
        if not attrs.has(self.artifact_class):
            return []
        return [f for f in attrs.fields(self.artifact_class) if f.name not in BASE_FIELDS]

    def _recorded(self, instance: Any, *, compared_only: bool) -> dict[str, str]:
        return {
            f.name: environment_text(getattr(instance, f.name))
            for f in self._own_fields()
            if f.eq or not compared_only
        }

    def environment_for(self, value: Any, **params: Any) -> dict[str, str]:
        """The class's own fields as ``construct`` finds them for ``value``.

        Raises:
            Whatever the class's ``construct`` raises for ``value``.
        """
        instance = self.construct(self.alias, value=value, writer_kwargs=dict(params))
        return self._recorded(instance, compared_only=False)

    def check_environment(self, recorded: Mapping[str, str]) -> str | None:
        """Compare the recorded fields with what ``construct`` finds now, given the
        recorded fields it accepts (lazyscribe's check): None when they match."""
        accepted = inspect.signature(self.artifact_class.construct).parameters  # type: ignore[attr-defined]
        given = {k: v for k, v in recorded.items() if k in accepted and k not in BASE_FIELDS}
        try:
            current = self._recorded(
                self.construct(self.alias, dirty=False, **given), compared_only=True
            )
        except Exception as exc:
            return f"cannot describe this environment for handler {self.alias!r}: {exc}"
        for key, now in current.items():
            if key in recorded and recorded[key] != now:
                return f"written with {key}={recorded[key]}, this environment has {key}={now}"
        return None

    def write(self, value: Any, buf: IO[bytes], **params: Any) -> None:
        if self.binary:
            self.artifact_class.write(value, buf, **params)  # type: ignore[attr-defined]
            return
        # Text handlers hold small values (YAML, JSON): held as one string.
        text = io.StringIO(newline="")
        self.artifact_class.write(value, text, **params)  # type: ignore[attr-defined]
        buf.write(text.getvalue().encode("utf-8"))

    def read(self, buf: IO[bytes], **params: Any) -> Any:
        if self.binary:
            return self.artifact_class.read(buf, **params)  # type: ignore[attr-defined]
        text = io.StringIO(buf.read().decode("utf-8"), newline=None)
        return self.artifact_class.read(text, **params)  # type: ignore[attr-defined]
