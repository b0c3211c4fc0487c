"""Handlers written for lazyscribe work in scribestore by name.

The published plugins (lazyscribe-yaml, lazyscribe-joblib, lazyscribe-arrow)
are installed by the dev extra and found through lazyscribe's entry point
group; user subclasses of lazyscribe's ``Artifact`` or of scribestore's are
found by alias once defined.
"""

from __future__ import annotations

import datetime as dt
import io
import pickle
import warnings
from pathlib import Path
from typing import Any, ClassVar

import attrs
import numpy as np
import pytest

from scribestore import (
    ArtifactLoadError,
    ArtifactLogError,
    Project,
    Repository,
    UnknownHandlerError,
    UntrustedPickleError,
)
from scribestore.artifacts import available_handlers, get_handler, register_handler
from scribestore.artifacts.adapter import LazyscribeHandler
from scribestore.artifacts.base import Artifact
from scribestore.artifacts.json import JSONArtifact
from scribestore.artifacts.naming import artifact_fields
from scribestore.artifacts.pickle import PickleArtifact

pa = pytest.importorskip("pyarrow")
yaml = pytest.importorskip("yaml")
lazy_base = pytest.importorskip("lazyscribe.artifacts.base")
sklearn_linear = pytest.importorskip("sklearn.linear_model")


def _reopen(repo: Repository) -> Repository:
    return Repository(repo.fpath, mode="r")


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    return Repository(tmp_path / "repository.json", mode="w+")


def _stored_bytes(repo: Repository, name: str) -> bytes:
    with repo.open_artifact(name) as stream:
        return stream.read()


# --- the published plugins ------------------------------------------------------------


def test_plugins_are_listed_by_their_lazyscribe_aliases() -> None:
    assert {"yaml", "yaml12", "csv", "parquet", "joblib"} <= set(available_handlers())
    for alias in ("yaml", "csv", "parquet", "joblib"):
        handler = get_handler(alias)
        assert isinstance(handler, LazyscribeHandler)
        assert handler.alias == alias


def test_yaml_round_trip_stores_the_plugins_own_text(repo: Repository) -> None:
    value = {"lr": 0.1, "layers": [64, 32], "name": "é"}
    repo.log_artifact("config", value, handler="yaml")
    repo.save()
    again = _reopen(repo)
    assert again.load_artifact("config") == value
    assert _stored_bytes(again, "config").decode("utf-8") == yaml.dump(value)
    assert again.get_artifact_metadata("config")["fname"].endswith(".yaml")


def test_arrow_csv_and_parquet_round_trip(repo: Repository) -> None:
    table = pa.table({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    repo.log_artifact("rows", table, handler="csv")
    repo.log_artifact("cols", table, handler="parquet")
    repo.save()
    again = _reopen(repo)
    assert again.load_artifact("rows").equals(table)
    assert again.load_artifact("cols").equals(table)
    assert _stored_bytes(again, "rows").startswith(b'"x","y"')
    assert _stored_bytes(again, "cols")[:4] == b"PAR1"


def test_joblib_records_and_checks_its_environment(tmp_path: Path) -> None:
    x = np.arange(20, dtype=float).reshape(-1, 1)
    model = sklearn_linear.LinearRegression().fit(x, 3 * x.ravel())
    project = Project(tmp_path / "project.json", mode="w")
    with project.log("fit") as exp:
        exp.log_artifact("model", model, handler="joblib")
    project.save()
    exp = Project(tmp_path / "project.json", mode="r")["fit"]
    loaded = exp.load_artifact("model")
    assert loaded.coef_ == pytest.approx([3.0])
    env = exp.to_dict()["artifacts"][0]["environment"]
    assert env["package"] == "sklearn"
    assert set(env) == {"package", "package_version", "joblib_version"}


def test_joblib_environment_mismatch_is_refused_unless_validate_false(
    repo: Repository,
) -> None:
    model = sklearn_linear.LinearRegression().fit([[0.0], [1.0]], [0.0, 2.0])
    repo.log_artifact("model", model, handler="joblib")
    env = repo.get_artifact_metadata("model")["environment"]
    repo.queue_version(
        "model",
        handler="joblib",
        created_at=dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc),
        fname="model.joblib",
        value=model,
        environment={**env, "package_version": "0.0.1"},
    )
    repo.save()
    again = _reopen(repo)
    assert again.load_artifact("model", version=0).coef_ == pytest.approx([2.0])
    with pytest.raises(ArtifactLoadError, match=r"package_version=0\.0\.1"):
        again.load_artifact("model", version=1)
    assert again.load_artifact("model", version=1, validate=False).coef_ == pytest.approx([2.0])


def test_joblib_value_without_a_package_is_refused_when_logged(repo: Repository) -> None:
    with pytest.raises(ArtifactLogError, match="joblib"):
        repo.log_artifact("blob", object(), handler="joblib")
    assert "blob" not in repo


def test_plugin_without_a_code_flag_needs_trust_to_load(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="w+")
    model = sklearn_linear.LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
    repo.log_artifact("model", model, handler="joblib")
    repo.save()
    untrusting = Repository(tmp_path / "repository.json", mode="r", trust_pickle=False)
    with pytest.raises(UntrustedPickleError, match="joblib"):
        untrusting.load_artifact("model")


# --- user subclasses -------------------------------------------------------------------


@attrs.define(auto_attribs=True)
class ShoutArtifact(lazy_base.Artifact):  # type: ignore[misc,name-defined]
    """A lazyscribe subclass: upper-cased text, output only."""

    alias: ClassVar[str] = "shout"
    suffix: ClassVar[str] = "txt"
    binary: ClassVar[bool] = False
    output_only: ClassVar[bool] = True

    @classmethod
    def construct(cls, name: str, value: Any = None, **kwargs: Any) -> ShoutArtifact:
        return cls(
            name=name,
            value=value,
            fname=kwargs.get("fname") or f"{name}.txt",
            writer_kwargs=kwargs.get("writer_kwargs") or {},
            created_at=kwargs.get("created_at") or dt.datetime(2025, 1, 1),
            expiry=kwargs.get("expiry"),
            version=kwargs.get("version", 0),
            dirty=kwargs.get("dirty", True),
        )

    @classmethod
    def read(cls, buf: Any, **kwargs: Any) -> str:
        return buf.read()

    @classmethod
    def write(cls, obj: Any, buf: Any, **kwargs: Any) -> None:
        buf.write(str(obj).upper())


@attrs.define(auto_attribs=True)
class TaggedArtifact(Artifact):
    """A scribestore subclass with its own compared field and no code on load."""

    alias: ClassVar[str] = "tagged"
    suffix: ClassVar[str] = "bin"
    binary: ClassVar[bool] = True
    runs_code_on_load: ClassVar[bool] = False
    TAG: ClassVar[str] = "v1"

    tag: str = attrs.field()

    @classmethod
    def construct(cls, name: str, value: Any = None, **kwargs: Any) -> TaggedArtifact:
        base = {k: kwargs.get(k) for k in ("fname", "created_at", "expiry", "writer_kwargs")}
        fields = artifact_fields(
            name,
            cls.suffix,
            value=value,
            version=kwargs.get("version", 0),
            dirty=kwargs.get("dirty", True),
            **base,
        )
        return cls(**fields, tag=cls.TAG)

    @classmethod
    def read(cls, buf: Any, **kwargs: Any) -> bytes:
        return buf.read()[::-1]

    @classmethod
    def write(cls, obj: Any, buf: Any, **kwargs: Any) -> None:
        buf.write(bytes(obj)[::-1])


def test_lazyscribe_subclass_works_by_name_and_output_only_warns(repo: Repository) -> None:
    assert "shout" in available_handlers()
    repo.log_artifact("greeting", "hello", handler="shout")
    repo.save()
    again = _reopen(repo)
    with pytest.warns(UserWarning, match="not the original Python object"):
        assert again.load_artifact("greeting") == "HELLO"


def test_text_class_stores_what_it_wrote_and_reads_as_lazyscribe_does(
    repo: Repository,
) -> None:
    # lazyscribe writes text files without newline translation and reads them
    # with universal newlines: the bytes keep "\r\n", the value read has "\n".
    repo.log_artifact("notes", "a\r\nb\n", handler="shout")
    repo.save()
    again = _reopen(repo)
    assert _stored_bytes(again, "notes") == b"A\r\nB\n"
    with pytest.warns(UserWarning):
        assert again.load_artifact("notes") == "A\nB\n"


def test_scribestore_subclass_records_and_compares_its_field(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo.log_artifact("payload", b"abc", handler="tagged")
    repo.save()
    assert _stored_bytes(repo, "payload") == b"cba"
    assert repo.get_artifact_metadata("payload")["environment"] == {"tag": "v1"}
    untrusting = Repository(repo.fpath, mode="r", trust_pickle=False)
    assert untrusting.load_artifact("payload") == b"abc"
    monkeypatch.setattr(TaggedArtifact, "TAG", "v2")
    with pytest.raises(ArtifactLoadError, match="tag=v1, this environment has tag=v2"):
        untrusting.load_artifact("payload")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert untrusting.load_artifact("payload", validate=False) == b"abc"


def test_register_handler_accepts_a_lazyscribe_class_and_returns_it() -> None:
    @attrs.define(auto_attribs=True)
    class Unlisted:  # not a subclass of either base: found only once registered
        alias: ClassVar[str] = "unlisted-kind"
        suffix: ClassVar[str] = "u"
        binary: ClassVar[bool] = True

        @classmethod
        def construct(cls, name: str, **kwargs: Any) -> Unlisted:
            return cls()

        @classmethod
        def read(cls, buf: Any, **kwargs: Any) -> bytes:
            return buf.read()

        @classmethod
        def write(cls, obj: Any, buf: Any, **kwargs: Any) -> None:
            buf.write(obj)

    with pytest.raises(UnknownHandlerError):
        get_handler("unlisted-kind")
    assert register_handler(Unlisted) is Unlisted
    handler = get_handler("unlisted-kind")
    buf = io.BytesIO()
    handler.write(b"xy", buf)
    assert handler.read(io.BytesIO(buf.getvalue())) == b"xy"


# --- lazyscribe's own handler classes, under scribestore's names ------------------------


def test_json_and_pickle_artifact_classes_behave_as_lazyscribe_names_them() -> None:
    when = dt.datetime(2025, 3, 1, 12, 30, 5)
    art = JSONArtifact.construct(name="My Metrics", value={"a": 1}, created_at=when)
    assert art.fname == "my-metrics-20250301123005.json"
    assert (art.version, art.dirty, art.writer_kwargs, art.expiry) == (0, True, {}, None)
    text = io.StringIO()
    JSONArtifact.write({"a": 1}, text)
    assert JSONArtifact.read(io.StringIO(text.getvalue())) == {"a": 1}
    pick = PickleArtifact.construct(name="m", value=[1, 2], created_at=when)
    assert pick.python_version.count(".") == 1
    assert pick == PickleArtifact.construct(name="other", created_at=when)
    assert pick != PickleArtifact.construct(name="m", python_version="2.7")
    clone = pickle.loads(pickle.dumps(pick))
    assert (clone.value, clone.fname, clone.python_version) == (
        [1, 2],
        "m-20250301123005.pkl",
        pick.python_version,
    )
