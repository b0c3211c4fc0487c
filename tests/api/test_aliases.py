"""Aliases: named, movable pointers to saved versions, written at once and recorded."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scribestore import (
    ArtifactLoadError,
    CorruptManifestError,
    InvalidVersionError,
    ReadOnlyError,
    Repository,
    VersionNotFoundError,
)
from scribestore.core.aliases import alias_selector, validate_alias
from scribestore.manifest.schema import ALIAS_PATTERN
from support.helpers import seal
from support.locations import Location


def _three_versions(fpath: object, **options: object) -> Repository:
    repo = Repository(fpath, mode="a", **options)
    for text in ("v0", "v1", "v2"):
        repo.log_artifact("model", text, "text")
    repo.save()
    return repo


def test_an_alias_selects_its_version_everywhere(location: Location) -> None:
    fpath = location.join("repository.json")
    repo = _three_versions(fpath, **location.options)
    info = repo.set_alias("model", "production", version=1)
    assert (info.name, info.alias, info.version, info.moved_by) == (
        "model",
        "production",
        1,
        getpass.getuser(),
    )
    # Written at once: a fresh reader sees it without a save().
    reader = Repository(fpath, mode="r", **location.options)
    assert reader.load_artifact("model", version="@production") == "v1"
    assert reader.get_artifact_metadata("model", version="@production")["version"] == 1
    with reader.open_artifact("model", version="@production") as stream:
        assert stream.read() == b"v1"
    assert [a.alias for a in reader.aliases()] == ["production"]


def test_moving_an_alias_records_every_move(tmp_path: Path) -> None:
    repo = _three_versions(tmp_path / "repository.json")
    repo.set_alias("model", "production", version=0)
    repo.set_alias("model", "production")  # the newest
    assert repo.load_artifact("model", version="@production") == "v2"
    moves = repo.alias_history("model", "production")
    assert [m.target.version for m in moves if m.target] == [0, 2]
    assert moves[0].moved_at <= moves[1].moved_at
    assert all(m.moved_by == getpass.getuser() for m in moves)
    # Promotion goes forward in time only; an alias may point backwards.
    repo.set_alias("model", "production", version=0)
    assert repo.load_artifact("model", version="@production") == "v0"


def test_a_save_opened_before_the_alias_keeps_it(location: Location) -> None:
    fpath = location.join("repository.json")
    _three_versions(fpath, **location.options)
    writer = Repository(fpath, mode="a", **location.options)  # opened before the alias
    Repository(fpath, mode="a", **location.options).set_alias("model", "candidate", version=2)
    writer.log_artifact("model", "v3", "text")
    writer.save()
    reader = Repository(fpath, mode="r", **location.options)
    assert reader.load_artifact("model", version="@candidate") == "v2"
    assert reader.load_artifact("model") == "v3"


def test_removed_alias_is_not_found_and_its_history_stays(tmp_path: Path) -> None:
    fpath = tmp_path / "repository.json"
    repo = _three_versions(fpath)
    repo.set_alias("model", "candidate", version=2)
    repo.remove_alias("model", "candidate")
    reader = Repository(fpath, mode="r")
    with pytest.raises(VersionNotFoundError, match="no alias 'candidate'"):
        reader.load_artifact("model", version="@candidate")
    assert reader.aliases("model") == []
    assert [m.target is None for m in reader.alias_history("model", "candidate")] == [
        False,
        True,
    ]
    with pytest.raises(VersionNotFoundError):
        repo.remove_alias("model", "candidate")


def test_bad_aliases_and_targets_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    fpath = tmp_path / "repository.json"
    repo = _three_versions(fpath)
    before = fpath.read_bytes()
    for bad in ("bad alias", "3", "2026-01-02", "2026-01-02-rc", "-x", "a" * 101):
        with pytest.raises(InvalidVersionError):
            repo.set_alias("model", bad)
    with pytest.raises(InvalidVersionError):
        repo.alias_history("model", "bad alias")
    with pytest.raises(InvalidVersionError):
        repo.load_artifact("model", version="@bad alias")
    with pytest.raises(InvalidVersionError, match="exactly"):
        repo.load_artifact("model", version="@production", match="asof")
    with pytest.raises(VersionNotFoundError):
        repo.set_alias("model", "production", version=7)
    repo.log_artifact("model", "unsaved", "text")
    with pytest.raises(ArtifactLoadError, match="not been saved"):
        repo.set_alias("model", "production", version=3)
    with pytest.raises(ReadOnlyError):
        Repository(fpath, mode="r").set_alias("model", "production")
    assert fpath.read_bytes() == before
    repo.discard_queued("model")


def test_format_version_rises_only_with_aliases(tmp_path: Path) -> None:
    fpath = tmp_path / "repository.json"
    repo = _three_versions(fpath)
    assert json.loads(fpath.read_text())["format_version"] == 2
    repo.set_alias("model", "production")
    assert json.loads(fpath.read_text())["format_version"] == 3
    # A version-2 document cannot carry aliases (an older reader would drop them).
    doc = json.loads(fpath.read_text())
    doc["format_version"] = 2
    fpath.write_bytes(seal(doc))
    with pytest.raises(CorruptManifestError, match="aliases need version 3"):
        Repository(fpath, mode="r")


def test_mode_w_drops_aliases_of_the_versions_it_drops(tmp_path: Path) -> None:
    fpath = tmp_path / "repository.json"
    _three_versions(fpath).set_alias("model", "production", version=1)
    fresh = Repository(fpath, mode="w")
    fresh.log_artifact("model", "new", "text")
    fresh.save()
    reader = Repository(fpath, mode="r")
    assert reader.aliases() == []
    with pytest.raises(VersionNotFoundError):
        reader.load_artifact("model", version="@production")


def test_an_alias_follows_its_version_when_numbers_change(tmp_path: Path) -> None:
    fpath = tmp_path / "repository.json"
    old = Repository(fpath, mode="a")
    old.log_artifact("model", "old", "text")
    old.save()
    rewriting = Repository(fpath, mode="w")  # will drop "old" (version 0)
    other = Repository(fpath, mode="a")
    other.log_artifact("model", "kept", "text")
    other.save()  # version 1, committed after `rewriting` opened
    other.set_alias("model", "production", version=1)
    rewriting.log_artifact("model", "new", "text")
    rewriting.save()
    reader = Repository(fpath, mode="r")
    assert reader.load_artifact("model", version="@production") == "kept"
    assert reader.aliases("model")[0].version == 0


def test_a_filtered_view_resolves_aliases_among_its_versions(tmp_path: Path) -> None:
    repo = _three_versions(tmp_path / "repository.json")
    repo.set_alias("model", "production", version=2)
    view = repo.filter([("model", 2)])
    assert view.load_artifact("model", version="@production") == "v2"
    repo.set_alias("model", "old", version=0)
    with pytest.raises(VersionNotFoundError, match="not among the versions"):
        repo.filter([("model", 2)]).load_artifact("model", version="@old")


@given(st.text(max_size=120))
def test_alias_names_are_exactly_the_documented_pattern(text: str) -> None:
    import re

    if re.match(ALIAS_PATTERN, text) and not re.match(r"[0-9]+\Z|[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        assert validate_alias(text) == text
        assert alias_selector("@" + text) == text
    else:
        with pytest.raises(InvalidVersionError):
            validate_alias(text)
    if not text.startswith("@"):
        assert alias_selector(text) is None  # a number or timestamp, never an alias


def test_an_alias_moved_from_a_stale_repository_records_the_number_saved(
    tmp_path: Path,
) -> None:
    fpath = tmp_path / "repository.json"
    old = Repository(fpath, mode="a")
    old.log_artifact("model", "old", "text")
    old.save()
    rewriting = Repository(fpath, mode="w")
    stale = Repository(fpath, mode="a")
    stale.log_artifact("model", "kept", "text")
    stale.save()  # version 1 as stale knows it
    rewriting.log_artifact("model", "new", "text")
    rewriting.save()  # drops version 0: "kept" is version 0 now
    info = stale.set_alias("model", "production", version=1)
    assert info.version == 0
    assert Repository(fpath, mode="r").load_artifact("model", version="@production") == "kept"


def test_moves_are_recorded_for_users_without_a_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import getpass as getpass_module

    def no_name() -> str:
        raise KeyError("getpwuid(): uid not found")

    monkeypatch.setattr(getpass_module, "getuser", no_name)
    repo = _three_versions(tmp_path / "repository.json")
    assert repo.set_alias("model", "production").moved_by.startswith("uid:")


def test_alias_moves_on_a_lazyscribe_manifest_keep_its_original(tmp_path: Path) -> None:
    import lazyscribe

    fpath = tmp_path / "repository.json"
    old = lazyscribe.Repository(fpath, mode="w")
    old.log_artifact("cfg", {"a": 1}, handler="json")
    old.save()
    original = fpath.read_bytes()
    Repository(fpath, mode="a").set_alias("cfg", "production")
    assert (tmp_path / "repository.json.lazyscribe").read_bytes() == original
    assert Repository(fpath, mode="r").load_artifact("cfg", version="@production") == {"a": 1}
