"""The storage interface, run against every backend."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import threading

import pytest

from scribestore.storage import LocalStorage, Storage, check_relpath, open_storage
from support.locations import Location


def open_backend(loc: Location) -> Storage:
    return open_storage(loc.url, **loc.options)


def test_read_view_of_a_large_file(location: Location) -> None:
    """Long ranges may be mapped (local disk): same bytes, read-only, short at the end."""
    storage = open_backend(location)
    data = bytes(range(256)) * 4096  # 1 MiB
    storage.write_new("packs/big", [data])
    view = storage.read_view("packs/big", 70_001, 600_000)
    assert view == data[70_001:670_001]
    assert view.readonly
    assert storage.read_view("packs/big", 1_000_000, 600_000) == data[1_000_000:]


def test_backend_class_per_protocol(location: Location) -> None:
    storage = open_backend(location)
    expected = {
        "local": "LocalStorage",
        "memory": "MemoryStorage",
        "fsspec": "FsspecStorage",
        "s3": "S3Storage",
    }
    assert type(storage).__name__ == expected[location.backend]


def test_write_read_list_delete(location: Location) -> None:
    storage = open_backend(location)
    assert list(storage.list()) == []
    assert storage.write_new("ab/one", [b"hello ", b"world"]) is True
    assert storage.write_new("ab/one", [b"other"]) is False
    assert storage.read_bytes("ab/one") == b"hello world"
    assert storage.read_range("ab/one", 6, 100) == b"world"
    assert storage.read_view("ab/one", 6, 100) == b"world"
    assert storage.size("ab/one") == 11
    with storage.open_read("ab/one") as f:
        assert f.read() == b"hello world"
    storage.write_atomic("top.json", b"{}")
    storage.write_atomic("top.json", b'{"a": 1}')
    assert storage.read_bytes("top.json") == b'{"a": 1}'
    assert list(storage.list()) == ["ab/one", "top.json"]
    assert list(storage.list("ab")) == ["ab/one"]
    age = datetime.datetime.now(datetime.timezone.utc) - storage.modified("ab/one")
    assert abs(age.total_seconds()) < 120
    storage.delete("ab/one")
    assert not storage.exists("ab/one")
    with pytest.raises(FileNotFoundError):
        storage.delete("ab/one")
    with pytest.raises(FileNotFoundError):
        storage.read_bytes("ab/one")


def test_failed_write_publishes_nothing(location: Location) -> None:
    storage = open_backend(location)

    def chunks():
        yield b"x" * (6 << 20)
        yield b"y" * (1 << 20)
        raise RuntimeError("source failed")

    with pytest.raises(RuntimeError, match="source failed"):
        storage.write_new("cd/partial", chunks())
    assert not storage.exists("cd/partial")
    assert [p for p in storage.list() if not p.rsplit("/", 1)[-1].startswith(".tmp-")] == []
    assert list(storage.list()) == []


def test_racing_create_only_writes_first_wins(location: Location) -> None:
    storage = open_backend(location)
    barrier = threading.Barrier(2)
    results: dict[str, bool] = {}

    def writer(tag: str) -> None:
        def chunks():
            barrier.wait(timeout=30)  # both writers are past the exists() check
            yield tag.encode() * 1000

        results[tag] = storage.write_new("ef/race", chunks())

    threads = [threading.Thread(target=writer, args=(t,)) for t in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results.values()) == [False, True]
    winner = next(tag for tag, won in results.items() if won)
    assert storage.read_bytes("ef/race") == winner.encode() * 1000
    assert list(storage.list()) == ["ef/race"]


@pytest.mark.parametrize("bad", ["", "/abs", "a/../b", "..", "a//b", "./a", "a\x00b", "a\\b"])
def test_unsafe_relative_paths_rejected(location: Location, bad: str) -> None:
    storage = open_backend(location)
    with pytest.raises(ValueError, match="unsafe"):
        check_relpath(bad)
    with pytest.raises(ValueError, match="unsafe"):
        storage.write_atomic(bad, b"x")
    assert list(storage.list()) == []


def test_local_options_are_checked(tmp_path) -> None:
    assert isinstance(open_storage(tmp_path, fsync=False), LocalStorage)
    assert isinstance(open_storage(f"file://{tmp_path}"), LocalStorage)
    with pytest.raises(ValueError, match="unknown storage options"):
        open_storage(tmp_path, endpoint_url="http://x")


def test_s3_failed_upload_leaves_no_multipart(s3_server) -> None:
    from support.locations import S3_BUCKET

    storage = open_storage(f"s3://{S3_BUCKET}/mpu-test", **s3_server.storage_options())

    def chunks():
        yield b"z" * (40 << 20)  # past one part: a multipart upload is open
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        storage.write_new("aa/big", chunks())
    uploads = storage.fs.call_s3("list_multipart_uploads", Bucket=S3_BUCKET, Prefix="mpu-test/")
    assert uploads.get("Uploads", []) == []
    assert not storage.exists("aa/big")


def _increment(current: bytes | None) -> bytes:
    return str(int(current or b"0") + 1).encode()


def test_update_is_atomic_across_threads(location: Location) -> None:
    from concurrent.futures import ThreadPoolExecutor

    storage = open_backend(location)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: storage.update("counter", _increment), range(40)))
    assert storage.read_bytes("counter") == b"40"


def test_update_change_that_raises_writes_nothing(location: Location) -> None:
    storage = open_backend(location)
    storage.update("m.json", lambda cur: b"v1")

    def boom(current: bytes | None) -> bytes:
        assert current == b"v1"
        raise RuntimeError("merge failed")

    with pytest.raises(RuntimeError):
        storage.update("m.json", boom)
    assert storage.read_bytes("m.json") == b"v1"


_UPDATE_CHILD = """
import json, sys
from scribestore.storage import open_storage
url, options, n = (json.loads(a) for a in sys.argv[1:])
storage = open_storage(url, **options)
for _ in range(n):
    storage.update("counter", lambda cur: str(int(cur or b"0") + 1).encode())
"""


def test_update_is_atomic_across_processes(shared_location: Location) -> None:
    from support.helpers import python_child

    procs = [
        python_child(_UPDATE_CHILD, shared_location.url, shared_location.options, 15)
        for _ in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    assert open_backend(shared_location).read_bytes("counter") == b"60"


def test_touch_refreshes_and_never_creates(location: Location) -> None:
    storage = open_backend(location)
    storage.write_new("locks/lease.json", [b"{}"])
    before = storage.modified("locks/lease.json")
    import time

    time.sleep(1.1)  # S3 LastModified has one-second resolution
    storage.touch("locks/lease.json")
    assert storage.modified("locks/lease.json") > before
    assert storage.read_bytes("locks/lease.json") == b"{}"
    storage.delete("locks/lease.json")
    with pytest.raises(FileNotFoundError):
        storage.touch("locks/lease.json")
    assert not storage.exists("locks/lease.json")


def test_list_files_is_not_recursive(location: Location) -> None:
    storage = open_backend(location)
    storage.write_new("repository.json", [b"{}"])
    storage.write_new("objects/ab/cd", [b"x"])
    assert storage.list_files() == ("repository.json",)


def test_new_directories_are_fsynced_in_their_parents(tmp_path, monkeypatch) -> None:
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    root = tmp_path / "store" / "objects"
    LocalStorage(root).write_new("ab/cd/file", [b"x"])
    for directory in (tmp_path, tmp_path / "store", root, root / "ab", root / "ab" / "cd"):
        assert str(directory) in synced, directory


def test_manifest_lock_wait_has_a_timeout_naming_the_holder(tmp_path) -> None:
    storage = LocalStorage(tmp_path, lock_timeout=0.3)
    storage.update("repository.json", lambda _: b"one")
    # Another process holds the lock (a stopped writer): a child that never lets go.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDWR)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "os.pwrite(fd, b'pid %d on the holder' % os.getpid(), 0)\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
            str(tmp_path / "repository.json.lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(TimeoutError, match=f"pid {holder.pid}"):
            storage.update("repository.json", lambda _: b"two")
    finally:
        holder.kill()
        holder.wait()
    # The dead holder's lock is free at once.
    assert storage.update("repository.json", lambda _: b"two") == b"two"


def test_manifest_lock_symlink_is_not_followed(tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"keep")
    (tmp_path / "store").mkdir()
    os.symlink(outside, tmp_path / "store" / "repository.json.lock")
    storage = LocalStorage(tmp_path / "store")
    with pytest.raises(OSError):
        storage.update("repository.json", lambda _: b"data")
    assert outside.read_bytes() == b"keep"


@pytest.mark.parametrize("link", ["objects/ab", "objects/packs", "objects/locks"])
def test_writes_never_follow_a_symlinked_directory_in_the_store(tmp_path, link: str) -> None:
    from scribestore import Repository, SaveError

    root = tmp_path / "store"
    (root / "objects").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    import blake3

    content = os.urandom(5 << 20)  # chunked: a recipe object and packs
    digest = blake3.blake3(content).hexdigest()
    os.symlink(elsewhere, root / link.replace("ab", digest[:2]))
    repo = Repository(root / "repository.json", mode="w")
    repo.log_artifact("a", content, "bytes")
    with pytest.raises(SaveError):
        repo.save()
    assert list(elsewhere.iterdir()) == []
    assert not (root / "repository.json").exists()
