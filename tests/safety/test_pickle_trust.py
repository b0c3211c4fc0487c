"""The pickle switch: stores opened untrusted refuse loads that would run stored code."""

from __future__ import annotations

import pathlib
import pickle
from pathlib import Path
from typing import IO, Any, ClassVar

import pytest

from scribestore import Repository, ScribeStoreError, UntrustedPickleError
from scribestore.artifacts import ArtifactHandler, register_handler
from scribestore.artifacts.registry import forget_registrations
from scribestore.storage import open_storage
from support.locations import Location
from support.store_util import object_file, project_at, repo_at, snapshot

ENV = "SCRIBESTORE_TRUST_PICKLE"


class Payload:
    """Pickles to a call that creates ``marker``: what a hostile pickle could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "code-ran"


def _store_payload(loc: Location, marker: Path) -> None:
    repo = repo_at(loc, "w")
    repo.log_artifact("model", Payload(marker), "pickle")
    repo.log_artifact("features", [1, 2, 3], "json")
    repo.save()


def test_default_trusts_and_the_risk_is_real(location: Location, marker: Path) -> None:
    _store_payload(location, marker)
    repo = repo_at(location, "r")
    assert repo.trust_pickle is True
    repo.load_artifact("model")
    assert marker.exists()  # loading a pickle ran code chosen by its writer


def test_untrusted_repository_refuses_before_reading(location: Location, marker: Path) -> None:
    _store_payload(location, marker)
    before = snapshot(location)
    repo = repo_at(location, "r", trust_pickle=False)
    with pytest.raises(UntrustedPickleError) as err:
        repo.load_artifact("model")
    assert isinstance(err.value, PermissionError) and isinstance(err.value, ScribeStoreError)
    message = str(err.value)
    assert "'model'" in message and "trust_pickle=True" in message and ENV in message
    assert not marker.exists()
    # Other handlers still load; raw bytes are still available without running anything.
    assert repo.load_artifact("features") == [1, 2, 3]
    with repo.open_artifact("model") as stream:
        assert stream.read().startswith(b"\x80")
    assert not marker.exists()
    # Refused before any byte is read: a missing object does not change the error.
    digest = repo.get_artifact_metadata("model")["hash"]
    open_storage(location.url, **location.options).delete(object_file(location, digest))
    with pytest.raises(UntrustedPickleError):
        repo.load_artifact("model", validate=False)
    del before[object_file(location, digest)]
    assert snapshot(location) == before


@pytest.mark.parametrize(
    ("env", "argument", "trusted"),
    [
        (None, None, True),
        ("", None, True),
        ("0", None, False),
        ("false", None, False),
        (" OFF ", None, False),
        ("no", None, False),
        ("1", None, True),
        ("True", None, True),
        ("yes", None, True),
        ("on", None, True),
        ("maybe", None, False),  # unrecognised: fail safe
        ("0", True, False),  # a refusing environment wins over everything
        ("1", False, False),
    ],
)
def test_environment_default(
    tmp_path: Path,
    marker: Path,
    monkeypatch: pytest.MonkeyPatch,
    env: str | None,
    argument: bool | None,
    trusted: bool,
) -> None:
    loc = Location("local", str(tmp_path / "store"))
    _store_payload(loc, marker)
    if env is not None:
        monkeypatch.setenv(ENV, env)
    repo = repo_at(loc, "r", trust_pickle=argument)
    assert repo.trust_pickle is trusted
    if trusted:
        repo.load_artifact("model")
        assert marker.exists()
    else:
        with pytest.raises(UntrustedPickleError) as err:
            repo.load_artifact("model")
        expected = "trust_pickle=False" if argument is False else f"{ENV}={env!r}"
        assert expected in str(err.value)
        assert not marker.exists()


def test_refusing_environment_wins_at_load_time(
    tmp_path: Path, marker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loc = Location("local", str(tmp_path / "store"))
    _store_payload(loc, marker)
    repo = repo_at(loc, "r", trust_pickle=True)
    monkeypatch.setenv(ENV, "0")
    with pytest.raises(UntrustedPickleError, match=ENV):
        repo.load_artifact("model")  # opened while trusted, refused now
    assert not marker.exists()
    monkeypatch.delenv(ENV)
    repo.load_artifact("model")
    assert marker.exists()


def test_switch_as_attribute_and_through_views_and_pickling(tmp_path: Path, marker: Path) -> None:
    loc = Location("local", str(tmp_path / "store"))
    _store_payload(loc, marker)
    repo = repo_at(loc, "r", trust_pickle=False)
    view = repo.filter([("model", 0)])
    copy = pickle.loads(pickle.dumps(repo))
    for untrusted in (view, copy):
        with pytest.raises(UntrustedPickleError):
            untrusted.load_artifact("model")
    repo.trust_pickle = True
    assert view.trust_pickle is True  # a view follows the repository it came from
    repo.load_artifact("model")
    assert marker.exists()
    marker.unlink()
    trusted_view = repo.filter([("model", 0)])  # taken while trusted
    repo.trust_pickle = False
    with pytest.raises(UntrustedPickleError):
        trusted_view.load_artifact("model")
    trusted_view.trust_pickle = True  # a view cannot trust more than its origin
    with pytest.raises(UntrustedPickleError):
        trusted_view.load_artifact("model")
    assert not marker.exists()
    with pytest.raises(TypeError):
        repo.trust_pickle = "yes"  # type: ignore[assignment]
    with pytest.raises(TypeError):
        Repository(loc.join("repository.json"), mode="r", trust_pickle="no")  # type: ignore[arg-type]


def test_untrusted_project_refuses_experiment_and_test_pickles(
    location: Location, marker: Path
) -> None:
    project = project_at(location, "w")
    with project.log("exp") as exp:
        exp.log_artifact("model", Payload(marker), "pickle")
        exp.log_artifact("config", {"lr": 0.1}, "json")
        with exp.log_test("holdout") as test:
            test.log_artifact("preds", Payload(marker), "pickle")
    project.save()

    untrusted = project_at(location, "r", trust_pickle=False)
    loaded = untrusted["exp"]
    with pytest.raises(UntrustedPickleError, match=r"'model' of experiment"):
        loaded.load_artifact("model")
    with pytest.raises(UntrustedPickleError, match=r"'preds' of test 'holdout'"):
        loaded.tests[0].load_artifact("preds")
    assert loaded.load_artifact("config") == {"lr": 0.1}
    assert not marker.exists()

    # Appending a trusted experiment to an untrusted project: the stricter wins.
    other = project_at(location, "w+", trust_pickle=False)
    trusted_exp = project_at(location, "r")["exp"]
    other.append(trusted_exp)
    with pytest.raises(UntrustedPickleError):
        trusted_exp.load_artifact("model")
    assert not marker.exists()

    # The switch on the project applies to every experiment and test it holds.
    untrusted.trust_pickle = True
    loaded.tests[0].load_artifact("preds")
    assert marker.exists()


def test_third_party_handlers_can_declare_they_run_code(tmp_path: Path) -> None:
    class Unsafe(ArtifactHandler):
        alias: ClassVar[str] = "unsafe-test"
        suffix: ClassVar[str] = "bin"
        runs_code_on_load: ClassVar[bool] = True

        def write(self, value: Any, buf: IO[bytes], **params: Any) -> None:
            buf.write(value)

        def read(self, buf: IO[bytes], **params: Any) -> Any:
            return buf.read()

    register_handler(Unsafe)
    try:
        loc = Location("local", str(tmp_path / "store"))
        repo = repo_at(loc, "w")
        repo.log_artifact("x", b"abc", "unsafe-test")
        repo.save()
        with pytest.raises(UntrustedPickleError, match="unsafe-test"):
            repo_at(loc, "r", trust_pickle=False).load_artifact("x")
        assert repo_at(loc, "r").load_artifact("x") == b"abc"
    finally:
        forget_registrations()


def test_trust_follows_merged_projects(location: Location, marker: Path) -> None:
    project = project_at(location, "w")
    with project.log("exp") as exp:
        exp.log_artifact("model", Payload(marker), "pickle")
    project.save()
    trusting = project_at(location, "r", trust_pickle=True)
    untrusting = project_at(location, "r", trust_pickle=False)
    merged = untrusting.merge(trusting)
    with pytest.raises(UntrustedPickleError):
        merged["exp"].load_artifact("model")
    # Merged while trusting, untrusted afterwards: every experiment follows.
    merged = trusting.merge(project_at(location, "r", trust_pickle=True))
    merged.trust_pickle = False
    with pytest.raises(UntrustedPickleError):
        merged["exp"].load_artifact("model")
    assert not marker.exists()
