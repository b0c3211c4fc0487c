"""Which manifests the web view finds for a manifest, a directory or a store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scribestore import Project, Repository
from scribestore.exception import CorruptManifestError, ManifestNotFoundError
from scribestore.ui.catalog import Catalog
from scribestore.ui.views import repository_view
from support.locations import Location


def _kinds(catalog: Catalog) -> list[tuple[str, str]]:
    return [(e.kind, Path(e.url).name) for e in catalog.entries]


def test_a_directory_shows_both_manifests_in_it(store: Path, catalog: Catalog) -> None:
    assert _kinds(catalog) == [("project", "project.json"), ("repository", "repository.json")]
    repo = catalog.repository(next(e.id for e in catalog.entries if e.kind == "repository"))
    assert sorted(repo.saved_versions()) == ["config", "model"]


def test_a_manifest_shows_only_itself(store: Path) -> None:
    catalog = Catalog(str(store / "repository.json"), storage_options={})
    assert _kinds(catalog) == [("repository", "repository.json")]


def test_ids_are_stable_and_distinct(store: Path, catalog: Catalog) -> None:
    again = Catalog(str(store), storage_options={})
    assert [e.id for e in again.entries] == [e.id for e in catalog.entries]
    assert len({e.id for e in catalog.entries}) == len(catalog.entries)


def test_manifests_registered_with_the_store_are_found(tmp_path: Path) -> None:
    # Two repositories in subdirectories share one store at the top.
    for team in ("vision", "speech"):
        repo = Repository(
            tmp_path / team / "repository.json", mode="w", objects=tmp_path / "objects"
        )
        repo.log_artifact("notes", f"{team} notes", handler="text")
        repo.save()
    for target in (tmp_path, tmp_path / "objects"):
        catalog = Catalog(str(target), storage_options={})
        found = sorted(Path(e.url).parent.name for e in catalog.entries)
        assert found == ["speech", "vision"]
        entry = catalog.entries[0]
        assert catalog.repository(entry.id).load_artifact("notes").endswith("notes")


def test_a_manifest_the_store_registered_but_that_is_gone_is_left_out(tmp_path: Path) -> None:
    for team in ("vision", "speech"):
        repo = Repository(
            tmp_path / team / "repository.json", mode="w", objects=tmp_path / "objects"
        )
        repo.log_artifact("notes", "x", handler="text")
        repo.save()
    (tmp_path / "speech" / "repository.json").unlink()
    catalog = Catalog(str(tmp_path), storage_options={})
    assert [Path(e.url).parent.name for e in catalog.entries] == ["vision"]


@pytest.mark.parametrize("name", ["missing", "repository.jsno"])
def test_a_target_with_no_manifest_is_refused_by_name(tmp_path: Path, name: str) -> None:
    (tmp_path / "other.txt").write_text("not a manifest")
    with pytest.raises(ManifestNotFoundError, match=name):
        Catalog(str(tmp_path / name), storage_options={})


def test_a_file_that_is_not_a_manifest_is_refused_as_corrupt(tmp_path: Path) -> None:
    (tmp_path / "repository.json").write_text('{"format": "something else"}')
    with pytest.raises(CorruptManifestError, match="not a scribestore manifest"):
        Catalog(str(tmp_path / "repository.json"), storage_options={})
    (tmp_path / "lazy.json").write_text("[]")
    with pytest.raises(CorruptManifestError, match="import-lazyscribe"):
        Catalog(str(tmp_path / "lazy.json"), storage_options={})


def test_a_damaged_manifest_in_a_directory_is_listed_with_its_problem(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="w")
    repo.log_artifact("notes", "x", handler="text")
    repo.save()
    (tmp_path / "repository.json").write_text("garbage{")
    (entry,) = Catalog(str(tmp_path), storage_options={}).entries
    assert entry.kind == "repository"
    assert entry.problem is not None and "not a scribestore manifest" in entry.problem


def test_one_spelling_of_a_place_gives_one_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = Repository(tmp_path / "store" / "repository.json", mode="w")
    repo.log_artifact("notes", "x", handler="text")
    repo.save()
    monkeypatch.chdir(tmp_path)
    ids = set()
    for target in ("store", "./store", str(tmp_path / "store"), f"file://{tmp_path}/store"):
        (entry,) = Catalog(target, storage_options={}).entries
        ids.add(entry.id)
    assert len(ids) == 1


def _record(tmp_path: Path, url: str, kind: str = "repository") -> None:
    records = tmp_path / "objects" / "manifests"
    (records / f"{abs(hash(url)):x}.json").write_text(json.dumps({"url": url, "kind": kind}))


def test_unreachable_registered_manifests_are_noted_not_fatal(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="w")
    repo.log_artifact("notes", "x", handler="text")
    repo.save()
    _record(tmp_path, "nosuchproto://bucket/x.json")
    _record(tmp_path, "memory://nowhere/repository.json")  # reachable, but gone: left out
    catalog = Catalog(str(tmp_path), storage_options={})
    assert [Path(e.url).name for e in catalog.entries] == ["repository.json"]
    (problem,) = catalog.problems
    assert "nosuchproto://bucket/x.json is unreachable" in problem


def test_a_damaged_registry_is_noted_and_the_directory_still_shown(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="w")
    repo.log_artifact("notes", "x", handler="text")
    repo.save()
    (tmp_path / "objects" / "manifests" / "bad.json").write_text("{not json")
    catalog = Catalog(str(tmp_path), storage_options={})
    assert len(catalog.entries) == 1 and "registry" in catalog.problems[0]


def test_the_manifests_own_format_decides_its_kind(tmp_path: Path) -> None:
    store = tmp_path / "team" / "objects"
    project = Project(tmp_path / "other" / "project.json", mode="w", objects=store)
    with project.log("exp") as exp:
        exp.log_metric("m", 1)
    project.save()
    for record in (store / "manifests").iterdir():
        record.unlink()  # only a record that calls the project a repository is left
    _record(tmp_path / "team", str(tmp_path / "other" / "project.json"), kind="repository")
    (entry,) = Catalog(str(tmp_path / "team"), storage_options={}).entries
    assert entry.kind == "project"


def test_asking_for_the_wrong_kind_or_an_unknown_id_is_not_found(catalog: Catalog) -> None:
    project = next(e for e in catalog.entries if e.kind == "project")
    with pytest.raises(ManifestNotFoundError, match="is a project"):
        catalog.repository(project.id)
    with pytest.raises(ManifestNotFoundError, match="no manifest with id"):
        catalog.project("0" * 12)


def test_every_backend_is_browsable(location: Location) -> None:
    repo = Repository(location.join("repository.json"), mode="w", **location.options)
    repo.log_artifact("notes", "on every backend", handler="text")
    repo.save()
    catalog = Catalog(location.url, storage_options=location.options)
    (entry,) = catalog.entries
    assert entry.kind == "repository" and entry.url == location.join("repository.json")
    view = repository_view(catalog.repository(entry.id))
    assert [a.name for a in view.artifacts] == ["notes"]
    assert view.stored_bytes > 0 and view.missing_objects == 0
