"""Repository.verify and Project.verify on every backend."""

from __future__ import annotations

import contextlib
import json
import os
import random
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

import scribestore
from scribestore import IntegrityError, ObjectStore, Problem, Repository, VerifyReport
from scribestore.storage import open_storage
from support.helpers import seal
from support.locations import Location
from support.store_util import object_file, project_at, read_file, repo_at, snapshot, write_file


def _random(n: int) -> bytes:
    return os.urandom(n)


def _saved_repo(loc: Location) -> tuple[scribestore.Repository, dict[str, bytes]]:
    """A repository where ``shared`` bytes back three versions over two names."""
    shared = _random(3000)
    repo = repo_at(loc, "w")
    repo.log_artifact("model", shared, "bytes")  # model@0
    repo.log_artifact("model", _random(2000), "bytes")  # model@1
    repo.log_artifact("model", shared, "bytes")  # model@2
    repo.log_artifact("copy", shared, "bytes")  # copy@0
    repo.log_artifact("features", {"a": list(range(100))}, "json")  # features@0
    repo.save()
    return repo, {"shared": shared}


def test_clean_store_has_no_problems(location: Location) -> None:
    _saved_repo(location)
    report = repo_at(location, "r").verify()
    assert isinstance(report, VerifyReport)
    assert report == VerifyReport(checked=5, ok=5, objects=3, problems=())
    assert report.clean
    # Reports are plain data for tools (the CLI prints them as JSON).
    assert json.loads(msgspec.json.encode(report))["checked"] == 5


def test_each_distinct_object_is_read_once(
    location: Location, monkeypatch: pytest.MonkeyPatch
) -> None:
    _saved_repo(location)
    opened: Counter[str] = Counter()
    real_open = ObjectStore.open

    def counting_open(self: ObjectStore, digest: str, **kwargs: object) -> object:
        opened[digest] += 1
        return real_open(self, digest, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ObjectStore, "open", counting_open)
    report = repo_at(location, "r").verify()
    assert report.checked == 5 and report.objects == 3
    assert sorted(opened.values()) == [1, 1, 1]


def test_deleted_object_is_missing_for_every_version_using_it(location: Location) -> None:
    repo, _ = _saved_repo(location)
    digest = repo.get_artifact_metadata("model", version=0)["hash"]
    open_storage(location.url, **location.options).delete(object_file(location, digest))
    before = snapshot(location)
    report = repo_at(location, "r").verify()
    assert snapshot(location) == before  # verify writes nothing
    assert (report.checked, report.ok, report.objects) == (5, 2, 3)
    assert [(p.kind, p.artifact, p.version, p.hash) for p in report.problems] == [
        ("missing", "model", 0, digest),
        ("missing", "model", 2, digest),
        ("missing", "copy", 0, digest),
    ]
    assert all(isinstance(p, Problem) for p in report.problems)
    assert "version 2 of artifact 'model'" in report.problems[1].message
    assert digest in report.problems[1].message


@pytest.mark.parametrize(
    "damage",
    ["flip_payload", "flip_header", "truncate", "append", "empty"],
)
def test_damaged_object_is_corrupt(location: Location, damage: str) -> None:
    if location.backend == "s3" and damage not in ("flip_payload", "truncate"):
        pytest.skip("the damage is the same on every backend; S3 is slow to set up")
    repo, _ = _saved_repo(location)
    digest = repo.get_artifact_metadata("model", version=1)["hash"]
    path = object_file(location, digest)
    blob = read_file(location, path)
    if damage == "flip_payload":
        blob = blob[:100] + bytes([blob[100] ^ 0x01]) + blob[101:]
    elif damage == "flip_header":
        blob = bytes([blob[0] ^ 0x01]) + blob[1:]
    elif damage == "truncate":
        blob = blob[: len(blob) // 2]
    elif damage == "append":
        blob += b"\x00"
    else:
        blob = b""
    write_file(location, path, blob)
    report = repo_at(location, "r").verify()
    assert (report.checked, report.ok) == (5, 4)
    [problem] = report.problems
    assert (problem.kind, problem.artifact, problem.version, problem.hash) == (
        "corrupt",
        "model",
        1,
        digest,
    )


def test_compressed_object_damage_is_corrupt(location: Location) -> None:
    repo, _ = _saved_repo(location)
    digest = repo.get_artifact_metadata("features")["hash"]
    path = object_file(location, digest)
    blob = bytearray(read_file(location, path))
    blob[-3] ^= 0xFF
    write_file(location, path, bytes(blob))
    [problem] = repo_at(location, "r").verify().problems
    assert (problem.kind, problem.artifact, problem.version) == ("corrupt", "features", 0)


def test_size_disagreeing_with_manifest_is_corrupt(location: Location) -> None:
    _saved_repo(location)
    doc = json.loads(read_file(location, "repository.json"))
    doc["artifacts"]["features"][0]["size"] += 1
    write_file(location, "repository.json", seal(doc))
    [problem] = repo_at(location, "r").verify().problems
    assert (problem.kind, problem.artifact) == ("corrupt", "features")
    assert "manifest records" in problem.message


def test_unsaved_versions_are_not_checked(location: Location) -> None:
    _saved_repo(location)
    repo = repo_at(location, "a")
    repo.log_artifact("pending", [1], "json")
    report = repo.verify()
    assert (report.checked, report.ok) == (5, 5)


def test_project_verify_names_experiment_and_test(location: Location) -> None:
    project = project_at(location, "w")
    shared = _random(1000)
    with project.log("first") as exp:
        exp.log_artifact("weights", shared, "bytes")
        exp.log_artifact("config", {"lr": 0.1}, "json")
        with exp.log_test("holdout") as test:
            test.log_artifact("preds", shared, "bytes")
    with project.log("second") as exp2:
        exp2.log_artifact("weights", _random(1000), "bytes")
    project.save()
    assert project_at(location, "r").verify() == VerifyReport(
        checked=4, ok=4, objects=3, problems=()
    )

    digest = exp.to_dict()["artifacts"][0]["hash"]
    open_storage(location.url, **location.options).delete(object_file(location, digest))
    other = exp2.to_dict()["artifacts"][0]["hash"]
    path = object_file(location, other)
    write_file(location, path, read_file(location, path)[:-1])

    report = project_at(location, "r").verify()
    assert (report.checked, report.ok, report.objects) == (4, 1, 3)
    found = {(p.kind, p.experiment, p.test, p.artifact, p.version) for p in report.problems}
    assert found == {
        ("missing", exp.slug, None, "weights", None),
        ("missing", exp.slug, "holdout", "preds", None),
        ("corrupt", exp2.slug, None, "weights", None),
    }
    preds = next(p for p in report.problems if p.test == "holdout")
    assert "test 'holdout'" in preds.message and exp.slug in preds.message


def test_report_types_are_frozen_and_exported() -> None:
    assert {"VerifyReport", "Problem"} <= set(scribestore.__all__)
    report = VerifyReport(checked=0, ok=0, objects=0)
    with pytest.raises(AttributeError):
        report.checked = 1  # type: ignore[misc]


@pytest.mark.parametrize("damage", ["delete_packs", "flip_pack_byte", "delete_index"])
def test_damaged_packs_of_chunked_objects_are_reported(location: Location, damage: str) -> None:
    if location.backend == "s3" and damage != "flip_pack_byte":
        pytest.skip("the damage is the same on every backend; S3 is slow to set up")
    repo = repo_at(location, "w")
    repo.log_artifact("big", _random(5 << 20), "bytes")  # chunked into packs
    repo.log_artifact("small", _random(100), "bytes")
    repo.save()
    storage = open_storage(location.url, **location.options)
    packs = [p for p in storage.list("objects/packs")]
    assert any(p.endswith(".pack") for p in packs), packs
    for path in packs:
        if (damage == "delete_packs" and path.endswith(".pack")) or (
            damage == "delete_index" and path.endswith(".idx")
        ):
            storage.delete(path)
        elif damage == "flip_pack_byte" and path.endswith(".pack"):
            blob = bytearray(storage.read_bytes(path))
            blob[len(blob) // 2] ^= 0x01
            storage.write_atomic(path, bytes(blob))
    report = repo_at(location, "r").verify()
    assert (report.checked, report.ok) == (2, 1)
    [problem] = report.problems
    assert (problem.artifact, problem.version) == ("big", 0)
    assert problem.kind in ("missing", "corrupt")


_DAMAGES = (
    "truncate_index",
    "flip_index",
    "spoil_table",
    "flip_blob",
    "truncate_pack",
    "delete_pack",
    "delete_index",
)


def _damage_pack_file(
    storage: scribestore.storage.Storage, pack_id: str, damage: str, rng: random.Random
) -> None:
    from support.helpers import spoil_pack_table

    idx, pack = f"objects/packs/{pack_id}.idx", f"objects/packs/{pack_id}.pack"
    if damage == "spoil_table":
        spoil_pack_table(open_storage(storage.url + "/objects"), pack_id)
        return
    if damage.startswith("delete"):
        storage.delete(idx if damage.endswith("index") else pack)
        return
    path = idx if damage.endswith("index") else pack
    data = bytearray(storage.read_bytes(path))
    if damage.startswith("truncate"):
        data = data[: rng.randrange(8, len(data))]
    else:
        data[rng.randrange(8, len(data))] ^= 1 << rng.randrange(8)
    storage.write_atomic(path, bytes(data))


@pytest.mark.parametrize("seed", range(12))
def test_verify_reports_exactly_the_versions_a_load_refuses(tmp_path, seed: int) -> None:
    """Random damage to packs and indexes: verify names a version iff loading it fails."""
    rng = random.Random(seed)
    location = Location("local", str(tmp_path / "store"))
    base = rng.randbytes(5 << 20)
    repo = repo_at(location, "w")
    repo.log_artifact("base", base, "bytes")
    repo.save()  # one save per version: each gets packs of its own
    tuned = bytearray(base)
    tuned[(3 << 20) : (3 << 20) + 4096] = rng.randbytes(4096)  # shares most chunks
    repo.log_artifact("tuned", bytes(tuned), "bytes")
    repo.save()
    repo.log_artifact("other", rng.randbytes(5 << 20), "bytes")
    repo.save()
    storage = open_storage(location.url)
    pack_ids = sorted({p.rsplit("/", 1)[-1].split(".")[0] for p in storage.list("objects/packs")})
    for pack_id in rng.sample(pack_ids, rng.randint(1, len(pack_ids))):
        for damage in rng.sample(_DAMAGES, rng.randint(1, 2)):
            with contextlib.suppress(FileNotFoundError):
                _damage_pack_file(storage, pack_id, damage, rng)
    refused = set()
    for name in ("base", "tuned", "other"):
        try:
            repo_at(location, "r").load_artifact(name)
        except scribestore.ScribeStoreError:
            refused.add(name)
    report = repo_at(location, "r").verify()
    assert {p.artifact for p in report.problems} == refused
    assert report.ok == 3 - len(refused)


@pytest.mark.parametrize(
    ("handler", "make"),
    [
        ("numpy", lambda: np.random.default_rng(3).standard_normal(1 << 20)),  # 8 MiB
        ("json", lambda: [random.Random(n).random() for n in range(400_000)]),
        ("pickle", lambda: random.Random(3).randbytes(6 << 20)),
    ],
)
def test_values_decoded_while_streaming_still_refuse_damage(
    tmp_path: Path, handler: str, make: Any
) -> None:
    """Large values decode as their chunks stream: a damaged chunk fails the load."""
    fpath = tmp_path / "repository.json"
    repo = Repository(fpath, mode="w")
    value = make()
    repo.log_artifact("big", value, handler)
    repo.save()
    loaded = Repository(fpath, mode="r").load_artifact("big")
    assert (loaded == value).all() if handler == "numpy" else loaded == value
    storage = open_storage(tmp_path)
    for path in storage.list("objects/packs"):
        if path.endswith(".pack"):
            blob = bytearray(storage.read_bytes(path))
            blob[len(blob) // 4] ^= 0x01  # in the blobs, not the table at the end
            storage.write_atomic(path, bytes(blob))
    with pytest.raises(IntegrityError):
        Repository(fpath, mode="r").load_artifact("big")


def test_a_handler_that_seeks_still_gets_the_whole_content_checked(tmp_path: Path) -> None:
    """Parquet is read footer first; chunks in a wrong order (each one intact)
    must still fail the load, as only the whole-content hash can tell."""
    import struct

    pd = pytest.importorskip("pandas", reason="pandas is in the dev extra")
    frame = pd.DataFrame({"b": np.random.default_rng(0).integers(0, 2**62, 800_000)})
    fpath = tmp_path / "repository.json"
    repo = Repository(fpath, mode="w")
    repo.log_artifact("df", frame, "dataframe", compression=None)
    repo.save()
    digest = repo.get_artifact_metadata("df")["hash"]
    path = tmp_path / "objects" / digest[:2] / digest
    blob = path.read_bytes()
    entry = struct.Struct("<32sQ")  # FORMAT 3.3: a recipe entry
    entries = [blob[16 + k : 16 + k + entry.size] for k in range(0, len(blob) - 16, entry.size)]
    middle = len(entries) // 2
    entries[middle], entries[middle + 1] = entries[middle + 1], entries[middle]
    path.chmod(0o644)
    path.write_bytes(blob[:16] + b"".join(entries))
    with pytest.raises(IntegrityError):
        Repository(fpath, mode="r").load_artifact("df")
    with pytest.raises(IntegrityError):
        Repository(fpath, mode="r").load_artifact("df", columns=["b"])
