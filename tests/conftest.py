"""Shared fixtures: one storage test suite, run against every backend.

``store_location`` is parametrized over local disk, fsspec memory and S3 (an
S3 API server started on 127.0.0.1 for the session, reached through s3fs).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from s3server import S3Server

BACKENDS = ("local", "memory", "s3")
S3_BUCKET = "scribestore-tests"


@dataclass(frozen=True)
class Location:
    """Where a test's store lives: a URL plus the fsspec options to reach it."""

    backend: str
    url: str
    options: dict[str, Any] = field(default_factory=dict)

    def join(self, name: str) -> str:
        return f"{self.url.rstrip('/')}/{name}"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    with S3Server() as server:
        server.create_bucket(S3_BUCKET)
        yield server


def make_location(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Location:
    unique = uuid.uuid4().hex[:12]
    if backend == "local":
        return Location("local", str(tmp_path / "store"))
    if backend == "memory":
        return Location("memory", f"memory://scribestore-test-{unique}")
    server: S3Server = request.getfixturevalue("s3_server")
    return Location("s3", f"s3://{S3_BUCKET}/{unique}", server.storage_options())


@pytest.fixture(params=BACKENDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    """A fresh, empty store directory on each backend."""
    return make_location(request.param, tmp_path, request)


@pytest.fixture(params=("local", "s3"))
def shared_location(request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    """A fresh store on a backend that other processes can reach too."""
    return make_location(request.param, tmp_path, request)
