"""Projects: a ``project.json`` of experiments, with lazyscribe's API.

Experiment artifacts go into the same content-addressed object store as
repositories (``objects/`` beside the manifest by default), so promoting a
saved artifact to a repository in the same folder copies no bytes.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import warnings
from typing import TYPE_CHECKING, Any, ClassVar, cast

from scribestore.core.lazyscribe_open import project_records
from scribestore.core.manifest_file import ManifestFile
from scribestore.exception import (
    CorruptManifestError,
    ExperimentNotFoundError,
    ManifestNotFoundError,
    ScribeStoreError,
)
from scribestore.experiment import Experiment
from scribestore.manifest.schema import (
    ExperimentRecord,
    ProjectManifest,
    decode_project,
    encode_manifest,
)
from scribestore.ops.verify import Reference, VerifyReport, verify_references
from scribestore.progress import Progress, null
from scribestore.registry import registry

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from scribestore.ops.registry import ManifestKind
    from scribestore.store.leases import Lease

__all__ = ["Project"]

logger = logging.getLogger(__name__)


def _order(exp: Experiment | ExperimentRecord) -> tuple[Any, ...]:
    return (exp.created_at, exp.slug, exp.id)


class Project(ManifestFile):
    """A collection of experiments saved in ``project.json``.

    Args:
        fpath: path or URL of ``project.json``.
        mode: ``"r"`` read-only; ``"a"`` loads saved experiments read-only and
            allows new ones; ``"w+"`` loads them editable; ``"w"`` starts empty
            (its first save replaces the experiments saved when it was opened).
        author: recorded on new experiments; default the current user.
        objects: URL of the object store; default ``objects/`` beside the manifest.
        trust_pickle: whether loads may run code stored in the project (the
            ``pickle`` handler). ``False`` refuses such loads from every
            experiment and test with :class:`UntrustedPickleError`; ``None``
            (default) takes the environment variable
            ``SCRIBESTORE_TRUST_PICKLE`` (``0`` refuses), and trusts when it
            is unset, as lazyscribe does. Also an attribute.
        **storage_options: fsspec options (e.g. ``endpoint_url``).

    Raises:
        ValueError: an unknown ``mode``.
        TypeError: ``trust_pickle`` is not a bool or None.
        CorruptManifestError, UnsupportedFormatError: the manifest cannot be read.
    """

    kind: ClassVar[ManifestKind] = "project"

    def __init__(
        self,
        fpath: str | os.PathLike[str] = "project.json",
        mode: str = "a",
        author: str | None = None,
        *,
        objects: str | os.PathLike[str] | None = None,
        trust_pickle: bool | None = None,
        **storage_options: Any,
    ) -> None:
        self._open_manifest(fpath, mode, objects, trust_pickle, storage_options)
        self.author = author if author is not None else getpass.getuser()
        self._experiments: list[Experiment] = []
        self._unsaved.experiments = self._experiments
        # Ids of experiments known to be in the saved manifest.
        self._saved_ids: set[str] = set()
        # Mode "w": ids saved when opened, which the first save drops.
        self._baseline: set[str] = set()
        # Mode "w" until its first save: a damaged manifest is replaced (and journaled).
        self._replacing = mode == "w"
        records = self._experiments_saved(tolerant=mode == "w")
        if mode == "w":
            self._baseline = {r.id for r in records}
        else:
            read_only = mode in ("r", "a")
            self.experiments = [self._experiment(r, read_only) for r in records]
            self._saved_ids = {r.id for r in records}

    def load(self) -> None:
        """Read the saved experiments again (lazyscribe's ``load``), as the mode
        opens them; experiments logged or changed here and not saved yet are
        kept as they are.

        Raises:
            ManifestNotFoundError: mode ``"r"`` and the manifest is gone.
            CorruptManifestError, UnsupportedFormatError: it cannot be read.
        """
        with self._lock:
            records = self._experiments_saved(tolerant=False)
            saved = {r.id for r in records}
            # Experiments with unsaved changes stay as they are here (saved or not).
            changed = {e.id: e for e in self.experiments if e.has_unsaved}
            read_only = self.mode in ("r", "a")
            fresh = [self._experiment(r, read_only) for r in records if r.id not in changed]
            self.experiments = sorted([*fresh, *changed.values()], key=_order)
            self._saved_ids = saved

    @property
    def experiments(self) -> list[Experiment]:
        """The experiments of this project, oldest first."""
        return self._experiments

    @experiments.setter
    def experiments(self, experiments: list[Experiment]) -> None:
        self._experiments = experiments
        self._unsaved.experiments = experiments

    def _experiment(self, record: ExperimentRecord, read_only: bool) -> Experiment:
        exp = Experiment.from_record(
            record, project=self.url, objects=self._objects, read_only=read_only
        )
        exp.join_trust(self._trust)
        if record.dependencies:
            exp.__dict__["dependencies"] = self._resolved(record.dependencies)
        return exp

    def _resolved(self, refs: dict[str, str]) -> dict[str, Any]:
        """Dependencies as experiments, found as lazyscribe finds them: the
        ``"<project>|<slug>"`` project is a registered name, a registered
        project's path, or a project file (relative to the working directory,
        else to this project's). One that cannot be found stays its reference
        text (logged), so a moved upstream does not make this project unreadable."""
        out: dict[str, Any] = {}
        for key, ref in refs.items():
            project_name, _, slug = ref.rpartition("|")
            try:
                upstream = self._upstream(project_name)[slug]
            except (ScribeStoreError, KeyError, OSError) as exc:
                logger.warning("dependency %r of project %s not resolved: %s", ref, self.url, exc)
                out[key] = ref
                continue
            out[upstream.short_slug] = upstream
        return out

    def _upstream(self, name: str) -> Project:
        if name in registry:
            return cast("Project", registry[name])
        if (registered := registry.search(name)) is not None:
            return cast("Project", registry[registered])
        here = self._dir.rstrip("/")
        # lazyscribe writes remote upstreams without their protocol: this project's.
        named = name if "://" in name or self.protocol == "file" else f"{self.protocol}://{name}"
        for candidate in (named, f"{here}/{name}"):
            if os.path.abspath(candidate) == os.path.abspath(self.url):
                return self
            try:
                return Project(candidate, mode="r", **self.storage_options)
            except ManifestNotFoundError:
                continue
        raise ManifestNotFoundError(f"no project {name!r} (not registered, no such file)")

    def _experiments_saved(self, *, tolerant: bool) -> list[ExperimentRecord]:
        manifest = self._read_manifest(self._decode, tolerant=tolerant)
        return [] if manifest is None else manifest.experiments

    def _decode(self, data: bytes, *, fresh: bool = False) -> ProjectManifest:
        """A saved manifest: scribestore's, or lazyscribe's opened in place (in
        mode ``"w"``, which starts empty, lazyscribe's experiments are not read)."""
        return self._decoded(
            data,
            lambda raw: decode_project(raw, where=self.url),
            lambda raw: ProjectManifest(
                experiments=[]
                if self.mode == "w"
                else project_records(
                    raw, url=self.url, objects=self._objects, options=self.storage_options
                )
            ),
            fresh=fresh,
        )

    def __repr__(self) -> str:
        return f"Project({self.url!r}, mode={self.mode!r})"

    # --- adding experiments ----------------------------------------------------------

    @contextlib.contextmanager
    def log(self, name: str) -> Iterator[Experiment]:
        """A context manager yielding a new :class:`Experiment`.

        The experiment joins the project only if the block exits without an
        exception; it is written by :meth:`save`.

        Raises:
            ReadOnlyError: mode ``"r"``.
            InvalidNameError: ``name`` is empty or could escape the store.
        """
        self._check_writable("log an experiment")
        experiment = Experiment(name, project=self.url, objects=self._objects, author=self.author)
        experiment.join_trust(self._trust)
        yield experiment
        self.append(experiment)

    def append(self, other: Experiment) -> None:
        """Add the experiment ``other`` (made directly, or from another project).

        An experiment made directly joins this project's object store: its
        artifacts are stored when the project saves.

        Raises:
            ReadOnlyError: mode ``"r"``.
        """
        self._check_writable("append an experiment")
        with self._lock:
            if any(e is other for e in self.experiments):
                return
            other.use_store(self._objects)
            # Every project holding it must allow: the stricter decides, now and later.
            other.join_trust(self._trust)
            self.experiments.append(other)
            self.experiments.sort(key=_order)

    # --- saving ----------------------------------------------------------------------

    def save(self) -> None:
        """Write artifact bytes, then ``project.json`` atomically.

        Experiments that other writers saved meanwhile are kept: the manifest
        is merged by experiment id, the newer ``last_updated`` winning.

        Raises:
            ReadOnlyError: mode ``"r"``.
            SaveError: an artifact could not be stored or the manifest written;
                the saved manifest is unchanged and a retry saves everything.
        """
        with self._lock:
            to_write = [
                e
                for e in self.experiments
                if e.has_unsaved
                or e.id not in self._saved_ids
                or not e.objects.same_location(self._objects)
                # Editable experiments may have been changed in place (exp.metrics[k] = v).
                or (self.mode == "w+" and not e.read_only)
            ]
            # Changes made from other threads wait until the save has recorded them.
            with contextlib.ExitStack() as held:
                for exp in sorted(to_write, key=lambda e: e.id):
                    held.enter_context(exp.lock)
                with self._saving() as lease:
                    merged, records = self._save_under(lease, to_write)
                self._after_save(merged, records)

    def _save_under(
        self, lease: Lease, to_write: list[Experiment]
    ) -> tuple[list[ExperimentRecord], dict[str, ExperimentRecord]]:
        """Store artifact bytes and commit the manifest while ``lease`` is held."""
        if self.mode == "w+":
            for exp in to_write:
                if exp.dirty and not exp.read_only:
                    exp.last_updated_by = self.author
        records = {e.id: e.to_record(self._objects) for e in to_write}
        merged: list[ExperimentRecord] = []

        def change(current: bytes | None) -> bytes:
            self._keep_lazyscribe_original(current)
            on_disk = self._on_disk(current)
            result = self._merge(on_disk or [], records)
            merged[:] = result
            after = {r.id: r for r in result}
            # Dropped (mode "w"), or changed in place by an editor (mode "w+").
            if on_disk is None or any(
                after.get(r.id) is None or (self.mode == "w+" and after[r.id] != r) for r in on_disk
            ):
                self._keep_replaced(current, f"save in mode {self.mode!r}")
            return encode_manifest(ProjectManifest(experiments=result))

        self._commit(change, lease)
        return merged, records

    def _on_disk(self, current: bytes | None) -> list[ExperimentRecord] | None:
        """The saved experiments in ``current``, decoded afresh; None when it is
        corrupt and this is a mode ``"w"`` save, which replaces it."""
        if current is None:
            return []
        try:
            return self._decode(current, fresh=True).experiments
        except CorruptManifestError:
            if self._replacing:
                return None
            raise

    def _merge(
        self, on_disk: list[ExperimentRecord], records: dict[str, ExperimentRecord]
    ) -> list[ExperimentRecord]:
        by_id = {r.id: r for r in on_disk if r.id not in self._baseline}
        for exp_id, record in records.items():
            old = by_id.get(exp_id)
            if old is None or record.last_updated >= old.last_updated:
                by_id[exp_id] = record
        return sorted(by_id.values(), key=_order)

    def _after_save(
        self, merged: list[ExperimentRecord], records: dict[str, ExperimentRecord]
    ) -> None:
        saved = {r.id: r for r in merged}
        read_only = self.mode in ("r", "a")
        kept: list[Experiment] = []
        for exp in self.experiments:
            record = saved.get(exp.id)
            if record is None:
                continue  # dropped by a "w" reset elsewhere
            if records.get(exp.id) is record:
                exp.mark_saved(record, self._objects)
                kept.append(exp)
            elif exp.id in records:
                kept.append(self._experiment(record, read_only))  # a newer edit won
            else:
                kept.append(exp)
        known = {e.id for e in kept}
        kept.extend(self._experiment(r, read_only) for r in merged if r.id not in known)
        self.experiments = sorted(kept, key=_order)
        self._saved_ids = set(saved)
        self._baseline = set()
        self._replacing = False

    # --- combining and querying --------------------------------------------------------

    def merge(self, *others: Project, other: Project | None = None) -> Project:
        """A new project (this one's path, mode and author) with the experiments of all.

        Experiments are matched by slug; of two with one slug, the one updated
        last wins (ties broken by id, so the result does not depend on order).
        ``other=`` is lazyscribe's deprecated keyword form (a DeprecationWarning).
        """
        if other is not None:
            warnings.warn(
                "merge(other=...) is deprecated, as in lazyscribe: pass projects positionally",
                DeprecationWarning,
                stacklevel=2,
            )
            others = (*others, other)
        new = Project(
            self.url,
            mode=self.mode,
            author=self.author,
            objects=self.objects_url,
            trust_pickle=self.trust_pickle,
            **self.storage_options,
        )
        best: dict[str, Experiment] = {}
        for exp in [*self.experiments, *(e for p in others for e in p.experiments)]:
            current = best.get(exp.slug)
            if current is None or (exp.last_updated, exp.id) > (
                current.last_updated,
                current.id,
            ):
                best[exp.slug] = exp
        new.experiments = sorted(best.values(), key=_order)
        for exp in new.experiments:
            exp.join_trust(new._trust)
        return new

    def filter(self, func: Callable[[Experiment], bool]) -> Iterator[Experiment]:
        """The experiments for which ``func`` returns True."""
        return (exp for exp in self.experiments if func(exp))

    # --- checking ------------------------------------------------------------------

    def verify(self, *, progress: Progress = null) -> VerifyReport:
        """Re-hash the object of every saved artifact of every experiment and test.

        Checks the experiments this project holds (read when it was opened or
        merged at its last save; reopen to check ones saved since by other
        writers). Unsaved artifacts reference nothing yet and are skipped.
        Each distinct object is read once, to its verified end; ``progress``
        is advanced by the bytes read.

        Returns:
            A :class:`VerifyReport` with one :class:`Problem` (naming the
            experiment slug, test and artifact) per artifact whose object is
            missing, damaged or of a wrong size. Data problems are reported,
            never raised.

        Raises:
            StorageError: the storage backend itself failed.
        """
        return verify_references(self._references(), progress=progress)

    def _references(self) -> Iterator[Reference]:
        for exp in self.experiments:
            for record in exp.saved_artifacts():
                yield Reference(
                    exp.objects, record.hash, record.size, record.name, experiment=exp.slug
                )
            for test in exp.tests:
                for record in test.saved_artifacts():
                    yield Reference(
                        test.objects,
                        record.hash,
                        record.size,
                        record.name,
                        experiment=exp.slug,
                        test=test.name,
                    )

    def __contains__(self, slug: object) -> bool:
        return any(slug in (e.slug, e.short_slug) for e in self.experiments)

    def __getitem__(self, slug: str) -> Experiment:
        """The experiment with this slug or short slug (the latest, if several).

        Raises:
            ExperimentNotFoundError: none (a KeyError).
        """
        for exp in reversed(self.experiments):
            if slug in (exp.slug, exp.short_slug):
                return exp
        known = ", ".join(repr(e.slug) for e in self.experiments[:20]) or "none"
        raise ExperimentNotFoundError(
            f"no experiment with slug or short slug {slug!r} in project {self.url} "
            f"(experiments: {known})"
        )

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Each experiment as a dict."""
        for exp in self.experiments:
            yield exp.to_dict()

    def __len__(self) -> int:
        return len(self.experiments)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._unsaved.experiments = self._experiments
        for exp in self.experiments:
            exp.use_store(self._objects)
