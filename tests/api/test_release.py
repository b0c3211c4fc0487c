"""Releases (``scribestore.release``): lazyscribe's API, plus recorded hashes."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from pathlib import Path

import blake3
import pytest

from scribestore import IntegrityError, ModeError, Repository, VersionNotFoundError
from scribestore import release as lzr


def saved_repository(tmp_path: Path) -> Path:
    fpath = tmp_path / "repo" / "repository.json"
    repo = Repository(fpath, mode="w")
    repo.log_artifact("data", [{"a": 1}], handler="json")
    repo.log_artifact("features", [0], handler="json")
    repo.log_artifact("data", [{"a": 2}], handler="json")
    repo.save()
    return fpath


def releases() -> list[lzr.Release]:
    return [
        lzr.Release("v0.1.0", [("a", 0)], created_at=dt.datetime(2025, 1, 1)),
        lzr.Release("v0.2.0", [("a", 1)], created_at=dt.datetime(2025, 3, 1)),
    ]


def test_create_release_records_versions_and_hashes(tmp_path: Path) -> None:
    fpath = saved_repository(tmp_path)
    with pytest.raises(ModeError) as raised:
        lzr.create_release(Repository(fpath, mode="a"), "v1")
    assert isinstance(raised.value, RuntimeError)
    repo = Repository(fpath, mode="r")
    release = lzr.create_release(repo, "v1")
    assert release.artifacts == [("data", 1), ("features", 0)]
    same = lzr.Release("v1", [("data", 1), ("features", 0)], created_at=release.created_at)
    assert release == same  # hashes are not compared
    expected = blake3.blake3(json.dumps([{"a": 2}]).encode()).hexdigest()
    assert release.hashes["data"] == expected
    assert release.created_at.tzinfo is None
    assert lzr.Release.from_dict(release.to_json()).hashes == release.hashes
    assert "hashes" not in release.to_dict()  # lazyscribe's keys


def test_find_release_exact_asof_and_latest() -> None:
    found = releases()
    assert lzr.find_release(found).tag == "v0.2.0"
    assert lzr.find_release(found, "v0.1.0").tag == "v0.1.0"
    assert lzr.find_release(found, dt.datetime(2025, 3, 1)).tag == "v0.2.0"
    assert lzr.find_release(found, dt.datetime(2025, 2, 1), match="asof").tag == "v0.1.0"
    with pytest.raises(VersionNotFoundError):
        lzr.find_release(found, "v9")
    with pytest.raises(VersionNotFoundError):
        lzr.find_release(found, dt.datetime(2025, 2, 1))
    with pytest.raises(VersionNotFoundError):
        lzr.find_release(found, dt.datetime(2024, 1, 1), match="asof")
    with pytest.raises(ValueError):
        lzr.find_release(found, "v0.1.0", match="asof")
    with pytest.raises(ValueError):
        lzr.find_release(found, "v0.1.0", match="nearest")  # type: ignore[arg-type]


def plain(found: list[lzr.Release]) -> list[tuple[object, ...]]:
    # Loaded artifacts are JSON's lists, as in lazyscribe.
    return [(r.tag, [tuple(a) for a in r.artifacts], r.created_at) for r in found]


def test_dump_and_load_round_trip_and_read_lazyscribe_files() -> None:
    text = lzr.dumps(releases())
    assert plain(lzr.loads(text)) == plain(releases())
    buf = io.StringIO()
    lzr.dump(releases(), buf)
    assert plain(lzr.load(io.StringIO(buf.getvalue()))) == plain(releases())
    lazyscribe_text = (
        '[{"tag": "v1", "artifacts": [["a", 0]], "created_at": "2025-01-01T00:00:00"}]'
    )
    (only,) = lzr.loads(lazyscribe_text)
    assert only.artifacts == [["a", 0]] and only.hashes == {}


def test_release_from_toml_adds_each_release_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fpath = saved_repository(tmp_path)
    cfg = f'[project]\nversion = "1.0.0"\n[tool.lazyscribe]\nrepositories = ["{fpath}"]\n'
    lzr.release_from_toml(cfg)
    written = fpath.parent / "releases.json"
    (first,) = lzr.loads(written.read_text())
    assert first.tag == "1.0.0" and first.artifacts == [["data", 1], ["features", 0]]
    with caplog.at_level(logging.WARNING):
        lzr.release_from_toml(cfg)
    assert "already exists" in caplog.text
    assert len(lzr.loads(written.read_text())) == 1
    custom = (
        f'[tool.lazyscribe]\nversion = "2.0"\nformat = "v{{version}}"\nrepositories = ["{fpath}"]\n'
    )
    with pytest.warns(DeprecationWarning):
        lzr.release_from_toml(custom)
    assert [r.tag for r in lzr.loads(written.read_text())] == ["1.0.0", "v2.0"]


def test_minimal_repository_holds_the_release_bit_for_bit(tmp_path: Path) -> None:
    fpath = saved_repository(tmp_path)
    repo = Repository(fpath, mode="r")
    release = lzr.create_release(repo, "v1")
    target = tmp_path / "minimal"
    lzr.minimal_repository_from_release(target, repo, release)
    small = Repository(target / "repository.json", mode="r")
    assert sorted({a.name for a in small.artifacts}) == ["data", "features"]
    assert len(small.artifacts) == 2
    assert small.load_artifact("data") == [{"a": 2}]
    assert small.get_artifact_metadata("data")["hash"] == release.hashes["data"]
    assert (
        small.get_artifact_metadata("data")["timestamp"]
        == repo.get_artifact_metadata("data")["timestamp"]
    )
    assert small.verify().ok
    view = lzr.check_release(repo, release)
    assert view.load_artifact("data") == [{"a": 2}]


def test_a_rewritten_repository_fails_the_release_check(tmp_path: Path) -> None:
    fpath = saved_repository(tmp_path)
    release = lzr.create_release(Repository(fpath, mode="r"), "v1")
    rewrite = Repository(fpath, mode="w")
    rewrite.log_artifact("data", ["other"], handler="json")
    rewrite.log_artifact("data", ["other 2"], handler="json")
    rewrite.log_artifact("features", [0], handler="json")
    rewrite.save()
    with pytest.raises(IntegrityError, match="data"):
        lzr.check_release(Repository(fpath, mode="r"), release)
    with pytest.raises(IntegrityError):
        lzr.minimal_repository_from_release(
            tmp_path / "minimal", Repository(fpath, mode="r"), release
        )
    assert not (tmp_path / "minimal" / "repository.json").exists()


def test_find_release_checks_its_arguments_first() -> None:
    for bad in ({"version": "v1", "match": "asof"}, {"version": "v1", "match": "nearest"}):
        with pytest.raises(ValueError) as raised:
            lzr.find_release([], **bad)  # type: ignore[arg-type]
        assert not isinstance(raised.value, VersionNotFoundError)
    with pytest.raises(VersionNotFoundError):
        lzr.find_release([])
    with pytest.raises(ValueError):
        lzr.find_release(releases(), 5)  # type: ignore[arg-type]


def test_malformed_releases_raise_value_or_key_errors() -> None:
    for bad in (
        {"tag": "v1", "artifacts": 5, "created_at": "2025-01-01T00:00:00"},
        {"tag": "v1", "artifacts": [], "created_at": None},
        ["not", "a", "dict"],
    ):
        with pytest.raises(ValueError):
            lzr.Release.from_dict(bad)  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        lzr.Release.from_dict({"tag": "v1"})
