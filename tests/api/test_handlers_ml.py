"""The safetensors and dataframe handlers: what ML code holds, stored in standard formats."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from scribestore import ArtifactLogError, Repository
from support.safetensors_file import read_header

pd = pytest.importorskip("pandas", reason="pandas is in the dev extra")
safetensors_numpy = pytest.importorskip("safetensors.numpy", reason="in the dev extra")


def _weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "embed.weight": rng.standard_normal((64, 32)).astype("float32"),
        "head.bias": np.arange(8, dtype="int64"),
        "norm": rng.standard_normal(16).astype("float16"),
    }


def test_safetensors_round_trip_in_the_standard_format(tmp_path: Path) -> None:
    fpath = tmp_path / "repository.json"
    repo = Repository(fpath, mode="w")
    repo.log_artifact("model", _weights(), "safetensors", metadata={"step": "100"})
    repo.save()
    loaded = Repository(fpath, mode="r").load_artifact("model")
    assert loaded.keys() == _weights().keys()
    for name, array in _weights().items():
        assert loaded[name].dtype == array.dtype and np.array_equal(loaded[name], array)
    meta = repo.get_artifact_metadata("model")
    assert meta["fname"].endswith(".safetensors")
    # The stored bytes are a .safetensors file: its header names every tensor.
    with repo.open_artifact("model") as stream:
        data = stream.read()
    _, header = read_header(io.BytesIO(data))
    assert set(header) == {*_weights(), "__metadata__"}
    assert safetensors_numpy.load(data)["head.bias"].tolist() == list(range(8))


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"a": [1, 2]},
        {1: np.zeros(2)},
        {"a": np.array([object()])},
        np.zeros(3),
    ],
    ids=["empty", "list", "int-key", "object-array", "bare-array"],
)
def test_safetensors_refuses_what_it_cannot_hold_when_logged(tmp_path: Path, value: object) -> None:
    repo = Repository(tmp_path / "repository.json", mode="w")
    with pytest.raises(ArtifactLogError):
        repo.log_artifact("model", value, "safetensors")
    with pytest.raises(ArtifactLogError):
        repo.log_artifact("model", _weights(), "safetensors", compression="x")


def test_safetensors_reads_as_torch_when_asked(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch", reason="torch is optional")
    repo = Repository(tmp_path / "repository.json", mode="w")
    repo.log_artifact("model", _weights(), "safetensors")
    repo.save()
    loaded = repo.load_artifact("model", framework="torch")
    assert isinstance(loaded["embed.weight"], torch.Tensor)


def test_dataframes_round_trip_as_parquet(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"age": [31, 45, 27], "income": [52.5, 71.0, 38.2], "city": ["Oslo", "Lima", "Pune"]},
        index=pd.Index(["a", "b", "c"], name="id"),
    )
    fpath = tmp_path / "repository.json"
    repo = Repository(fpath, mode="w")
    repo.log_artifact("features", frame, "dataframe")
    repo.save()
    loaded = Repository(fpath, mode="r").load_artifact("features")
    pd.testing.assert_frame_equal(loaded, frame)
    assert repo.get_artifact_metadata("features")["fname"].endswith(".parquet")
    columns = Repository(fpath, mode="r").load_artifact("features", columns=["age"])
    assert list(columns.columns) == ["age"]
    with pytest.raises(ArtifactLogError):
        repo.log_artifact("features", {"age": [1]}, "dataframe")


def test_safetensors_stores_views_by_their_values(tmp_path: Path) -> None:
    grid = np.arange(12, dtype="float32").reshape(3, 4)
    views = {"transposed": grid.T, "strided": grid[:, ::2]}
    repo = Repository(tmp_path / "repository.json", mode="w")
    repo.log_artifact("views", views, "safetensors")
    repo.save()
    loaded = repo.load_artifact("views")
    for name, view in views.items():
        assert loaded[name].tolist() == view.tolist()


@pytest.mark.parametrize(
    "array",
    [np.array(["a", "b"]), np.array(["2026-01-01"], dtype="datetime64[D]"), np.float32(1.0)],
    ids=["str", "datetime", "scalar"],
)
def test_safetensors_refuses_arrays_it_cannot_hold(tmp_path: Path, array: object) -> None:
    repo = Repository(tmp_path / "repository.json", mode="w")
    with pytest.raises(ArtifactLogError):
        repo.log_artifact("model", {"x": array}, "safetensors")


def test_dataframes_parquet_cannot_hold_are_refused_when_logged(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="w")
    twice = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(ArtifactLogError):
        repo.log_artifact("features", twice, "dataframe")
    with pytest.raises(ArtifactLogError):
        repo.log_artifact("features", pd.DataFrame({0: [1]}), "dataframe")
