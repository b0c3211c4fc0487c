"""Mode "w": the first save drops what was saved at open, and nothing else."""

from __future__ import annotations

import pytest

from scribestore import Repository
from support.helpers import seal
from support.locations import Location


def test_two_w_repositories_keep_each_others_versions(location: Location) -> None:
    fpath = location.join("repository.json")
    old = Repository(fpath, mode="w", **location.options)
    old.log_artifact("a", "old", "text")
    old.save()
    first = Repository(fpath, mode="w", **location.options)
    second = Repository(fpath, mode="w", **location.options)
    first.log_artifact("a", "first", "text")
    first.save()  # drops "old"
    second.log_artifact("b", "second", "text")
    second.save()  # must keep "first": it was committed after second opened
    repo = Repository(fpath, mode="r", **location.options)
    assert repo.load_artifact("a") == "first"
    assert repo.load_artifact("b") == "second"
    assert [(m["name"], m["version"]) for m in repo] == [("a", 0), ("b", 0)]


def test_version_at_the_end_of_time_gives_a_named_error(tmp_path) -> None:
    import json

    from scribestore import ArtifactLogError

    fpath = tmp_path / "repository.json"
    repo = Repository(fpath, mode="w")
    repo.log_artifact("a", [1], "json")
    repo.save()
    doc = json.loads(fpath.read_text())
    doc["artifacts"]["a"][0]["created_at"] = "9999-12-31T23:59:59.999999Z"
    fpath.write_bytes(seal(doc))
    before = fpath.read_bytes()
    with pytest.raises(ArtifactLogError, match="last representable time"):
        Repository(fpath, mode="a").log_artifact("a", [2], "json")
    assert fpath.read_bytes() == before
