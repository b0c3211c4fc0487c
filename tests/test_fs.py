"""scribestore:// : artifacts read through fsspec, seekable and verified."""

from __future__ import annotations

import io
from pathlib import Path

import fsspec
import numpy as np
import pytest

from scribestore import IntegrityError, ManifestNotFoundError, Repository
from scribestore.fs import ScribeStoreFileSystem
from scribestore.store.layout import object_path
from support.counting import count_reads
from support.locations import Location


def make_store(root: Path) -> tuple[Path, np.ndarray]:
    root.mkdir(parents=True, exist_ok=True)
    array = np.arange(3 << 20, dtype="float32").reshape(-1, 1024)
    buf = io.BytesIO()
    np.save(buf, array)
    (root / "weights.npy").write_bytes(buf.getvalue())
    (root / "a.csv").write_text("x,y\n1,2\n")
    repo = Repository(root / "repository.json", mode="w")
    repo.log_artifact("weights.npy", root / "weights.npy", handler="file")
    repo.log_artifact("table.csv", root / "a.csv", handler="file")
    repo.save()
    (root / "a.csv").write_text("x,y\n1,2\n3,4\n")
    repo.log_artifact("table.csv", root / "a.csv", handler="file")
    repo.save()
    return root / "repository.json", array


def test_urls_name_an_artifact_and_its_version(tmp_path: Path) -> None:
    manifest, array = make_store(tmp_path / "s")
    options = {"repository": str(manifest)}
    with fsspec.open("scribestore://table.csv@0", "rb", **options) as f:
        assert f.read() == b"x,y\n1,2\n"
    with fsspec.open("scribestore://table.csv", "rb", **options) as f:
        assert f.read() == b"x,y\n1,2\n3,4\n"
    with fsspec.open("scribestore://weights.npy", "rb", **options) as f:
        assert np.array_equal(np.load(f), array)  # numpy seeks and reads in pieces
    fs = fsspec.filesystem("scribestore", **options)
    assert isinstance(fs, ScribeStoreFileSystem)
    assert sorted(fs.ls("", detail=False)) == ["table.csv@0", "table.csv@1", "weights.npy@0"]
    assert fs.info("table.csv")["name"] == "table.csv@1"
    assert fs.size("table.csv@0") == 8
    assert fs.cat_file("table.csv@1", start=4, end=7) == b"1,2"
    for missing in ("nope", "table.csv@5"):
        with pytest.raises(FileNotFoundError):
            fs.open(missing)
        assert not fs.exists(missing)
    with pytest.raises(PermissionError, match="read-only"):
        fs.open("table.csv", "wb")
    with pytest.raises(ManifestNotFoundError):
        ScribeStoreFileSystem(str(tmp_path / "typo.json"), skip_instance_cache=True)


def test_a_slice_fetches_its_chunks_and_damage_is_refused(tmp_path: Path) -> None:
    manifest, array = make_store(tmp_path / "s")
    fs = ScribeStoreFileSystem(str(manifest))
    size = fs.size("weights.npy")
    with fs.open("weights.npy") as f, count_reads(fs.repository.objects.storage) as reads:
        f.seek(size // 2)
        assert f.read(16) == array.tobytes()[size // 2 - 128 : size // 2 - 112]
    assert reads.pack_bytes < size // 8
    digest = fs.info("table.csv@0")["hash"]
    path = manifest.parent / "objects" / object_path(digest)
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 0x01
    path.write_bytes(bytes(blob))
    with pytest.raises(IntegrityError), fs.open("table.csv@0") as f:
        f.read()


def test_a_remote_repository_is_read_through_its_options(shared_location: Location) -> None:
    url = shared_location.join("repository.json")
    repo = Repository(url, mode="w", **shared_location.options)
    repo.log_artifact("notes", b"remote bytes", handler="bytes")
    repo.save()
    with fsspec.open(
        "scribestore://notes@0",
        "rb",
        repository=url,
        repository_options=shared_location.options,
    ) as f:
        assert f.read() == b"remote bytes"


def test_paths_that_are_artifact_names_and_footer_reads(tmp_path: Path) -> None:
    manifest, array = make_store(tmp_path / "s")
    repo = Repository(manifest, mode="a")
    repo.log_artifact("notes@2", b"the artifact named notes@2", handler="bytes")
    repo.log_artifact("me@host", b"an address", handler="bytes")
    repo.save()
    fs = ScribeStoreFileSystem(str(manifest))
    assert fs.cat_file("notes@2") == b"the artifact named notes@2"
    assert fs.cat_file("me@host") == b"an address"
    assert fs.cat_file("notes@2@0") == b"the artifact named notes@2"
    assert not fs.exists("other@host")  # not a name, not a version: missing, not an error
    tail = array.tobytes()[-8:]
    assert fs.cat_file("weights.npy", start=-8) == tail
    with fs.open("weights.npy") as f:
        assert f.size == fs.size("weights.npy")
        f.seek(-8, 2)
        assert f.read(8) == tail  # a parquet-style footer read


def test_each_url_sees_the_versions_saved_since(tmp_path: Path) -> None:
    manifest, _ = make_store(tmp_path / "s")
    options = {"repository": str(manifest)}
    with fsspec.open("scribestore://table.csv", "rb", **options) as f:
        first = f.read()
    repo = Repository(manifest, mode="a")
    repo.log_artifact("table.csv", b"x,y\n", handler="bytes", fname="t.csv")
    repo.save()
    with fsspec.open("scribestore://table.csv", "rb", **options) as f:
        assert f.read() == b"x,y\n" != first
    fs = ScribeStoreFileSystem(str(manifest))
    repo.log_artifact("table.csv", b"z\n", handler="bytes", fname="t.csv")
    repo.save()
    assert not fs.exists("table.csv@3")
    fs.invalidate_cache()
    assert fs.cat_file("table.csv@3") == b"z\n"
