"""scribestore exp ls|show|compare|get: the experiments of a project."""

from __future__ import annotations

import math
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import click

from scribestore.artifacts.localfile import write_atomically
from scribestore.cli.app import (
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    CliError,
    cli,
    emit,
    human,
    manifest_kind,
    output_options,
    settings,
    store_options,
    table,
)
from scribestore.cli.artifacts import export_target
from scribestore.project import Project

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scribestore.experiment import Experiment
    from scribestore.manifest.schema import ArtifactRecord


def _project(url: str) -> Project:
    s = settings()
    kind = manifest_kind(url, s.storage_options)
    if kind != "project":
        raise CliError(f"{url} is a {kind} manifest; this command needs a project", EXIT_USAGE)
    return Project(url, mode="r", objects=s.objects, **s.storage_options)


def _cell(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.6g}"
    return "-" if value is None else str(value)


def _summary(exp: Experiment) -> dict[str, Any]:
    return {
        "slug": exp.slug,
        "name": exp.name,
        "author": exp.author,
        "created_at": exp.created_at.isoformat(),
        "tags": list(exp.tags),
        "metrics": dict(exp.metrics),
        "parameters": dict(exp.parameters),
    }


@cli.group()
def exp() -> None:
    """The experiments of a project: list, show, compare, export an artifact.

    EXPERIMENT is a slug or a short slug (the name, for the latest run of it).
    """


@exp.command(name="ls")
@click.argument("project")
@store_options
@output_options
def ls(project: str) -> None:
    """List the experiments of PROJECT, oldest first."""
    found = [_summary(e) for e in _project(project).experiments]
    emit(
        found,
        lambda: table(
            [
                [
                    e["slug"],
                    e["author"],
                    e["created_at"],
                    ",".join(e["tags"]) or "-",
                    str(len(e["metrics"])),
                ]
                for e in found
            ],
            ["EXPERIMENT", "AUTHOR", "CREATED (UTC)", "TAGS", "METRICS"],
        ),
    )


def _artifact_rows(records: list[ArtifactRecord], where: str) -> list[dict[str, Any]]:
    return [
        {"in": where, "name": a.name, "handler": a.handler, "size": a.size, "hash": a.hash}
        for a in records
    ]


@exp.command()
@click.argument("project")
@click.argument("experiment")
@store_options
@output_options
def show(project: str, experiment: str) -> None:
    """Metrics, parameters, tags, tests and artifacts of EXPERIMENT."""
    found = _project(project)[experiment]
    data = _summary(found)
    data["dependencies"] = sorted(found.dependencies)
    data["tests"] = [
        {"name": t.name, "description": t.description, "metrics": dict(t.metrics)}
        for t in found.tests
    ]
    data["artifacts"] = _artifact_rows(found.saved_artifacts(), "experiment") + [
        row for t in found.tests for row in _artifact_rows(t.saved_artifacts(), f"test {t.name}")
    ]

    def text() -> Iterator[str]:
        yield f"experiment:  {data['slug']} ({data['name']}, by {data['author']})"
        yield f"created:     {data['created_at']}"
        yield f"tags:        {', '.join(data['tags']) or '-'}"
        for kind in ("parameters", "metrics"):
            for key, value in sorted(data[kind].items()):
                yield f"{kind[:-1]}:{'' if kind == 'parameters' else '   '} {key} = {_cell(value)}"
        for test in data["tests"]:
            metrics = ", ".join(f"{k}={_cell(v)}" for k, v in sorted(test["metrics"].items()))
            yield f"test:        {test['name']}: {metrics or '-'}"
        for a in data["artifacts"]:
            yield (
                f"artifact:    {a['name']} ({a['in']}, {a['handler']}, {human(a['size'])}, "
                f"blake3 {a['hash'][:16]})"
            )

    emit(data, text)


@exp.command()
@click.argument("project")
@click.argument("experiments", nargs=-1)
@click.option("--sort", "sort_by", metavar="METRIC", help="Order by this metric, highest first.")
@store_options
@output_options
def compare(project: str, experiments: tuple[str, ...], sort_by: str | None) -> None:
    """A table of the metrics and parameters of EXPERIMENTS (default: all)."""
    proj = _project(project)
    chosen = [proj[e] for e in experiments] if experiments else list(proj.experiments)
    rows = [_summary(e) for e in chosen]
    if sort_by is not None:
        if not any(sort_by in r["metrics"] for r in rows):
            raise CliError(f"no experiment compared has a metric {sort_by!r}", EXIT_NOT_FOUND)
        rows.sort(key=lambda r: _sort_key(r["metrics"].get(sort_by)), reverse=True)
    metrics = sorted({k for r in rows for k in r["metrics"]})
    params = sorted({k for r in rows for k in r["parameters"]})
    emit(
        {"metrics": metrics, "parameters": params, "experiments": rows},
        lambda: table(
            [
                [
                    r["slug"],
                    *(_cell(r["metrics"].get(m)) for m in metrics),
                    *(_cell(r["parameters"].get(p)) for p in params),
                ]
                for r in rows
            ],
            ["EXPERIMENT", *metrics, *(f"param:{p}" for p in params)],
        ),
    )


def _sort_key(value: Any) -> tuple[int, float]:
    # Experiments without the metric (or with a non-number) go last.
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return (1, float(value))
    return (0, 0.0)


@exp.command()
@click.argument("project")
@click.argument("experiment")
@click.argument("name")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--test", "test_name", metavar="TEST", help="The artifact of this test.")
@click.option("-f", "--force", is_flag=True, help="Replace DEST if it exists.")
@store_options
@output_options
def get(
    project: str, experiment: str, name: str, dest: Path, test_name: str | None, force: bool
) -> None:
    """Export artifact NAME of EXPERIMENT (or of its test --test) to DEST, verified."""
    found = _project(project)[experiment]
    holder: Any = found
    if test_name is not None:
        holder = next((t for t in found.tests if t.name == test_name), None)
        if holder is None:
            raise CliError(f"experiment {found.slug} has no test {test_name!r}", EXIT_NOT_FOUND)
    record = next((a for a in holder.saved_artifacts() if a.name == name), None)
    if record is None:
        holder.load_artifact(name)  # raises ArtifactNotFoundError naming what there is
        raise CliError(f"artifact {name!r} is not saved", EXIT_NOT_FOUND)
    if record.handler == "folder" and force:
        raise CliError(
            "--force does not replace a folder: remove it, or give a new DEST", EXIT_USAGE
        )
    target = export_target(dest, record.fname, force=force)
    if record.handler == "folder":
        holder.load_artifact(name, dest=target)
    else:
        with found.objects.open(record.hash, size=record.size, artifact=name) as stream:
            write_atomically(str(target), cast("IO[bytes]", stream))
    emit(
        {"experiment": found.slug, "name": name, "path": str(target), "hash": record.hash},
        lambda: [f"wrote {target}: {name} of {found.slug}, blake3 {record.hash} (verified)"],
        report=True,
    )
