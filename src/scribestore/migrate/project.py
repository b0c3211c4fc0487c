"""Importing a lazyscribe project: experiments, their tests and artifacts."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Any

from scribestore.exception import InvalidNameError
from scribestore.experiment import Experiment, slugify
from scribestore.manifest.schema import (
    ArtifactRecord,
    ExperimentRecord,
    TestRecord,
    jsonable_params,
    validate_name,
)
from scribestore.migrate.source import (
    ImportJob,
    MigrationError,
    MigrationReport,
    Source,
    SourceArtifact,
    check_handlers,
    check_missing,
    parse_artifact,
    timestamp,
)
from scribestore.project import Project
from scribestore.store.hashing import hash_bytes

if TYPE_CHECKING:
    from collections.abc import Mapping

    from scribestore.progress import Progress
    from scribestore.store.objects import ObjectStore

__all__ = ["import_project"]


def import_project(job: ImportJob) -> None:
    """Add the experiments of the lazyscribe project ``job.entries`` to the project ``job.dest``.

    Raises:
        MigrationError: a malformed entry or a missing file (before any write).
    """
    src, progress, report = job.src, job.progress, job.report
    # Plan: parse and check every entry and file before anything is written.
    planned = [_plan_experiment(raw, src, job.handlers) for raw in job.entries]
    artifacts = [a for exp in planned for a in exp.all_artifacts()]
    check_missing([a.rel for a in artifacts if not src.exists(a.rel)], src)
    check_handlers(artifacts, report)

    project = Project(job.dest, mode="a", objects=job.objects, **job.storage_options)
    present = collections.Counter((e.slug, e.created_at) for e in project.experiments)
    seen: collections.Counter[tuple[str, dt.datetime]] = collections.Counter()
    todo = []
    for exp in planned:
        key = (exp.slug, exp.created_at)
        seen[key] += 1
        if present[key] > 0:
            present[key] -= 1
            report.experiments_skipped += 1
            continue
        todo.append((exp, seen[key]))
    progress.start(
        sum(src.size(a.rel) for exp, _ in todo for a in exp.all_artifacts()), "importing"
    )
    try:
        for exp, occurrence in todo:
            record = exp.record(src, project.objects, progress, occurrence, report)
            project.append(
                Experiment.from_record(
                    record, project=project.url, objects=project.objects, read_only=False
                )
            )
            report.experiments_added += 1
    finally:
        progress.close()
    if report.changed:
        project.save()


@dataclasses.dataclass
class _PlannedTest:
    raw: dict[str, Any]
    artifacts: list[SourceArtifact]


@dataclasses.dataclass
class _PlannedExperiment:
    raw: dict[str, Any]
    slug: str
    created_at: dt.datetime
    artifacts: list[SourceArtifact]
    tests: list[_PlannedTest]

    def all_artifacts(self) -> list[SourceArtifact]:
        return [*self.artifacts, *(a for t in self.tests for a in t.artifacts)]

    def record(
        self,
        src: Source,
        objects: ObjectStore,
        progress: Progress,
        occurrence: int,
        report: MigrationReport,
    ) -> ExperimentRecord:
        """Store this experiment's artifact bytes and return its record."""

        def stored(arts: list[SourceArtifact]) -> list[ArtifactRecord]:
            out = []
            for art in arts:
                digest, size = src.put(objects, art.rel, progress)
                report.bytes_read += size
                report.versions_added += 1
                out.append(
                    ArtifactRecord(
                        name=art.name,
                        hash=digest,
                        size=size,
                        created_at=art.created_at,
                        handler=art.handler,
                        fname=art.fname,
                        environment=art.environment,
                    )
                )
            return out

        raw = self.raw
        last_updated = timestamp(raw.get("last_updated", raw["created_at"]), "last_updated")
        author = str(raw.get("author", ""))
        # A stable id: a rerun that meets this experiment again (say, after the
        # destination was copied elsewhere) merges with it instead of doubling it.
        seed = f"lazyscribe:{self.slug}:{self.created_at.isoformat()}:{occurrence}"
        return ExperimentRecord(
            id=hash_bytes(seed.encode())[:32],
            name=str(raw.get("name", self.slug)),
            slug=self.slug,
            short_slug=str(raw.get("short_slug", slugify(str(raw.get("name", self.slug))))),
            author=author,
            last_updated_by=str(raw.get("last_updated_by", author)),
            created_at=self.created_at,
            last_updated=max(last_updated, self.created_at),
            metrics=dict(raw.get("metrics") or {}),
            parameters=jsonable_params(raw.get("parameters") or {}),
            tags=[str(t) for t in raw.get("tags") or []],
            dependencies=_dependencies(raw.get("dependencies")),
            tests=[
                TestRecord(
                    name=str(t.raw.get("name", "")),
                    description=t.raw.get("description"),
                    metrics=dict(t.raw.get("metrics") or {}),
                    parameters=jsonable_params(t.raw.get("parameters") or {}),
                    artifacts=stored(t.artifacts),
                )
                for t in self.tests
            ],
            artifacts=stored(self.artifacts),
        )


def _dependencies(raw: object) -> dict[str, str]:
    """lazyscribe's ``["<project>|<slug>", ...]`` keyed by the upstream slug."""
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    out: dict[str, str] = {}
    for dep in raw if isinstance(raw, list) else []:
        text = str(dep)
        out[text.rsplit("|", 1)[-1]] = text
    return out


def _plan_experiment(
    raw: dict[str, Any], src: Source, handlers: Mapping[str, str]
) -> _PlannedExperiment:
    slug = raw.get("slug")
    if not isinstance(slug, str) or not slug:
        raise MigrationError(f"an experiment in {src.url} has no slug")
    try:
        validate_name(slug, kind="experiment")
    except InvalidNameError as exc:
        raise MigrationError(f"{src.url}: {exc}") from None
    where = f"experiment {slug!r} of {src.url}"
    artifacts = []
    for a in raw.get("artifacts") or []:
        art = parse_artifact(a, where, handlers)
        art.rel = f"{slug}/{art.fname}"
        artifacts.append(art)
    tests = []
    for t in raw.get("tests") or []:
        test_arts = []
        for a in t.get("artifacts") or []:
            name = str(t.get("name", ""))
            art = parse_artifact(a, f"test {name!r} of {where}", handlers)
            art.rel = src.find_test_file(slug, name, art.fname) or (
                f"{slug}/{slugify(name)}/{art.fname}"
            )
            test_arts.append(art)
        tests.append(_PlannedTest(raw=t, artifacts=test_arts))
    return _PlannedExperiment(
        raw=raw,
        slug=slug,
        created_at=timestamp(raw.get("created_at"), f"created_at of {where}"),
        artifacts=artifacts,
        tests=tests,
    )
