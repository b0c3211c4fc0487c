"""Where a test's store lives, on each backend the storage suite covers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from support.s3server import S3Server
from support.seaweed import SeaweedCluster, SeaweedError

#: ``fsspec`` is local disk reached through the generic fsspec backend.
BACKENDS = ("local", "memory", "fsspec", "s3")
S3_BUCKET = "scribestore-tests"


@dataclass(frozen=True)
class Location:
    """Where a test's store lives: a URL plus the fsspec options to reach it."""

    backend: str
    url: str
    options: dict[str, Any] = field(default_factory=dict)

    def join(self, name: str) -> str:
        return f"{self.url.rstrip('/')}/{name}"


def make_location(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Location:
    unique = uuid.uuid4().hex[:12]
    if backend == "local":
        return Location("local", str(tmp_path / "store"))
    if backend == "memory":
        return Location("memory", f"memory://scribestore-test-{unique}")
    if backend == "fsspec":
        return Location("fsspec", f"local://{tmp_path / 'store'}")
    server: S3Server | SeaweedCluster = request.getfixturevalue("s3_server")
    if isinstance(server, SeaweedCluster):
        try:
            server.check_writable(S3_BUCKET)
        except SeaweedError as exc:
            pytest.fail(str(exc), pytrace=False)
    return Location("s3", f"s3://{S3_BUCKET}/{unique}", server.storage_options())
