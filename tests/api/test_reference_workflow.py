"""The reference page's repository workflow, with only the import line changed."""

from __future__ import annotations

import pytest

from scribestore import Repository
from support.locations import Location


def test_reference_repository_workflow(location: Location) -> None:
    fpath = location.join("repository.json")
    opts = location.options

    repository = Repository(fpath, mode="w", **opts)
    repository.log_artifact(name="features", value=[0, 1, 2], handler="json", indent=4)
    repository.save()

    repository = Repository(fpath, mode="r", **opts)
    features = repository.load_artifact(name="features")
    assert features == [0, 1, 2]

    repository = Repository(fpath, mode="a", **opts)
    repository.log_artifact(name="features", value=[0, 1, 2, 3], handler="json", indent=4)
    repository.save()

    repository = Repository(fpath, mode="r", **opts)
    newest = repository.load_artifact("features")
    oldest = repository.load_artifact("features", version=0)
    assert newest == [0, 1, 2, 3]
    assert oldest == [0, 1, 2]

    first = repository.get_artifact_metadata("features", version=0)["timestamp"]
    second = repository.get_artifact_metadata("features", version=1)["timestamp"]
    on_this_date = repository.load_artifact("features", version=first)
    assert on_this_date == [0, 1, 2]
    as_of_first = repository.load_artifact("features", version=first, match="asof")
    assert as_of_first == [0, 1, 2]
    as_of_second = repository.load_artifact("features", version=second, match="asof")
    assert as_of_second == [0, 1, 2, 3]
    # The page's format: a timestamp of second precision.
    whole_second = second[:19]
    assert repository.load_artifact("features", version=whole_second, match="asof") == [
        0,
        1,
        2,
        3,
    ]
    with pytest.raises(Exception, match="read-only"):
        repository.log_artifact(name="features", value=[9], handler="json")
