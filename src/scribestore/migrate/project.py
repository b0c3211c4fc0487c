"""Importing a lazyscribe project: experiments, their tests and artifacts."""

from __future__ import annotations

import collections
import datetime as dt

from scribestore.core.lazyscribe_source import plan_experiment
from scribestore.experiment import Experiment
from scribestore.migrate.source import ImportJob, check_handlers, check_missing
from scribestore.project import Project

__all__ = ["import_project"]


def import_project(job: ImportJob) -> None:
    """Add the experiments of the lazyscribe project ``job.entries`` to the project ``job.dest``.

    Raises:
        MigrationError: a malformed entry or a missing file (before any write).
    """
    src, progress, report = job.src, job.progress, job.report
    # Plan: parse and check every entry and file before anything is written.
    planned = [plan_experiment(raw, src, job.handlers) for raw in job.entries]
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
            record = exp.record(src, project.objects, progress, occurrence, report.count_stored)
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
