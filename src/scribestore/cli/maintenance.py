"""Commands on whole stores: verify, du, gc, import-lazyscribe."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import click
import msgspec

from scribestore.cli.app import (
    EXIT_ERROR,
    EXIT_INTEGRITY,
    CliError,
    cli,
    emit,
    human,
    manifest_kind,
    output_options,
    parse_option_value,
    settings,
    store_options,
)
from scribestore.migrate import import_lazyscribe
from scribestore.ops.fsck import FsckReport, check_store, repair_store
from scribestore.ops.gc import DEFAULT_GRACE, collect_garbage
from scribestore.ops.journal import DEFAULT_RETENTION
from scribestore.ops.verify import VerifyReport
from scribestore.project import Project
from scribestore.repository import Repository

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scribestore.store.objects import ObjectStore

__all__ = ["Reference", "references"]


@dataclasses.dataclass
class Reference:
    """One artifact version a manifest points at."""

    artifact: str
    version: int | None
    experiment: str | None
    test: str | None
    hash: str
    size: int

    @property
    def label(self) -> str:
        if self.experiment is None:
            return f"{self.artifact}@{self.version}"
        parts = [self.experiment, *([self.test] if self.test else []), self.artifact]
        return "/".join(parts)


def references(url: str) -> tuple[Repository | Project, ObjectStore, list[Reference]]:
    """The manifest at ``url``, its object store, and every version it references.

    Raises:
        CliError: no manifest at ``url`` (exit 3).
        CorruptManifestError: not a scribestore manifest.
    """
    s = settings()
    kind = manifest_kind(url, s.storage_options)
    refs: list[Reference] = []
    if kind == "repository":
        repo = Repository(url, mode="r", objects=s.objects, **s.storage_options)
        refs = [Reference(m["name"], m["version"], None, None, m["hash"], m["size"]) for m in repo]
        return repo, repo.objects, refs
    project = Project(url, mode="r", objects=s.objects, **s.storage_options)
    for exp in project.experiments:
        for a in exp.saved_artifacts():
            refs.append(Reference(a.name, None, exp.slug, None, a.hash, a.size))
        for test in exp.tests:
            for a in test.saved_artifacts():
                refs.append(Reference(a.name, None, exp.slug, test.name, a.hash, a.size))
    return project, project.objects, refs


# --- verify -----------------------------------------------------------------------


_Key = tuple[str, "int | None", "str | None", "str | None"]


def _problems(report: VerifyReport) -> dict[_Key, tuple[str, str]]:
    """(status, detail) of each reference the library's verify found a problem with."""
    return {
        (p.artifact, p.version, p.experiment, p.test): (p.kind, p.message) for p in report.problems
    }


@cli.command()
@click.argument("manifest")
@store_options
@output_options
def verify(manifest: str) -> None:
    """Read every version a manifest references and check its hash.

    MANIFEST is a repository.json or a project.json. Each version is
    reported ok, missing (its object is gone) or corrupt (its bytes do not
    match). Exits 4 if any version is missing or corrupt.
    """
    s = settings()
    target, _, refs = references(manifest)
    problems = _problems(target.verify(progress=s.progress()))
    ok = ("ok", "")
    results = [
        (ref, *problems.get((ref.artifact, ref.version, ref.experiment, ref.test), ok))
        for ref in refs
    ]
    counts = {"ok": 0, "missing": 0, "corrupt": 0, "unsupported": 0}
    for _, status, _ in results:
        counts[status] = counts.get(status, 0) + 1
    data = {
        "manifest": manifest,
        "versions": len(results),
        **counts,
        "results": [
            {**dataclasses.asdict(ref), "status": status, "detail": detail or None}
            for ref, status, detail in results
        ],
    }

    def text() -> Iterator[str]:
        for ref, status, detail in results:
            if status != "ok" or not s.quiet:
                yield f"{status.upper():<8} {ref.label}  {ref.hash[:16]}" + (
                    f"  {detail}" if detail else ""
                )
        summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n or k == "ok")
        yield f"{len(results)} version(s) checked: {summary}"

    emit(data, text)
    bad = len(results) - counts["ok"]
    if bad:
        damaged = counts["missing"] + counts["corrupt"]
        raise CliError(
            f"{bad} of {len(results)} version(s) in {manifest} failed verification",
            EXIT_INTEGRITY if damaged else EXIT_ERROR,
        )


# --- du ---------------------------------------------------------------------------


@cli.command()
@click.argument("manifest")
@store_options
@output_options
def du(manifest: str) -> None:
    """Logical versus stored bytes, and the deduplication ratio.

    Logical bytes count every version of MANIFEST in full, as separate
    copies of each file would take. Stored bytes are what MANIFEST's objects
    take on storage after deduplication, chunking and compression (each
    object and chunk once, however many versions share it); the object
    store's own totals, which include what other manifests sharing it
    hold, are listed separately.
    """
    _, objects, refs = references(manifest)
    distinct = {r.hash: r.size for r in refs}
    present = [h for h in distinct if objects.has(h)]
    missing = len(distinct) - len(present)
    logical = sum(r.size for r in refs)
    stored = objects.stored_bytes(present)
    stats = objects.stats()
    data: dict[str, Any] = {
        "manifest": manifest,
        "versions": len(refs),
        "distinct_contents": len(distinct),
        "logical_bytes": logical,
        "distinct_bytes": sum(distinct.values()),
        "stored_bytes": stored,
        "dedup_ratio": round(logical / stored, 4) if stored else None,
        "missing_objects": missing,
        "store": {
            "url": objects.url,
            "objects": stats.objects,
            "logical_bytes": stats.logical_size,
            "stored_bytes": stats.stored_size,
        },
    }

    def text() -> Iterator[str]:
        ratio = data["dedup_ratio"]
        rows = [
            ["versions", f"{len(refs)} ({len(distinct)} distinct contents)"],
            ["logical", f"{human(logical)} ({logical} bytes, every version in full)"],
            ["distinct", f"{human(data['distinct_bytes'])} (each content once)"],
            ["stored", f"{human(stored)} ({stored} bytes on storage)"],
            ["dedup ratio", f"{ratio:.2f}x" if ratio is not None else "-"],
            [
                "object store",
                f"{stats.objects} objects, {human(stats.stored_size)} in all, in {objects.url}",
            ],
        ]
        if missing:
            rows.append(["MISSING", f"{missing} object(s) referenced but absent; run verify"])
        yield from (f"{k + ':':<14}{v}" for k, v in rows)

    emit(data, text)


# --- gc ---------------------------------------------------------------------------


def _gc_text(report: dict[str, Any]) -> Iterator[str]:
    verb = "would free" if report["dry_run"] else "freed"
    yield f"{verb} {human(int(report['freed_bytes']))}"
    if report["next_run_after"] is not None:
        yield (
            f"a second run after {report['next_run_after']} frees "
            f"{human(int(report['later_bytes']))} more (packs are condemned first, "
            "then deleted once the grace period has passed)"
        )
    skip = ("freed_bytes", "dry_run", "manifests", "later_bytes", "next_run_after")
    for key, value in report.items():
        if key not in skip:
            count = len(value) if isinstance(value, (list, tuple)) else value
            yield f"{key.replace('_', ' ')}: {count}"


@cli.command()
@click.argument("manifest")
@click.option("--dry-run", is_flag=True, help="Report what would be deleted; delete nothing.")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Keep unreferenced objects younger than this (default: the library's, 1 hour).",
)
@click.option(
    "--forget",
    multiple=True,
    metavar="URL",
    help="A registered manifest that was deleted on purpose (repeatable).",
)
@click.option(
    "--keep-journal",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Keep replaced manifest states restorable this long (default 7 days).",
)
@store_options
@output_options
def gc(
    manifest: str,
    *,
    dry_run: bool,
    grace: float | None,
    forget: tuple[str, ...],
    keep_journal: float | None,
) -> None:
    """Delete objects that no manifest using MANIFEST's object store references.

    Every manifest registered with the store is marked from, MANIFEST
    included, so objects other repositories and projects use are kept. A
    registered manifest that cannot be found stops gc unless --forget names it.
    """
    s = settings()
    kind = manifest_kind(manifest, s.storage_options)
    _, objects, _ = references(manifest)
    report = collect_garbage(
        objects,
        grace=DEFAULT_GRACE if grace is None else dt.timedelta(seconds=grace),
        dry_run=dry_run,
        manifests=[(manifest, kind)],
        forget=forget,
        keep_journal=DEFAULT_RETENTION
        if keep_journal is None
        else dt.timedelta(seconds=keep_journal),
        progress=s.progress(unit="file"),
        **s.storage_options,
    )
    plain = msgspec.to_builtins(report)
    emit(plain, lambda: _gc_text(plain))


@cli.command()
@click.argument("manifest")
@click.option(
    "--repair",
    is_flag=True,
    help="Also fix what can be fixed: remove packs without an index, stale leases.",
)
@store_options
@output_options
def fsck(manifest: str, *, repair: bool) -> None:
    """Check every object, pack and file of MANIFEST's object store.

    Exits 0 when nothing is wrong, with the integrity exit code otherwise.
    """
    _, objects, _ = references(manifest)
    repaired = msgspec.to_builtins(repair_store(objects)) if repair else None
    report = check_store(objects)
    plain = {"ok": report.ok, **msgspec.to_builtins(report), "repaired": repaired}
    emit(plain, lambda: _fsck_text(report, repaired))
    if not report.ok:
        raise CliError(f"{len(report.problems)} problem(s) in {objects.url}", EXIT_INTEGRITY)


def _fsck_text(report: FsckReport, repaired: Any) -> Iterator[str]:
    if repaired:
        for key, value in repaired.items():
            count = len(value) if isinstance(value, (list, tuple)) else value
            yield f"repaired: {key.replace('_', ' ')}: {count}"
    yield (
        f"{report.objects_checked} objects, {report.packs_checked} packs, "
        f"{report.chunks_checked} chunks checked"
    )
    for problem in report.problems:
        yield f"{problem.kind}: {problem.path}: {problem.message}"
    if report.ok:
        yield "ok"


# --- import -----------------------------------------------------------------------


def _pairs(values: Iterable[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise click.BadParameter(f"expected {what}, got {item!r}")
        out[key] = value
    return out


@cli.command(name="import-lazyscribe")
@click.argument("source")
@click.argument("dest")
@click.option(
    "--source-option",
    metavar="KEY=VALUE",
    multiple=True,
    help="fsspec option for reading SOURCE. Repeatable.",
)
@click.option(
    "--map-handler",
    metavar="LAZYSCRIBE=SCRIBESTORE",
    multiple=True,
    help="Import a lazyscribe handler alias with this scribestore handler. Repeatable.",
)
@store_options
@output_options
def import_lazyscribe_command(
    source: str, dest: str, source_option: tuple[str, ...], map_handler: tuple[str, ...]
) -> None:
    """Import a lazyscribe repository.json or project.json into DEST.

    Every version is imported with its timestamp, expiry, file name and
    handler; the artifact files are stored as they are (deduplicated), so
    each version's hash is the BLAKE3 of its lazyscribe file. SOURCE is only
    read. Running it again adds only what is new.
    """
    s = settings()
    pairs = _pairs(source_option, "KEY=VALUE")
    source_options = {k: parse_option_value(v) for k, v in pairs.items()}
    report = import_lazyscribe(
        source,
        dest,
        objects=s.objects,
        source_options=source_options,
        handler_map=_pairs(map_handler, "ALIAS=HANDLER"),
        progress=s.progress(),
        **s.storage_options,
    )
    data = report.to_dict()

    def text() -> Iterator[str]:
        if report.kind == "project":
            yield (
                f"imported {report.experiments_added} experiment(s) "
                f"({report.versions_added} artifact(s)); "
                f"{report.experiments_skipped} already present"
            )
        else:
            yield (
                f"imported {report.versions_added} version(s); "
                f"{report.versions_skipped} already present"
                + (
                    f"; {report.expiries_updated} expiry(ies) updated"
                    if report.expiries_updated
                    else ""
                )
            )
        fallbacks = {k: v for k, v in report.handlers.items() if k != v}
        if fallbacks:
            yield "handlers: " + ", ".join(f"{k} -> {v}" for k, v in fallbacks.items())
        if not report.changed:
            yield f"{dest} is unchanged"

    emit(data, text, report=True)
