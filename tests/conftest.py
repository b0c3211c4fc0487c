"""Shared fixtures: one storage test suite, run against every backend.

``location`` is parametrized over local disk, fsspec memory, the generic
fsspec backend (a ``local://`` URL) and S3 (an S3 API server started on
127.0.0.1 for the session, reached through s3fs). Helpers the tests import
live in :mod:`support`, never here.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.locations import BACKENDS, S3_BUCKET, Location, make_location
from support.s3server import S3Server
from support.seaweed import SeaweedCluster, SeaweedError

# Tests of remote behaviour read the remote itself; the cache tests give
# their stores a cache of their own (tests/store/test_cache.py).
os.environ["SCRIBESTORE_CACHE"] = "off"
# The stat cache stays on (as for users), in a directory of the run's own.
os.environ["SCRIBESTORE_CACHE_DIR"] = tempfile.mkdtemp(prefix="scribestore-test-cache-")
atexit.register(shutil.rmtree, os.environ["SCRIBESTORE_CACHE_DIR"], ignore_errors=True)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server | SeaweedCluster]:
    """The S3 API the ``s3`` backend uses: a SeaweedFS cluster (gateway 0), or
    with ``SCRIBESTORE_TEST_S3=moto`` moto's mock server."""
    server: S3Server | SeaweedCluster = (
        S3Server() if os.environ.get("SCRIBESTORE_TEST_S3") == "moto" else SeaweedCluster()
    )
    with server:
        server.create_bucket(S3_BUCKET)
        yield server


@pytest.fixture(autouse=True)
def _s3_server_takes_writes(request: pytest.FixtureRequest) -> None:
    """A test that uses the session's cluster directly fails at once, with a
    diagnosis, if the cluster stopped taking writes (``location`` checks the same)."""
    if "s3_server" in request.fixturenames:
        server = request.getfixturevalue("s3_server")
        if isinstance(server, SeaweedCluster):
            try:
                server.check_writable(S3_BUCKET)
            except SeaweedError as exc:
                pytest.fail(str(exc), pytrace=False)


@pytest.fixture(params=BACKENDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    """A fresh, empty store directory on each backend."""
    return make_location(request.param, tmp_path, request)


@pytest.fixture(params=("local", "s3"))
def shared_location(request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    """A fresh store on a backend that other processes can reach too."""
    return make_location(request.param, tmp_path, request)
