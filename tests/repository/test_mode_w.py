"""Mode "w": the first save drops what was saved at open, and nothing else."""

from __future__ import annotations

from conftest import Location
from scribestore import Repository


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
