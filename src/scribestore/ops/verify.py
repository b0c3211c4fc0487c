"""Verifying that every object a manifest references is present and intact.

:meth:`scribestore.Repository.verify` and :meth:`scribestore.Project.verify`
turn their saved entries into :class:`Reference` values and hand them to
:func:`verify_references`, which reads each distinct object once to its
verified end through :meth:`ObjectStore.open` (the object store does the
hashing) and reports every reference whose object is missing or damaged.
Data problems are reported, never raised.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Literal

import msgspec

from scribestore.exception import (
    IntegrityError,
    InvalidDigestError,
    ObjectNotFoundError,
    UnsupportedFormatError,
)
from scribestore.progress import Progress, null
from scribestore.store.layout import BLOCK_SIZE

if TYPE_CHECKING:
    from collections.abc import Iterable

    from scribestore.store.objects import ObjectStore

__all__ = [
    "Outcome",
    "Problem",
    "ProblemKind",
    "Reference",
    "VerifyReport",
    "check_object",
    "verify_references",
]

#: ``"missing"``: the object is not in the store. ``"corrupt"``: its bytes, header
#: or size disagree with its digest or with the manifest. ``"unsupported"``: it
#: was written in an object format newer than this scribestore reads.
ProblemKind = Literal["missing", "corrupt", "unsupported"]


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """One reference whose object is missing or damaged.

    Attributes:
        kind: ``"missing"``, ``"corrupt"`` or ``"unsupported"``.
        artifact: the artifact name.
        hash: the digest the manifest records.
        message: what is wrong and what to do, for people.
        version: the artifact version (repositories), else None.
        experiment: the experiment slug (projects), else None.
        test: the test name, for an artifact of an experiment's test, else None.
    """

    kind: ProblemKind
    artifact: str
    hash: str
    message: str
    version: int | None = None
    experiment: str | None = None
    test: str | None = None


class VerifyReport(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of a verify.

    Attributes:
        checked: references checked (versions of a repository; artifacts of a
            project's experiments and tests).
        ok: references whose object is present and verified.
        objects: distinct objects read (each is read once however often it is
            referenced).
        problems: one entry per reference that is not ok, in manifest order.
    """

    checked: int
    ok: int
    objects: int
    problems: tuple[Problem, ...] = ()

    @property
    def clean(self) -> bool:
        """True when every reference verified."""
        return not self.problems


@dataclasses.dataclass(frozen=True)
class Reference:
    """One manifest entry pointing at an object: what verify checks."""

    objects: ObjectStore
    hash: str
    size: int
    artifact: str
    version: int | None = None
    experiment: str | None = None
    test: str | None = None

    def label(self) -> str:
        """The entry, as people name it."""
        where = f"artifact {self.artifact!r}"
        if self.version is not None:
            where = f"version {self.version} of {where}"
        if self.test is not None:
            where += f" of test {self.test!r}"
        if self.experiment is not None:
            where += f" of experiment {self.experiment!r}"
        return where


class Outcome(msgspec.Struct, frozen=True):
    """What reading one object to its verified end found: its size, or a problem.

    Attributes:
        size: the object's logical size; None when it could not be read.
        kind: None when the object verified, else what is wrong.
        detail: what is wrong and what to do, for people.
    """

    size: int | None
    kind: ProblemKind | None = None
    detail: str = ""


def verify_references(
    references: Iterable[Reference], *, progress: Progress = null
) -> VerifyReport:
    """Read every distinct referenced object to its verified end and report.

    ``progress`` is told the bytes of every distinct object (by the sizes the
    manifest records) and advanced as they are read.

    Raises:
        StorageError: the backend itself failed (network, permissions): that
            is not a finding about the data, so it is not reported as one.
    """
    stores: list[ObjectStore] = []
    refs = [(ref, (_store_index(stores, ref.objects), ref.hash)) for ref in references]
    outcomes: dict[tuple[int, str], Outcome] = {}
    problems: list[Problem] = []
    checked = ok = 0
    progress.start(sum({key: ref.size for ref, key in refs}.values()), "verifying")
    try:
        for ref, key in refs:
            if key not in outcomes:
                outcomes[key] = check_object(ref.objects, ref.hash, progress=progress)
    finally:
        progress.close()
    for ref, key in refs:
        checked += 1
        outcome = outcomes[key]
        kind, detail = outcome.kind, outcome.detail
        if kind is None and outcome.size != ref.size:
            kind = "corrupt"
            detail = (
                f"the manifest records {ref.size} bytes but object {ref.hash} holds "
                f"{outcome.size}; the manifest entry is wrong"
            )
        if kind is None:
            ok += 1
            continue
        problems.append(
            Problem(
                kind=kind,
                artifact=ref.artifact,
                hash=ref.hash,
                message=f"{ref.label()}: {detail}",
                version=ref.version,
                experiment=ref.experiment,
                test=ref.test,
            )
        )
    return VerifyReport(checked=checked, ok=ok, objects=len(outcomes), problems=tuple(problems))


def _store_index(stores: list[ObjectStore], store: ObjectStore) -> int:
    # Experiments appended from other projects may use other stores; the same
    # digest in two stores is two objects.
    for i, known in enumerate(stores):
        if known is store or known.same_location(store):
            return i
    stores.append(store)
    return len(stores) - 1


def check_object(store: ObjectStore, digest: str, *, progress: Progress = null) -> Outcome:
    """Read ``digest`` to its end through the verifying reader: the one verification core.

    verify, fsck and the CLI all check objects here; data problems are
    returned, never raised.

    Raises:
        StorageError: the backend itself failed.
    """
    buffer = bytearray(BLOCK_SIZE)
    try:
        with store.open(digest, cached=False) as reader:
            size = reader.size
            while n := reader.readinto(buffer):
                progress.advance(n)
    except ObjectNotFoundError as exc:
        # The object file itself, or a pack holding some of its chunks.
        return Outcome(
            None,
            "missing",
            f"{exc}; restore it from a copy of the store, or log the artifact again",
        )
    except UnsupportedFormatError as exc:
        return Outcome(None, "unsupported", str(exc))
    except (IntegrityError, InvalidDigestError) as exc:
        return Outcome(None, "corrupt", str(exc))
    return Outcome(size)
