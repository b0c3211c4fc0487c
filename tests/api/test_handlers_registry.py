"""Resolving handler aliases: built-ins, registration and entry points."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import IO, Any, ClassVar

import pytest

from scribestore import ScribeStoreError, UnknownHandlerError
from scribestore.artifacts import (
    ArtifactHandler,
    HandlerRegistrationError,
    available_handlers,
    get_handler,
    register_handler,
    registry,
)
from scribestore.artifacts.builtin import JSONHandler

BUILTINS = [
    "bytes",
    "dataframe",
    "file",
    "folder",
    "json",
    "numpy",
    "pickle",
    "safetensors",
    "text",
]


class ToyHandler(ArtifactHandler):
    alias: ClassVar[str] = "toy"
    suffix: ClassVar[str] = "toy"

    def write(self, value: Any, buf: IO[bytes], **params: Any) -> None:
        buf.write(repr(value).encode())

    def read(self, buf: IO[bytes], **params: Any) -> Any:
        return buf.read().decode()


class OtherToyHandler(ToyHandler):
    pass


class FakeEntryPoint:
    """Stands in for importlib.metadata.EntryPoint; counts loads."""

    def __init__(
        self,
        name: str,
        obj: object,
        value: str = "toypkg.handlers:Toy",
        group: str = registry.ENTRY_POINT_GROUP,
    ) -> None:
        self.name = name
        self.value = value
        self.group = group
        self.obj = obj
        self.loads = 0

    def load(self) -> object:
        self.loads += 1
        if isinstance(self.obj, BaseException):
            raise self.obj
        return self.obj


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # No real plugins installed in the test environment, and no handler
    # classes other test modules define, leak in.
    monkeypatch.setattr(registry, "entry_points", lambda group: [])
    monkeypatch.setattr(registry, "find_subclass", lambda alias: None)
    monkeypatch.setattr(registry, "subclass_aliases", set)
    registry.forget_registrations()
    yield
    registry.forget_registrations()


def use_entry_points(monkeypatch: pytest.MonkeyPatch, *eps: FakeEntryPoint) -> list[str]:
    groups: list[str] = []

    def fake(group: str) -> list[FakeEntryPoint]:
        groups.append(group)
        return [ep for ep in eps if ep.group == group]

    monkeypatch.setattr(registry, "entry_points", fake)
    registry.forget_registrations()
    return groups


# --- built-ins and unknown aliases ---------------------------------------------------


def test_builtins_are_available_and_cached() -> None:
    assert available_handlers() == BUILTINS
    for alias in BUILTINS:
        handler = get_handler(alias)
        assert isinstance(handler, ArtifactHandler)
        assert handler.alias == alias
        assert get_handler(alias) is handler


@pytest.mark.parametrize("alias", ["nope", "JSON", "", None, 3])
def test_unknown_alias_lists_available(alias) -> None:
    with pytest.raises(UnknownHandlerError) as info:
        get_handler(alias)
    err = info.value
    assert isinstance(err, ValueError)
    assert isinstance(err, ScribeStoreError)
    assert repr(alias) in str(err)
    assert "json, numpy, pickle, safetensors, text" in str(err)


# --- entry points --------------------------------------------------------------------


def test_entry_point_is_listed_lazily_and_loaded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    ep = FakeEntryPoint("toy", ToyHandler)
    groups = use_entry_points(monkeypatch, ep)
    assert available_handlers() == sorted([*BUILTINS, "toy"])
    assert groups == ["lazyscribe.artifact_type", "scribestore.handlers"]
    assert ep.loads == 0
    handler = get_handler("toy")
    assert isinstance(handler, ToyHandler)
    assert get_handler("toy") is handler
    available_handlers()
    assert ep.loads == 1
    assert groups == ["lazyscribe.artifact_type", "scribestore.handlers"]  # cached too
    buf = io.BytesIO()
    handler.write([1], buf)
    assert handler.read(io.BytesIO(buf.getvalue())) == "[1]"


def test_unknown_alias_lists_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    use_entry_points(monkeypatch, FakeEntryPoint("toy", ToyHandler))
    with pytest.raises(UnknownHandlerError, match="text, toy"):
        get_handler("nope")


@pytest.mark.parametrize(
    "obj",
    [object(), len, int, JSONHandler(), ArtifactHandler],
    ids=["object", "function", "non-handler-class", "instance", "abstract"],
)
def test_bad_entry_point_object_is_named(monkeypatch: pytest.MonkeyPatch, obj) -> None:
    use_entry_points(monkeypatch, FakeEntryPoint("broken", obj, "badpkg:thing"))
    assert "broken" in available_handlers()
    with pytest.raises(HandlerRegistrationError) as info:
        get_handler("broken")
    assert isinstance(info.value, ScribeStoreError)
    assert isinstance(info.value, ValueError)
    assert "'broken'" in str(info.value)
    assert "badpkg:thing" in str(info.value)


def test_entry_point_import_failure_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    use_entry_points(monkeypatch, FakeEntryPoint("toy", ImportError("no module named toypkg")))
    with pytest.raises(HandlerRegistrationError, match=r"'toy'.*no module named toypkg") as info:
        get_handler("toy")
    assert isinstance(info.value.__cause__, ImportError)


def test_entry_point_alias_must_match_name(monkeypatch: pytest.MonkeyPatch) -> None:
    use_entry_points(monkeypatch, FakeEntryPoint("other", ToyHandler))
    with pytest.raises(HandlerRegistrationError, match="alias is 'toy'"):
        get_handler("other")


def test_entry_point_cannot_shadow_builtin(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class EvilJSON(JSONHandler):
        pass

    ep = FakeEntryPoint("json", EvilJSON, "evil:JSON")
    use_entry_points(monkeypatch, ep)
    with caplog.at_level(logging.WARNING, logger=registry.__name__):
        assert available_handlers() == BUILTINS
    assert type(get_handler("json")) is JSONHandler
    assert ep.loads == 0
    assert "shadow the built-in 'json'" in caplog.text
    assert "evil:JSON" in caplog.text


# --- register_handler ----------------------------------------------------------------


def test_register_handler_and_idempotence() -> None:
    assert register_handler(ToyHandler) is ToyHandler
    assert register_handler(ToyHandler) is ToyHandler
    assert "toy" in available_handlers()
    assert isinstance(get_handler("toy"), ToyHandler)


def test_register_handler_refuses_another_class_for_an_alias() -> None:
    register_handler(ToyHandler)
    with pytest.raises(HandlerRegistrationError, match=r"belongs to .*ToyHandler") as info:
        register_handler(OtherToyHandler)
    assert isinstance(info.value, ValueError)
    assert type(get_handler("toy")) is ToyHandler


def test_register_handler_refuses_builtin_alias() -> None:
    class MyJSON(JSONHandler):
        pass

    register_handler(JSONHandler)  # the built-in itself: a no-op
    with pytest.raises(HandlerRegistrationError, match="JSONHandler"):
        register_handler(MyJSON)


def test_register_handler_refuses_entry_point_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    use_entry_points(monkeypatch, FakeEntryPoint("toy", ToyHandler))
    assert register_handler(ToyHandler) is ToyHandler  # same class: fine
    with pytest.raises(HandlerRegistrationError, match=r"toypkg\.handlers:Toy"):
        register_handler(OtherToyHandler)


def test_register_handler_validates_the_class() -> None:
    class NoAlias(ArtifactHandler):
        suffix: ClassVar[str] = "x"

        def write(self, value: Any, buf: IO[bytes], **params: Any) -> None: ...

        def read(self, buf: IO[bytes], **params: Any) -> Any: ...

    class Abstract(ArtifactHandler):
        alias: ClassVar[str] = "abstract"
        suffix: ClassVar[str] = "x"

    with pytest.raises(HandlerRegistrationError, match="alias"):
        register_handler(NoAlias)
    with pytest.raises(HandlerRegistrationError, match=r"abstract.*read, write"):
        register_handler(Abstract)
    with pytest.raises(HandlerRegistrationError, match="subclass"):
        register_handler(int)  # type: ignore[arg-type]
    assert available_handlers() == BUILTINS
