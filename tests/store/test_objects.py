"""The object store, run against every backend (local, memory, S3)."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import time
from pathlib import Path

import blake3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scribestore import (
    ArtifactLogError,
    ContentChangedError,
    CorruptObjectError,
    IntegrityError,
    InvalidDigestError,
    ObjectNotFoundError,
    ObjectStore,
    UnsupportedFormatError,
)
from scribestore.store.chunks import CHUNK_THRESHOLD
from scribestore.store.layout import object_path
from scribestore.store.loose import HEADER_SIZE, Codec, encode_header
from support.helpers import PEAK_RSS, python_child, run_child
from support.locations import Location
from support.progress import Recorder


def b3(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def open_store(loc: Location) -> ObjectStore:
    return ObjectStore(loc.join("objects"), **loc.options)


def tamper(store: ObjectStore, digest: str, change) -> None:
    """Rewrite the stored file of ``digest`` with ``change(old_bytes)``."""
    path = object_path(digest)
    store.storage.write_atomic(path, change(store.storage.read_bytes(path)))


# --- put / get / open ---------------------------------------------------------


def test_put_bytes_returns_blake3_and_round_trips(location: Location) -> None:
    store = open_store(location)
    data = b"scribestore " * 1000
    digest = store.put(data)
    assert digest == b3(data)
    assert store.get(digest) == data
    with store.open(digest) as reader:
        assert reader.read() == data
        assert reader.verified


def test_put_accepts_bytearray_memoryview_stream_and_path(
    location: Location, tmp_path: Path
) -> None:
    store = open_store(location)
    data = os.urandom(100_000)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    digests = {
        store.put(bytearray(data)),
        store.put(memoryview(data)),
        store.put(io.BytesIO(data)),
        store.put(src),
    }
    assert digests == {b3(data)}
    assert list(store) == [b3(data)]


def test_put_rejects_str_and_other_types(location: Location) -> None:
    store = open_store(location)
    with pytest.raises(TypeError, match=r"pathlib\.Path"):
        store.put("some/path")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.put(12)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="binary"):
        store.put(io.StringIO("text"))  # type: ignore[arg-type]
    assert list(store) == []


def test_empty_content(location: Location) -> None:
    store = open_store(location)
    digest = store.put(b"")
    assert digest == b3(b"")
    assert store.get(digest) == b""
    with store.open(digest) as reader:
        assert reader.read() == b""
    assert store.stat(digest).size == 0


def test_large_stream_spills_and_round_trips(location: Location) -> None:
    store = open_store(location)
    data = os.urandom(3 << 20) * 7  # 21 MiB: past the in-memory spool
    digest = store.put(io.BytesIO(data))
    assert digest == b3(data)
    with store.open(digest) as reader:
        got = bytearray()
        while chunk := reader.read(1 << 20):
            got += chunk
    assert bytes(got) == data


def test_identical_content_is_stored_once(location: Location) -> None:
    store = open_store(location)
    data = b"same bytes" * 50
    first = store.put(data)
    stored_before = store.stats()
    second = store.put(io.BytesIO(data))
    assert first == second
    assert store.stats() == stored_before
    assert store.stats().objects == 1


def test_open_reads_in_small_pieces_and_readinto(location: Location) -> None:
    store = open_store(location)
    data = b"0123456789abcdef" * 4096
    digest = store.put(data)
    with store.open(digest) as reader:
        parts = []
        while piece := reader.read(1000):
            parts.append(piece)
        assert b"".join(parts) == data
    buf = bytearray(len(data))
    with store.open(digest) as reader:
        n = reader.readinto(buf)
        assert bytes(buf[:n]) == data[:n]


# --- compression --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "make", "expected"),
    [
        ("random", lambda: os.urandom(1 << 20), Codec.RAW),
        ("zeros", lambda: bytes(1 << 20), Codec.ZSTD),
        (
            "json",
            lambda: json.dumps([{"id": i, "score": i / 7} for i in range(20000)]).encode(),
            Codec.ZSTD,
        ),
        ("float32", lambda: _float_weights(1 << 18), Codec.RAW),
        ("tiny", lambda: b"ab", Codec.RAW),
    ],
)
def test_zstd_only_where_it_pays(location: Location, name: str, make, expected: Codec) -> None:
    store = open_store(location)
    data = make()
    digest = store.put(data)
    info = store.stat(digest)
    assert info.codec is expected, name
    assert info.size == len(data)
    if expected is Codec.ZSTD:
        assert info.stored_size < len(data) * 0.9
    else:
        assert info.stored_size == len(data) + HEADER_SIZE
    assert store.get(digest) == data


def _float_weights(n: int) -> bytes:
    import numpy as np

    return np.random.default_rng(0).standard_normal(n).astype("float32").tobytes()


# --- verification -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["raw", "zstd"])
def test_flipped_bit_raises_integrity_error(location: Location, kind: str) -> None:
    store = open_store(location)
    data = os.urandom(200_000) if kind == "raw" else b"abc" * 100_000
    digest = store.put(data)

    def flip(old: bytes) -> bytes:
        pos = HEADER_SIZE + (len(old) - HEADER_SIZE) // 2
        return old[:pos] + bytes([old[pos] ^ 0x10]) + old[pos + 1 :]

    tamper(store, digest, flip)
    with pytest.raises(IntegrityError) as err:
        store.get(digest)
    assert err.value.expected == digest
    assert err.value.actual != digest
    assert digest in str(err.value)
    with pytest.raises(IntegrityError), store.open(digest) as reader:
        reader.read()


@pytest.mark.parametrize("kind", ["raw", "zstd"])
def test_truncated_object_raises_integrity_error(location: Location, kind: str) -> None:
    store = open_store(location)
    data = os.urandom(100_000) if kind == "raw" else b"xyz" * 100_000
    digest = store.put(data)
    tamper(store, digest, lambda old: old[: len(old) - 100])
    with pytest.raises(IntegrityError) as err:
        store.get(digest)
    assert err.value.expected == digest
    with pytest.raises(IntegrityError), store.open(digest) as reader:
        while reader.read(4096):
            pass


def test_streaming_reader_never_ends_cleanly_on_bad_bytes(location: Location) -> None:
    store = open_store(location)
    data = os.urandom(50_000)
    digest = store.put(data)
    tamper(store, digest, lambda old: old[:-1] + bytes([old[-1] ^ 1]))
    reader = store.open(digest)
    with pytest.raises(IntegrityError):  # a small object is verified before any byte
        reader.read(len(data))
    reader.close()


def test_trailing_garbage_and_bad_header(location: Location) -> None:
    store = open_store(location)
    digest = store.put(os.urandom(1000))
    tamper(store, digest, lambda old: old + b"extra")
    with pytest.raises(IntegrityError):
        store.get(digest)
    with pytest.raises(IntegrityError), store.open(digest) as reader:
        reader.read()
    tamper(store, digest, lambda old: b"NOPE" + old[4:])
    with pytest.raises(CorruptObjectError):
        store.get(digest)
    tamper(store, digest, lambda old: old[:5])
    with pytest.raises(CorruptObjectError):
        store.open(digest)


def test_newer_object_format_is_refused(location: Location) -> None:
    store = open_store(location)
    digest = store.put(b"payload")
    tamper(store, digest, lambda old: old[:4] + bytes([99]) + old[5:])
    with pytest.raises(UnsupportedFormatError, match="newer"):
        store.get(digest)


def test_object_stored_under_wrong_name_is_caught(location: Location) -> None:
    store = open_store(location)
    good = b"the real content"
    digest = b3(good)
    evil = b"something else!!"
    store.storage.write_new(object_path(digest), [encode_header(Codec.RAW, len(evil)), evil])
    with pytest.raises(IntegrityError) as err:
        store.get(digest)
    assert err.value.actual == b3(evil)


# --- lookups, iteration, delete, stats ---------------------------------------


def test_missing_object_raises_lookup_error(location: Location) -> None:
    store = open_store(location)
    digest = b3(b"never stored")
    for call in (store.get, store.open, store.delete, store.stat):
        with pytest.raises(ObjectNotFoundError) as err:
            call(digest)
        assert isinstance(err.value, LookupError)
        assert digest in str(err.value)
    assert not store.has(digest)
    assert digest not in store


def test_has_iter_delete_stats(location: Location) -> None:
    store = open_store(location)
    contents = [os.urandom(1000 + i) for i in range(5)] + [bytes(10_000)]
    digests = {store.put(c) for c in contents}
    assert set(store) == digests
    assert sorted(store) == list(store)
    assert all(store.has(d) and d in store for d in digests)
    stats = store.stats()
    assert stats.objects == 6
    assert stats.logical_size == sum(len(c) for c in contents)
    assert stats.stored_size < stats.logical_size + 6 * HEADER_SIZE  # the zeros compress
    victim = b3(contents[0])
    store.delete(victim)
    assert not store.has(victim)
    assert set(store) == digests - {victim}
    assert store.stats().objects == 5
    with pytest.raises(ObjectNotFoundError):
        store.get(victim)


def test_iteration_ignores_temp_and_foreign_files(location: Location) -> None:
    store = open_store(location)
    digest = store.put(b"keep me")
    store.storage.write_atomic(f"{digest[:2]}/.tmp-deadbeef", b"partial")
    store.storage.write_atomic("README", b"not an object")
    store.storage.write_atomic(f"ff/{digest}", b"misplaced")
    assert list(store) == [digest]


BAD_DIGESTS = [
    "../../etc/passwd",
    "A" * 64,
    "a" * 63,
    "a" * 65,
    "g" * 64,
    "/" + "a" * 63,
    "aa/" + "a" * 61,
    "",
    None,
    b"a" * 64,
    64,
]


@pytest.mark.parametrize("bad", BAD_DIGESTS)
def test_malformed_digest_rejected_before_io(
    location: Location, bad: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(location)

    def explode(*args: object, **kwargs: object) -> None:
        raise AssertionError("the storage was touched for a malformed digest")

    for name in ("read_bytes", "read_range", "read_view", "open_read", "exists", "size", "delete"):
        monkeypatch.setattr(store.storage, name, explode)
    for call in (store.get, store.open, store.has, store.delete, store.stat):
        with pytest.raises(InvalidDigestError) as err:
            call(bad)  # type: ignore[arg-type]
        assert isinstance(err.value, ValueError)
    assert bad not in store


# --- concurrency and crashes ---------------------------------------------------

_PUT_CHILD = """
import json, sys
from scribestore import ObjectStore
url, options, size, seed = (json.loads(a) for a in sys.argv[1:])
import random
data = random.Random(seed).randbytes(size)
print(ObjectStore(url, **options).put(data))
"""


def test_two_processes_put_same_content(shared_location: Location) -> None:
    url = shared_location.join("objects")
    procs = [python_child(_PUT_CHILD, url, shared_location.options, 8 << 20, 42) for _ in range(2)]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outs.append(out.strip())
    store = ObjectStore(url, **shared_location.options)
    data = random.Random(42).randbytes(8 << 20)
    assert outs == [b3(data)] * 2
    assert list(store) == [b3(data)]
    assert store.get(outs[0]) == data


def test_threads_put_same_content(location: Location) -> None:
    from concurrent.futures import ThreadPoolExecutor

    store = open_store(location)
    data = os.urandom(2 << 20)
    with ThreadPoolExecutor(4) as pool:
        digests = list(pool.map(lambda _: store.put(io.BytesIO(data)), range(8)))
    assert set(digests) == {b3(data)}
    assert list(store) == [b3(data)]


_SLOW_PUT_CHILD = """
import json, sys, time
import scribestore.store.packs as packs
import scribestore.store.writer as writer
from scribestore import ObjectStore
url, options, seed, size = (json.loads(a) for a in sys.argv[1:])
real_encode = writer.encode_loose

def slow_encode(*args):
    for i, chunk in enumerate(real_encode(*args)):
        yield chunk
        if i == 2:
            print("writing", flush=True)
            time.sleep(60)

real_add = packs.PackWriter._record
calls = [0]

def slow_add(self, *args):
    real_add(self, *args)
    calls[0] += 1
    if calls[0] == 600:  # past the first 32 MiB pack
        time.sleep(2)  # let the background writer publish it
        print("writing", flush=True)
        time.sleep(60)

writer.encode_loose = slow_encode
packs.PackWriter._record = slow_add
import random
data = random.Random(seed).randbytes(size)
ObjectStore(url, **options).put(data)
print("finished", flush=True)
"""


@pytest.mark.parametrize("size", [3 << 20, 96 << 20], ids=["loose", "chunked"])
def test_killed_writer_publishes_nothing(shared_location: Location, size: int) -> None:
    url = shared_location.join("objects")
    store = ObjectStore(url, **shared_location.options)
    kept = store.put(os.urandom(300_000))
    proc = python_child(_SLOW_PUT_CHILD, url, shared_location.options, 7, size)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    victim = b3(random.Random(7).randbytes(size))
    assert not store.has(victim)
    if size > 4 << 20:  # the kill came after a pack was published, before the recipe
        assert any(p.startswith("packs/") for p in store.storage.list())
    assert list(store) == [kept]
    for digest in store:
        assert b3(store.get(digest)) == digest


_PUT_LOOP_CHILD = """
import json, os, sys
from scribestore import ObjectStore
url, seed = (json.loads(a) for a in sys.argv[1:])
import random
rng = random.Random(seed)
store = ObjectStore(url)
print("ready", flush=True)
while True:
    store.put(rng.randbytes(rng.randrange(1, 6 << 20)))
"""


@pytest.mark.slow
def test_random_kills_leave_only_complete_objects(tmp_path: Path) -> None:
    url = str(tmp_path / "objects")
    rng = random.Random(1)
    for trial in range(10):
        proc = python_child(_PUT_LOOP_CHILD, url, trial)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    store = ObjectStore(url)
    digests = list(store)
    assert digests
    for digest in digests:
        with store.open(digest) as reader:
            reader.read()
            assert reader.verified


def _change_keeping_mtime(path: str | Path, offset: int) -> None:
    """Overwrite a few bytes at ``offset``, then put the mtime back (ctime still moves)."""
    stat = os.stat(path)
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(b"changed!")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.mark.parametrize("size", [3 << 20, 20 << 20], ids=["loose", "chunked"])
def test_source_changing_during_put_publishes_nothing(
    tmp_path: Path, monkeypatch, size: int
) -> None:
    """Content named by a first pass is hashed again while it is stored (FORMAT 4.3)."""
    import scribestore.store.writer as objects

    store = ObjectStore(tmp_path / "objects")
    data = os.urandom(size)
    # A stored object with the same first chunk: the new file may be a re-log,
    # so it is named by a first hashing pass before it is chunked.
    store.put(data[: 1 << 20] + os.urandom(size - (1 << 20)))
    stored = list(store)
    src = tmp_path / "model.bin"
    src.write_bytes(data)
    # The first pass hashes a large file through its descriptor, a small one
    # as the bytes read: the file changes right after either.
    name = "hash_file" if size >= objects.CHUNK_THRESHOLD else "hash_bytes"
    real = getattr(objects, name)

    def hash_then_modify(source, **kwargs):
        result = real(source, **kwargs)
        _change_keeping_mtime(src, size - 100)
        return result

    monkeypatch.setattr(objects, name, hash_then_modify)
    with pytest.raises(ContentChangedError, match="changed while"):
        store.put(src)
    assert list(store) == stored
    assert not any(p.name.startswith(".tmp-") for p in (tmp_path / "objects").rglob("*"))


def test_file_changing_during_single_pass_publishes_nothing(tmp_path: Path, monkeypatch) -> None:
    """New content is named by the chunking pass; a file changed meanwhile is refused."""
    from scribestore.store.chunks import FileWindows

    store = ObjectStore(tmp_path / "objects")
    size = 20 << 20
    src = tmp_path / "model.bin"
    src.write_bytes(os.urandom(size))
    real_window = FileWindows.window

    def window_then_modify(self, start, length, into):
        out = real_window(self, start, length, into)
        if start > 0:  # after the probe and the first window were read
            _change_keeping_mtime(src, size - 100)
        return out

    monkeypatch.setattr(FileWindows, "window", window_then_modify)
    with pytest.raises(ContentChangedError, match="changed while"):
        store.put(src)
    assert list(store) == []
    monkeypatch.undo()
    digest = store.put(src)
    assert digest == b3(src.read_bytes())
    assert store.get(digest) == src.read_bytes()


def test_buffer_changing_during_put_publishes_nothing(tmp_path: Path, monkeypatch) -> None:
    """Only the second hashing pass can see this: a buffer has no mtime."""
    import scribestore.store.writer as objects

    store = ObjectStore(tmp_path / "objects")
    data = bytearray(os.urandom(20 << 20))
    store.put(bytes(data[: 1 << 20]) + os.urandom(5 << 20))  # same first chunk: two passes
    stored = list(store)
    real_hash_bytes = objects.hash_bytes

    def hash_then_modify(buf):
        result = real_hash_bytes(buf)
        data[19 << 20] ^= 0xFF
        return result

    monkeypatch.setattr(objects, "hash_bytes", hash_then_modify)
    with pytest.raises(ContentChangedError, match="changed while"):
        store.put(data)
    assert list(store) == stored
    monkeypatch.undo()
    assert store.get(store.put(data)) == data


# --- properties ----------------------------------------------------------------


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.binary(max_size=4096) | st.builds(lambda n: b"\0" * n, st.integers(0, 70_000)))
def test_property_put_get_round_trips(location: Location, data: bytes) -> None:
    if location.backend == "s3" and len(data) % 4:
        return  # a quarter of the examples on S3: each costs several requests to moto
    store = open_store(location)
    digest = store.put(data)
    assert digest == b3(data)
    assert store.put(io.BytesIO(data)) == digest
    assert store.get(digest) == data
    with store.open(digest) as reader:
        assert reader.read() == data


# --- memory bounds -------------------------------------------------------------

_RSS_CHILD = (
    PEAK_RSS
    + """
import json, os, resource, sys
from pathlib import Path
from scribestore import ObjectStore
root, src, how = (json.loads(a) for a in sys.argv[1:])
store = ObjectStore(root)
base = peak_rss()
if how == "path":
    digest = store.put(Path(src))
else:
    with open(src, "rb") as f:
        digest = store.put(f)
after_put = peak_rss()
with store.open(digest) as r:
    while r.read(8 << 20):
        pass
    assert r.verified
after_read = peak_rss()
print(json.dumps({"base": base, "put": after_put, "read": after_read, "digest": digest}))
"""
)


def _write_big(path: Path, size: int, compressible: bool) -> None:
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for i in range(size >> 20):
            if compressible:
                f.write(b"%08d" % i * (1 << 17))
            else:
                f.write(block[i % 256 :] + block[: i % 256])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("how", "compressible"), [("path", False), ("stream", False), ("path", True)]
)
def test_put_2gib_keeps_rss_bounded(tmp_path: Path, how: str, compressible: bool) -> None:
    src = tmp_path / "big.bin"
    _write_big(src, 2 << 30, compressible)
    out = run_child(_RSS_CHILD, str(tmp_path / "objects"), str(src), how, timeout=600)
    result = json.loads(out)
    grew_put = (result["put"] - result["base"]) * 1024  # VmHWM is in KiB
    grew_read = (result["read"] - result["base"]) * 1024
    assert grew_put < 200 << 20, f"put grew peak RSS by {grew_put >> 20} MiB"
    assert grew_read < 200 << 20, f"read grew peak RSS by {grew_read >> 20} MiB"
    store = ObjectStore(tmp_path / "objects")
    info = store.stat(result["digest"])
    assert info.size == 2 << 30 and info.codec is Codec.CHUNKED
    # Both files repeat themselves, so chunk dedup (and zstd) store far less.
    assert info.stored_size < info.size // 10


@pytest.mark.parametrize("size", [200_000, 6 << 20], ids=["loose", "chunked"])
def test_put_reports_progress(location: Location, tmp_path: Path, size: int) -> None:
    store = open_store(location)
    data = random.Random(size).randbytes(size)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    for source in (src, data, io.BytesIO(data)):
        rec = Recorder()
        store.put(source, progress=rec)
        # A large stream is chunked as it is read: its size is known only at its end.
        total = None if isinstance(source, io.BytesIO) and size >= CHUNK_THRESHOLD else size
        assert rec.starts == [(total, "storing")] and rec.advanced == size and rec.closed


def test_hash_file_stops_between_windows_when_told(tmp_path: Path) -> None:
    from scribestore.store.hashing import HashStopped, hash_file

    data = os.urandom(40 << 20)  # three 16 MiB windows
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    asked: list[int] = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 2

    with pytest.raises(HashStopped):
        hash_file(path, stop=stop)
    assert len(asked) == 3  # asked before each window; the third answer was yes
    assert hash_file(path, stop=lambda: False) == (b3(data), len(data))


def test_a_refresh_keeps_packs_added_while_it_lists(tmp_path: Path) -> None:
    """A pack this process publishes during a refresh's listing is not taken for deleted."""
    from scribestore.store.pack_index import PackIndex
    from scribestore.store.packs import read_pack_table

    def packs(index: PackIndex) -> set[str]:
        return {loc.pack for _, loc in index.items()}

    store = ObjectStore(tmp_path / "objects")
    for i in range(3):
        store.put(random.Random(i).randbytes(6 << 20))
    index = PackIndex(store.storage)
    index.refresh()
    other = ObjectStore(tmp_path / "objects")
    real_list = store.storage.list
    late: set[str] = set()
    tables_read: list[str] = []

    def racing_list(prefix: str = "") -> object:
        names = list(real_list(prefix))
        other.put(random.Random(99).randbytes(6 << 20))  # published after the listing
        fresh = PackIndex(other.storage)
        fresh.refresh()
        for pack in packs(fresh) - packs(index):
            table = read_pack_table(other.storage, pack)
            index.add(pack, table.total, table.entries)  # as PackWriter publishes it
            late.add(pack)
        tables_read.append("listed")
        return iter(names)

    store.storage.list = racing_list  # type: ignore[method-assign]
    before = len(list(index.items()))
    index.refresh()
    assert late and late <= packs(index)
    assert len(list(index.items())) > before  # nothing was forgotten


@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
def test_put_refuses_a_path_that_is_not_a_regular_file(tmp_path: Path, kind: str) -> None:
    """A FIFO is refused at once (opening it for reading would wait for a
    writer), a device is never read (``/dev/zero`` has no end)."""
    if kind == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        path = tmp_path / "pipe"
        os.mkfifo(path)
    elif kind == "directory":
        path = tmp_path / "folder"
        path.mkdir()
    else:
        path = Path(os.devnull)
    store = ObjectStore(tmp_path / "objects")
    with pytest.raises(ArtifactLogError, match="not a regular file"):
        store.put(path)
    assert list(store) == []
