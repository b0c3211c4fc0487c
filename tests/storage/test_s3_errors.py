"""S3 client errors that are not OSErrors become the library's named errors."""

from __future__ import annotations

import uuid

import botocore.exceptions as boto
import pytest

from scribestore import ObjectStore, StorageError, StorageTimeoutError
from scribestore.storage.s3 import as_os_error
from support.locations import S3_BUCKET
from support.s3server import S3Server

DEAD = "http://127.0.0.1:9"


@pytest.fixture
def s3_store(s3_server: S3Server) -> ObjectStore:
    url = f"s3://{S3_BUCKET}/{uuid.uuid4().hex[:12]}/objects"
    return ObjectStore(url, **s3_server.storage_options())


@pytest.mark.parametrize(
    ("error", "named", "says"),
    [
        (
            boto.ConnectTimeoutError(endpoint_url="http://127.0.0.1:9"),
            StorageTimeoutError,
            "timed out",
        ),
        (
            boto.EndpointConnectionError(endpoint_url="http://127.0.0.1:9"),
            StorageError,
            "Could not connect",
        ),
        (boto.NoCredentialsError(), StorageError, "AWS_ACCESS_KEY_ID"),
    ],
    ids=["connect-timeout", "no-endpoint", "no-credentials"],
)
def test_client_errors_are_named_and_name_the_store(
    s3_store: ObjectStore,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    named: type[Exception],
    says: str,
) -> None:
    digest = s3_store.put(b"bytes on s3")

    def fail(*args: object, **kwargs: object) -> bytes:
        raise error

    monkeypatch.setattr(s3_store.storage.fs, "cat_file", fail)  # type: ignore[attr-defined]
    with pytest.raises(named, match=says) as info:
        s3_store.stat(digest)
    assert s3_store.url in str(info.value)
    assert info.value.__cause__ is not None and info.value.__cause__.__cause__ is error


def test_errors_that_are_not_client_errors_pass_through() -> None:
    assert as_os_error(ValueError("a bug")) is None
    assert as_os_error(FileNotFoundError("x")) is None
    assert isinstance(as_os_error(boto.ConnectTimeoutError(endpoint_url="u")), TimeoutError)


def test_listing_errors_are_translated_too(s3_store: ObjectStore, monkeypatch) -> None:
    s3_store.put(b"bytes on s3")

    def fail(*args: object, **kwargs: object) -> list[str]:
        raise boto.EndpointConnectionError(endpoint_url=DEAD)

    monkeypatch.setattr(s3_store.storage.fs, "find", fail)  # type: ignore[attr-defined]
    with pytest.raises(StorageError, match="Could not connect"):
        list(s3_store)


def test_a_read_timeout_is_a_timeout() -> None:
    error = boto.ReadTimeoutError(endpoint_url=DEAD)
    assert isinstance(as_os_error(error), TimeoutError)


def test_a_missing_bucket_is_not_a_missing_file(s3_server: S3Server) -> None:
    from scribestore import ManifestNotFoundError, Repository

    options = s3_server.storage_options()
    url = "s3://no-such-bucket-here/repository.json"
    with pytest.raises(StorageError, match="no-such-bucket-here") as raised:
        Repository(url, mode="r", **options)
    assert not isinstance(raised.value, ManifestNotFoundError)
    assert "does not exist" in str(raised.value) and "endpoint_url" in str(raised.value)
    with pytest.raises(StorageError, match="does not exist"):
        Repository(url, mode="w", **options)  # even a store that starts empty


def test_a_wrong_port_fails_fast(s3_server: S3Server) -> None:
    import time

    from scribestore import Repository

    options = {**s3_server.storage_options(), "endpoint_url": DEAD}
    started = time.monotonic()
    with pytest.raises(StorageError, match=r"tried 3 times|Could not connect"):
        Repository(f"s3://{S3_BUCKET}/x/repository.json", mode="r", **options)
    assert time.monotonic() - started < 5
