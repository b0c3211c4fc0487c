"""Stores written by lazyscribe 2.2.2 itself, for the migration tests.

lazyscribe stamps versions with whole seconds, and two versions of one
artifact logged in the same second share a file name. The tests drive its
clock (``lazyscribe.repository.utcnow``) so they need not sleep.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from io import IOBase
from pathlib import Path
from typing import Any, ClassVar

import pytest

lazyscribe = pytest.importorskip("lazyscribe", reason="lazyscribe 2.2.2 is in the dev extra")

from attrs import define  # noqa: E402  (lazyscribe's own dependency)
from lazyscribe.artifacts.base import Artifact  # noqa: E402

START = dt.datetime(2025, 3, 1, 12, 0, 0)


@define(auto_attribs=True)
class LzTextArtifact(Artifact):
    """A lazyscribe handler scribestore has no mapping for: plain text."""

    alias: ClassVar[str] = "lztext"
    suffix: ClassVar[str] = "txt"
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
    ) -> LzTextArtifact:
        created_at = created_at or START
        return cls(
            name=name,
            value=value,
            fname=fname or f"{name}-{created_at:%Y%m%d%H%M%S}.{cls.suffix}",
            created_at=created_at,
            expiry=expiry,
            writer_kwargs=writer_kwargs or {},
            version=version,
            dirty=dirty,
        )

    @classmethod
    def read(cls, buf: IOBase, **kwargs: Any) -> Any:
        return buf.read()

    @classmethod
    def write(cls, obj: Any, buf: IOBase, **kwargs: Any) -> None:
        buf.write(obj)


class Clock:
    """A fake ``utcnow`` for lazyscribe: each call is one second later."""

    def __init__(self, start: dt.datetime = START) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(seconds=1)
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    import lazyscribe.repository

    fake = Clock()
    monkeypatch.setattr(lazyscribe.repository, "utcnow", fake)
    return fake


def write_lazy_repository(root: Path) -> Path:
    """A lazyscribe repository: json (with writer kwargs), pickle, an expiry,
    a repeated content, and a handler scribestore does not know."""
    manifest = root / "repository.json"
    repo = lazyscribe.Repository(manifest, mode="w")
    repo.log_artifact("features", [1, 2, 3], handler="json", indent=4)
    repo.log_artifact("model", {"weights": [0.1, 0.2], "kind": "linear"}, handler="pickle")
    repo.save()
    repo.log_artifact("features", [1, 2, 3, 4], handler="json")
    repo.log_artifact("model", {"weights": [0.3, 0.4], "kind": "linear"}, handler="pickle")
    repo.save()
    repo.log_artifact("features", [1, 2, 3], handler="json", indent=4)  # same bytes as v0
    repo.log_artifact("notes", "first line\nsecond line\n", handler="lztext")
    repo.save()
    repo = lazyscribe.Repository(manifest, mode="w+")
    repo.set_artifact_expiry("model", version=0, expiry="2025-03-01T12:00:30")
    repo.save()
    return manifest


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` plus its mtime, by relative path."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            st = path.stat()
            out[str(path.relative_to(root))] = (
                f"{hashlib.sha256(path.read_bytes()).hexdigest()}:{st.st_mtime_ns}:{st.st_mode}"
            )
    return out
