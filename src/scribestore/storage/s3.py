"""S3 (and S3-compatible) storage through s3fs: direct create-only uploads.

S3 has no rename, but a single PUT or a completed multipart upload becomes
visible atomically, so objects are uploaded straight to their final key with
``If-None-Match: *`` (the first writer wins; the service answers 412 to the
rest: :func:`is_conflict` recognises the answer whatever exception s3fs made
of it). A failed upload is aborted, so nothing partial is ever visible.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import inspect
import random
import time
from typing import IO, TYPE_CHECKING, Any, ClassVar, cast

import fsspec.asyn

from scribestore.storage.fsspec import FsspecStorage

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

__all__ = ["S3Storage", "as_os_error", "is_conflict"]

#: How often a failing request is tried (storage option ``retries``), and the
#: client time-outs used unless ``config_kwargs`` sets them: a dead server
#: fails a request in seconds, not after minutes of nested retries.
DEFAULT_RETRIES = 3
DEFAULT_CONFIG: dict[str, Any] = {
    "connect_timeout": 10,
    "read_timeout": 60,
    # s3fs retries the whole request; botocore must not retry inside each try.
    "retries": {"max_attempts": 1, "mode": "standard"},
}

# Multipart part size: 32 MiB parts allow objects up to 312 GiB (10,000 parts)
# while bounding the memory s3fs buffers per upload.
PART_SIZE = 32 << 20
READ_BLOCK = 8 << 20
_UPDATE_ATTEMPTS = 200


class _TranslatedReads:
    """An s3fs file whose read errors are OSErrors saying how often they were tried."""

    def __init__(self, f: Any, retries: int) -> None:
        self._f = f
        self._retries = retries

    def read(self, size: int = -1) -> bytes:
        try:
            data: bytes = self._f.read(size)
        except Exception as exc:
            translated = as_os_error(exc) or _with_attempts(exc, self._retries)
            if translated is exc:
                raise
            raise translated from exc
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def __enter__(self) -> _TranslatedReads:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()


def s3_filesystem(url: str, storage_options: dict[str, Any]) -> tuple[Any, str]:
    """The s3fs filesystem and root for ``url``: ``storage_options`` as given, plus
    bounded retries (``retries``, default :data:`DEFAULT_RETRIES`) and time-outs
    (:data:`DEFAULT_CONFIG`, for what ``config_kwargs`` leaves unset).

    Raises:
        ValueError: ``retries`` is not a positive int.
    """
    options = dict(storage_options)
    retries = options.pop("retries", DEFAULT_RETRIES)
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 1:
        raise ValueError(f"storage option retries must be a positive int, not {retries!r}")
    options["config_kwargs"] = {**DEFAULT_CONFIG, **dict(options.get("config_kwargs") or {})}
    fs, root = fsspec.core.url_to_fs(url, **options)
    fs.retries = retries  # s3fs reads it as an attribute, per request
    return fs, root


class S3Storage(FsspecStorage):
    """Files under ``s3://bucket/prefix`` through s3fs."""

    # Client errors are translated by this backend (see translate_client_errors).
    guard_errors: ClassVar[bool] = False

    def open_read(self, path: str) -> IO[bytes]:
        f = self.fs.open(self._abs(path), "rb", block_size=READ_BLOCK, cache_type="readahead")
        return cast("IO[bytes]", _TranslatedReads(f, self.fs.retries))

    def write_new(self, path: str, chunks: Iterable[bytes | memoryview]) -> bool:
        final = self._abs(path)
        if self.fs.exists(final):
            return False
        f = self.fs.open(final, "xb", block_size=PART_SIZE)
        try:
            for chunk in chunks:
                f.write(chunk)
        except BaseException:
            _abort(f)
            raise
        try:
            f.close()
        except OSError as exc:
            # A lost create-only race is a 412: s3fs makes it a FileExistsError
            # only when the answer has a <Condition> element, which some
            # servers (SeaweedFS) leave out. Either way nothing may stay open.
            _abort(f)
            if is_conflict(exc):
                return False
            raise
        except BaseException:
            _abort(f)
            raise
        return True

    def update(self, path: str, change: Callable[[bytes | None], bytes]) -> bytes:
        key = self._abs(path)
        bucket, _, obj = key.partition("/")
        delay = 0.02
        for _attempt in range(_UPDATE_ATTEMPTS):
            try:
                current, etag = fsspec.asyn.sync(self.fs.loop, _get_with_etag, self.fs, bucket, obj)
                condition = {"IfMatch": etag}
            except FileNotFoundError:
                current, condition = None, {"IfNoneMatch": "*"}
            data = change(current)
            try:
                self.fs.call_s3("put_object", Bucket=bucket, Key=obj, Body=data, **condition)
                return data
            except OSError as exc:
                if not is_conflict(exc):
                    raise
            # Another writer committed first: re-read and merge again.
            time.sleep(random.uniform(0, delay))
            delay = min(delay * 2, 1.0)
        raise TimeoutError(
            f"{key}: gave up after {_UPDATE_ATTEMPTS} conflicting concurrent updates"
        )

    def write_atomic(self, path: str, data: bytes) -> None:
        self.fs.pipe_file(self._abs(path), data)

    def touch(self, path: str) -> None:
        # A conditional PUT of the same bytes: it fails rather than
        # re-creating the key if it was deleted since it was read.
        key = self._abs(path)
        bucket, _, obj = key.partition("/")
        data, etag = fsspec.asyn.sync(self.fs.loop, _get_with_etag, self.fs, bucket, obj)
        try:
            self.fs.call_s3("put_object", Bucket=bucket, Key=obj, Body=data, IfMatch=etag)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError) or is_conflict(exc):
                raise FileNotFoundError(key) from exc
            raise

    def modified(self, path: str) -> datetime.datetime:
        when = self.fs.info(self._abs(path))["LastModified"]
        if not isinstance(when, datetime.datetime):
            raise TypeError(f"{self!r}: LastModified is {when!r}")
        return when if when.tzinfo else when.replace(tzinfo=datetime.timezone.utc)


async def _get_with_etag(fs: Any, bucket: str, key: str) -> tuple[bytes | None, str]:
    """Content and ETag of one key from a single GET, so the two agree."""
    resp = await fs._call_s3("get_object", Bucket=bucket, Key=key)
    body = resp["Body"]
    try:
        data = await body.read()
    finally:
        body.close()
    return bytes(data), str(resp["ETag"])


def is_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is S3's answer to a failed conditional write (412 / 409)."""
    if isinstance(exc, FileExistsError):
        return True
    cause = exc.__cause__
    response = getattr(cause, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (
            409,
            412,
        )
    return False


def _abort(f: Any) -> None:
    """Abandon an unfinished upload so no part of it is ever published."""
    mpu = getattr(f, "mpu", None)
    if mpu:
        with contextlib.suppress(Exception):
            f.fs.call_s3(
                "abort_multipart_upload", Bucket=f.bucket, Key=f.key, UploadId=mpu["UploadId"]
            )
    # Mark the file closed without committing (close() would complete the upload).
    f.mpu = None
    f.buffer = None
    f.closed = True


#: Storage methods whose client errors are translated into OSErrors.
_CALLS = (
    "delete",
    "exists",
    "list",
    "list_files",
    "modified",
    "open_read",
    "read_bytes",
    "read_range",
    "read_view",
    "size",
    "special_files",
    "touch",
    "update",
    "write_atomic",
    "write_new",
)


def as_os_error(exc: BaseException) -> OSError | None:
    """The OSError that stands for a client error botocore or aiohttp raised, if any.

    botocore and aiohttp raise some network failures as exceptions that are
    not OSErrors; every layer above the storage backends handles OSErrors,
    so they are translated here, the cause kept. Time-outs become
    TimeoutError, missing credentials PermissionError, other connection
    failures ConnectionError. None: not a client error (or already an OSError).
    """
    import aiohttp
    import botocore.exceptions as boto

    if isinstance(exc, boto.ConnectTimeoutError):
        return TimeoutError(f"could not connect in time: {exc}")
    if isinstance(exc, boto.ReadTimeoutError):  # an OSError, but not the built-in TimeoutError
        return TimeoutError(f"no answer in time: {exc}")
    if isinstance(exc, OSError):
        return None
    if isinstance(exc, boto.NoCredentialsError):
        return PermissionError(
            f"no AWS credentials were found ({exc}); pass key= and secret= as storage "
            "options, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(exc, (boto.HTTPClientError, boto.ConnectionError, aiohttp.ClientError)):
        if isinstance(exc, aiohttp.ServerTimeoutError):
            return TimeoutError(str(exc))
        return ConnectionError(f"{type(exc).__name__}: {exc}")
    return None


def _translating(method: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isgeneratorfunction(method):
        # A generator runs its calls when iterated, not when called.
        @functools.wraps(method)
        def iterate(self: S3Storage, *args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from method(self, *args, **kwargs)
            except Exception as exc:
                translated = as_os_error(exc)
                if translated is None:
                    raise
                raise translated from exc

        return iterate

    @functools.wraps(method)
    def call(self: S3Storage, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            translated: Exception | None = as_os_error(exc) or _missing_bucket(exc, self.fs)
            if translated is None:
                translated = _with_attempts(exc, getattr(self.fs, "retries", None))
                if translated is exc:
                    raise
            raise translated from exc

    return call


def _missing_bucket(exc: Exception, fs: Any) -> OSError | None:
    """For s3fs's FileNotFoundError that is really a missing bucket, an OSError
    saying so (a missing bucket must not read as a missing file)."""
    if not isinstance(exc, FileNotFoundError):
        return None
    response = getattr(exc.__cause__, "response", None)
    if not isinstance(response, dict) or response.get("Error", {}).get("Code") != "NoSuchBucket":
        return None
    bucket = response.get("Error", {}).get("BucketName") or "the bucket"
    endpoint = getattr(getattr(fs, "client_kwargs", None), "get", lambda *_: None)("endpoint_url")
    where = endpoint or getattr(fs, "endpoint_url", None) or "the S3 endpoint"
    return OSError(
        f"bucket {bucket!r} does not exist at {where}: create it, or check the bucket "
        "name in the URL and the endpoint_url storage option (or AWS_ENDPOINT_URL)"
    )


def _with_attempts(exc: Exception, retries: int | None) -> Exception:
    """``exc``, or for a failed request an OSError saying how often it was tried."""
    if (
        not isinstance(exc, OSError)
        or isinstance(exc, (FileNotFoundError, FileExistsError, PermissionError))
        or is_conflict(exc)
        or retries is None
    ):
        return exc
    if type(exc) not in (OSError, ConnectionError, TimeoutError):
        return exc  # a subclass with meaning of its own stays as it is
    detail = exc.strerror or str(exc)
    note = f"tried {retries} times; the storage option retries= sets how often"
    return type(exc)(exc.errno, f"{detail} ({note})")


for _name in _CALLS:
    setattr(S3Storage, _name, _translating(getattr(S3Storage, _name)))
