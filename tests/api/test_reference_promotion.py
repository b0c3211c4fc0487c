"""The reference page's project-to-repository flow, with only the import changed."""

from __future__ import annotations

import pytest

from scribestore import ManifestNotFoundError, Project, Repository
from support.locations import Location


def test_reference_promotion_flow(location: Location) -> None:
    opts = location.options
    project_path = location.join("project.json")
    repo_path = location.join("repository.json")

    project = Project(project_path, **opts)
    with project.log("my-experiment") as exp:
        exp.log_artifact(name="features", value=[0, 1, 2], handler="json", indent=4)
    project.save()

    project = Project(project_path, mode="r", **opts)
    repository = Repository(repo_path, **opts)
    project["my-experiment"].promote_artifact(repository, "features")

    reread = Repository(repo_path, mode="r", **opts)
    assert reread.load_artifact("features") == [0, 1, 2]
    meta = reread.get_artifact_metadata("features")
    exp_meta = project["my-experiment"].to_dict()["artifacts"][0]
    assert meta["hash"] == exp_meta["hash"]
    assert meta["timestamp"] == exp_meta["timestamp"]
    assert meta["handler"] == "json"


def test_reference_unsaved_promotion_is_a_log(location: Location) -> None:
    opts = location.options
    project = Project(location.join("project.json"), **opts)
    repository = Repository(location.join("repository.json"), **opts)
    with project.log("my-experiment") as exp:
        exp.log_artifact(name="features", value=[0, 1, 2], handler="json", indent=4)
    project["my-experiment"].promote_artifact(repository, "features")
    # Queued like log_artifact: nothing is written until the repository is saved.
    with pytest.raises(ManifestNotFoundError):
        Repository(location.join("repository.json"), mode="r", **opts)
    assert "features" in repository
    assert repository.get_artifact_metadata("features")["saved"] is False
    repository.save()
    assert Repository(location.join("repository.json"), mode="r", **opts).load_artifact(
        "features"
    ) == [0, 1, 2]
