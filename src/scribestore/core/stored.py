"""Artifact bytes in and out of an object store, through a handler.

Shared by repositories and experiments: serializing a value and storing it,
and loading a stored version back, verified, with the environment check.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import io
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple, Protocol, cast

from scribestore.artifacts import get_handler
from scribestore.exception import (
    ArtifactLoadError,
    ArtifactLogError,
    IntegrityError,
    InvalidNameError,
    SaveError,
    ScribeStoreError,
    UntrustedPickleError,
)
from scribestore.manifest.schema import validate_fname, validate_name
from scribestore.progress import Progress, null
from scribestore.storage.base import BLOCK_SIZE
from scribestore.store.objects import ObjectReader, ObjectStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from scribestore.artifacts import ArtifactHandler
    from scribestore.core.pending import PendingArtifact
    from scribestore.ops.registry import ManifestKind, ManifestRegistry
    from scribestore.storage import Storage
    from scribestore.store.leases import Lease

__all__ = [
    "SPOOL_LIMIT",
    "TRUST_PICKLE_ENV",
    "PickleTrust",
    "PreparedValue",
    "StoredArtifact",
    "bytes_to_store",
    "commit_manifest",
    "default_fname",
    "is_stored",
    "load_stored",
    "open_stored",
    "prepare_value",
    "register_with",
    "resolve_trust_pickle",
    "store_value",
]

_UNSAFE_FNAME = re.compile(r"[^A-Za-z0-9._-]+")
#: Bytes a handler's serialized value may take in memory before it goes to a temp file.
SPOOL_LIMIT = 32 << 20

#: Environment variable giving the default of ``trust_pickle`` for stores opened
#: without it: ``0``/``false``/``no``/``off`` refuse pickle loads,
#: ``1``/``true``/``yes``/``on`` (or unset, or empty) allow them.
TRUST_PICKLE_ENV = "SCRIBESTORE_TRUST_PICKLE"
_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
_FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def resolve_trust_pickle(trust_pickle: bool | None) -> bool:
    """Whether a store opened with ``trust_pickle`` may load pickles.

    ``None`` defers to the environment variable :data:`TRUST_PICKLE_ENV`,
    read now; unset or empty means trusted (lazyscribe's behaviour). A value
    that is not one of the recognised words is treated as untrusted: a typo
    must not silently allow code to run.

    Raises:
        TypeError: ``trust_pickle`` is not a bool or None.
    """
    if trust_pickle is not None:
        if not isinstance(trust_pickle, bool):
            raise TypeError(f"trust_pickle must be True, False or None, not {trust_pickle!r}")
        return trust_pickle
    raw = os.environ.get(TRUST_PICKLE_ENV, "").strip().lower()
    return not raw or raw in _TRUE_WORDS


def _environment_refuses() -> bool:
    raw = os.environ.get(TRUST_PICKLE_ENV, "").strip().lower()
    return bool(raw) and raw not in _TRUE_WORDS


@dataclasses.dataclass(eq=False)
class PickleTrust:
    """Whether loads through a store's handles may run code (``pickle``).

    A trust may have parents: the trust of a project or repository that an
    experiment, test or ``filter()`` view came from. It allows only if it and
    every parent allow, and never while the environment variable
    :data:`TRUST_PICKLE_ENV` refuses, so turning trust off anywhere up the
    chain (or in the environment) reaches everything derived from it.

    Attributes:
        trusted: this level's own decision.
        setting: the ``trust_pickle`` argument it came from (None: environment).
        owner: the repository, project or experiment, for messages.
        parents: the trusts this one derives from.
    """

    trusted: bool
    setting: bool | None
    owner: str
    parents: list[PickleTrust] = dataclasses.field(default_factory=list)

    @classmethod
    def resolve(cls, setting: bool | None, owner: str) -> PickleTrust:
        """The trust for a store opened with ``trust_pickle=setting``.

        Raises:
            TypeError: ``setting`` is not a bool or None.
        """
        return cls(resolve_trust_pickle(setting), setting, owner)

    def derive(self, owner: str) -> PickleTrust:
        """A trust for an object made from this one: it allows only while this one does."""
        return PickleTrust(True, None, owner, [self])

    def add_parent(self, parent: PickleTrust) -> None:
        """Also require ``parent`` to allow (an experiment joining another project)."""
        if parent is not self and all(p is not parent for p in self.parents):
            self.parents.append(parent)

    def allows(self) -> bool:
        """Whether loads that run code are allowed now."""
        if _environment_refuses() or not self.trusted:
            return False
        return all(p.allows() for p in self.parents)

    def _refuser(self) -> PickleTrust | None:
        if not self.trusted:
            return self
        for parent in self.parents:
            found = parent._refuser()
            if found is not None:
                return found
        return None

    def check(self, label: str, handler: str) -> None:
        """Refuse a load of ``label`` through ``handler`` if that needs trust.

        Raises:
            UntrustedPickleError: ``handler`` runs code on load and this trust
                (or one it derives from, or the environment) does not allow it.
        """
        if not get_handler(handler).runs_code_on_load or self.allows():
            return
        refuser = None if _environment_refuses() else self._refuser()
        why = (
            f"{TRUST_PICKLE_ENV}={os.environ.get(TRUST_PICKLE_ENV, '')!r} is set"
            if refuser is None
            else f"{refuser.owner} does not trust pickles (trust_pickle=False)"
        )
        raise UntrustedPickleError(
            f"refusing to load {label}: it is stored with the {handler!r} handler, and "
            f"loading it runs code chosen by whoever wrote it; {why}. If you trust everyone "
            f"who can write to this store, open it with trust_pickle=True (and unset "
            f"{TRUST_PICKLE_ENV} or set it to 1)"
        )


class StoredArtifact(Protocol):
    """What loading needs to know of a saved artifact."""

    @property
    def hash(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def handler(self) -> str: ...
    @property
    def fname(self) -> str: ...
    @property
    def environment(self) -> dict[str, str]: ...


def register_with(registry: ManifestRegistry, manifest_url: str, kind: ManifestKind) -> None:
    """Register a manifest with its object store, before it stores anything.

    Raises:
        SaveError: the registration could not be written; nothing was saved.
    """
    try:
        registry.register(manifest_url, kind)
    except ScribeStoreError as exc:
        raise SaveError(
            f"could not register {kind} {manifest_url} with its object store: {exc}; "
            "nothing was saved"
        ) from exc


def is_stored(objects: ObjectStore, digest: str, label: str) -> bool:
    """Whether an object stored earlier is still there; ask under a write lease.

    Content stored by an earlier, failed save may have been deleted by gc
    since (it deletes what no manifest names while no lease is held).

    Raises:
        SaveError: the store could not be asked.
    """
    try:
        return objects.has(digest)
    except ScribeStoreError as exc:
        raise SaveError(f"could not check the bytes of {label} in {objects.url}: {exc}") from exc


def commit_manifest(
    storage: Storage,
    name: str,
    change: Callable[[bytes | None], bytes],
    *,
    lease: Lease,
    label: str,
) -> None:
    """Replace manifest ``name`` with ``change(current)``, if ``lease`` still holds.

    The lease is checked right before the new manifest is written, so a writer
    whose lease was taken over (gc may have deleted what it stored) commits
    nothing.

    Raises:
        SaveError: the manifest could not be written (or ``change`` raised);
            the saved manifest is unchanged.
    """

    def guarded(current: bytes | None) -> bytes:
        lease.check()
        return change(current)

    try:
        storage.update(name, guarded)
    except ScribeStoreError as exc:
        raise SaveError(f"could not save {label}: {exc}") from exc
    except Exception as exc:
        raise SaveError(
            f"could not write the manifest of {label}: {exc}; the saved manifest "
            "is unchanged, retry save()"
        ) from exc


class PreparedValue(NamedTuple):
    """A value checked for logging: what to keep, and how to name its exported file."""

    value: Any
    #: The exported file's suffix when its name is derived from the artifact's.
    suffix: str
    #: The source file's own name, for handlers that store a file (else None).
    source_name: str | None
    #: What the handler records about the writing environment.
    environment: dict[str, str]


def prepare_value(
    name: str, value: Any, handler_alias: str, params: Mapping[str, Any]
) -> PreparedValue:
    """Check what is being logged before anything is stored.

    Returns:
        The value to keep (for the ``file`` handler: the absolute source path),
        the suffix for its exported file name and, for a file, its own name.

    Raises:
        InvalidNameError: ``name`` could escape the store.
        UnknownHandlerError: no handler ``handler_alias``.
        ArtifactLogError: a path handler was not given an existing file, or
            the handler refuses the value (:meth:`ArtifactHandler.check_value`)
            or cannot describe its environment.
    """
    validate_name(name)
    handler = get_handler(handler_alias)
    if not handler.streams_path:
        try:
            handler.check_value(value, **params)
            environment = handler.environment_for(value, **params)
        except Exception as exc:
            raise ArtifactLogError(
                f"cannot log artifact {name!r} with handler {handler_alias!r}: {exc}; "
                "nothing was queued"
            ) from exc
        return PreparedValue(value, handler.suffix, None, environment)
    try:
        source = handler.source_path(value)
    except (OSError, TypeError, ValueError) as exc:
        raise ArtifactLogError(f"cannot log artifact {name!r}: {exc}") from exc
    path = Path(source)
    suffix = path.suffix.lstrip(".") or handler.suffix
    return PreparedValue(source, suffix, path.name, handler.environment_for(source, **params))


def default_fname(
    name: str, created_at: dt.datetime, prepared: PreparedValue, fname: str | None = None
) -> str:
    """The export file name: ``fname`` if given (checked), else a file's own name, else
    one derived from the artifact name and creation time (as lazyscribe names them).

    Raises:
        InvalidNameError: ``fname`` is not a plain file name.
    """
    if fname is not None:
        return validate_fname(fname)
    if prepared.source_name is not None:
        with contextlib.suppress(InvalidNameError):
            return validate_fname(prepared.source_name)
    stem = _UNSAFE_FNAME.sub("_", name).strip("._") or "artifact"
    return f"{stem}-{created_at:%Y%m%d%H%M%S%f}.{prepared.suffix}"


def store_value(
    objects: ObjectStore,
    handler_alias: str,
    value: Any,
    params: dict[str, Any],
    *,
    progress: Progress = null,
) -> tuple[str, int]:
    """Serialize ``value`` with its handler into ``objects``; return (hash, size).

    ``progress`` is started with the size once it is known and advanced as
    bytes are stored.

    Raises:
        Whatever the handler or the store raises; nothing is referenced yet.
    """
    handler = get_handler(handler_alias)
    if handler.streams_path:
        source = handler.open_source(value)
        if source is None:
            return objects.put_sized(Path(value), progress=progress)
        with source:
            return objects.put_sized(source, progress=progress)
    # Small values stay in memory; a large one (a big array) spills to a
    # temporary file, so serializing never holds a second copy of it.
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_LIMIT, prefix="scribestore-") as buf:
        handler.write(value, cast("IO[bytes]", buf), **params)
        buf.seek(0)
        return objects.put_sized(cast("IO[bytes]", buf), progress=progress)


def bytes_to_store(queued: Iterable[PendingArtifact]) -> int | None:
    """Bytes of the queued values not stored yet, if every one is a file or
    folder whose size is known (None otherwise: a progress bar without total)."""
    total = 0
    for pending in queued:
        if pending.stored is None:
            handler = get_handler(pending.handler)
            size = handler.source_size(pending.value) if handler.streams_path else None
            if size is None:
                return None
            total += size
    return total


def open_stored(
    objects: ObjectStore, name: str, record: StoredArtifact, version: int | None = None
) -> ObjectReader:
    """A verified stream of ``record``'s bytes.

    Raises:
        ObjectNotFoundError: the object is missing.
        IntegrityError: the object's size disagrees with the record (or, from
            ``read``, its bytes disagree with the hash).
    """
    reader = objects.open(record.hash, size=record.size, artifact=name, version=version)
    if reader.size != record.size:
        reader.close()
        raise IntegrityError(
            record.hash,
            "size mismatch",
            artifact=name,
            version=version,
            detail=f"manifest records {record.size} bytes, object holds {reader.size}",
        )
    return reader


def _check_whole(stream: ObjectReader) -> None:
    """Read ``stream`` again from 0 to its end: IntegrityError if it does not match."""
    stream.seek(0)
    while stream.read(BLOCK_SIZE):
        pass


def _read_value(handler: ArtifactHandler, stream: ObjectReader, params: dict[str, Any]) -> Any:
    """``handler``'s value decoded from ``stream``, which is verified to its end.

    A chunked object is decoded as it streams (each chunk is verified before
    the handler sees it), so a large array is never held twice; any other is
    read and verified whole first.
    """
    with stream:
        if not stream.chunked:
            return handler.read(io.BytesIO(stream.read()), **params)
        buffered = io.BufferedReader(stream, BLOCK_SIZE)
        try:
            value = handler.read(buffered, **params)
        except Exception:
            # Bytes the handler could not decode may be damaged ones: say so
            # (IntegrityError) if the whole content does not match.
            _check_whole(stream)
            raise
        while buffered.read(BLOCK_SIZE):  # the rest, so the whole content is checked
            pass
        if not stream.verified:
            # The handler sought (Parquet reads its footer first): chunks were
            # checked, their order and the whole were not. Check it all once.
            _check_whole(stream)
        return value


def load_stored(
    objects: ObjectStore,
    name: str,
    record: StoredArtifact,
    *,
    validate: bool,
    version: int | None = None,
    reader_kwargs: dict[str, Any],
    trust: PickleTrust | None = None,
    label: str | None = None,
) -> Any:
    """Load ``record`` through its handler; bytes are verified before decoding.

    Args:
        trust: whether handlers that run code on load (pickle) may be used;
            None trusts.
        label: how to name the artifact in messages (default from ``name``
            and ``version``).

    Raises:
        UntrustedPickleError: the handler runs code on load and ``trusted``
            is False; raised before anything is read.
        ArtifactLoadError: ``validate`` found an environment mismatch.
        IntegrityError, ObjectNotFoundError: the stored bytes are wrong or gone.
    """
    handler = get_handler(record.handler)
    if label is None:
        label = (
            f"artifact {name!r}" if version is None else f"version {version} of artifact {name!r}"
        )
    if trust is not None:
        trust.check(label, record.handler)
    if validate:
        problem = handler.check_environment(record.environment)
        if problem is not None:
            raise ArtifactLoadError(f"{label} was {problem}; pass validate=False to load it anyway")
    if handler.streams_path:
        stream = open_stored(objects, name, record, version)
        try:
            result = handler.load_stream(
                cast("IO[bytes]", stream), fname=record.fname, **reader_kwargs
            )
        except BaseException:
            stream.close()
            raise
        if result is not stream:
            stream.close()
        return result
    value = _read_value(handler, open_stored(objects, name, record, version), reader_kwargs)
    if handler.output_only:
        # lazyscribe's warning for handlers whose files are a rendering of the value.
        warnings.warn(
            f"{label} is stored by the output-only handler {record.handler!r}: "
            "what was loaded is not the original Python object",
            UserWarning,
            stacklevel=3,
        )
    return value
