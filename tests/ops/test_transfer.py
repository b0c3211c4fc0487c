"""ops.transfer and ObjectStore.copy_to: objects copied with their digest known."""

from __future__ import annotations

import errno
from pathlib import Path

import blake3
import numpy as np
import pytest

import scribestore.store.writer as writer_module
from scribestore import CorruptObjectError, IntegrityError, ObjectStore, StorageError
from scribestore.ops.transfer import transfer
from scribestore.store.layout import PACK_DIR, object_path
from scribestore.store.loose import HEADER_SIZE, Codec, encode_header
from support.locations import Location
from support.progress import Recorder


def weights(n_bytes: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n_bytes // 4) * 0.02).astype("float32").tobytes()


def target_at(location: Location) -> ObjectStore:
    return ObjectStore(location.join("objects"), **location.options)


def no_rechunking(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every path that chunks or spools content fail: a transfer must not take it."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the transfer chunked, hashed or spooled the content again")

    monkeypatch.setattr(writer_module, "write_chunks", refuse)
    monkeypatch.setattr(ObjectStore, "_put_stream", refuse)
    monkeypatch.setattr(ObjectStore, "put_sized", refuse)


def test_a_chunked_object_is_copied_blob_by_blob(
    location: Location, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = ObjectStore(tmp_path / "source")
    data = weights(12 << 20)
    digest = source.put(data)
    assert source.stat(digest).codec is Codec.CHUNKED
    target = target_at(location)
    no_rechunking(monkeypatch)
    rec = Recorder()
    report = transfer(source, target, [digest, digest], progress=rec)
    assert report.copied == (digest,) and report.present == 0
    assert report.bytes_copied == len(data) and rec.advanced == len(data) and rec.closed
    assert target.get(digest) == data
    # Blobs went over as stored: the target holds about what the source does.
    assert target.stats().stored_size <= source.stats().stored_size * 1.05
    again = transfer(source, target, [digest])
    assert again.copied == () and again.present == 1


def test_a_fine_tune_copies_only_its_new_chunks(location: Location, tmp_path: Path) -> None:
    source = ObjectStore(tmp_path / "source")
    base = weights(16 << 20, seed=1)
    tuned = bytearray(base)
    tuned[4 << 20 : (4 << 20) + (512 << 10)] = weights(512 << 10, seed=2)
    first, second = source.put(base), source.put(bytes(tuned))
    target = target_at(location)
    transfer(source, target, [first])
    before = target.stats().stored_size
    transfer(source, target, [second])
    grew = target.stats().stored_size - before
    assert 0 < grew < len(base) // 8
    assert target.get(second) == bytes(tuned)


def test_a_loose_object_is_copied(location: Location, tmp_path: Path) -> None:
    source = ObjectStore(tmp_path / "source")
    digest = source.put(b"a small artifact" * 100)
    target = target_at(location)
    report = transfer(source, target, [digest])
    assert report.copied == (digest,) and target.get(digest) == b"a small artifact" * 100


def test_the_same_store_copies_nothing(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "objects")
    digest = store.put(b"x")
    assert transfer(store, ObjectStore(tmp_path / "objects"), [digest]).present == 1


def _first_pack(root: Path) -> Path:
    return sorted((root / PACK_DIR).glob("*.pack"))[0]


def test_a_damaged_chunk_publishes_nothing(location: Location, tmp_path: Path) -> None:
    source = ObjectStore(tmp_path / "source")
    digest = source.put(weights(6 << 20, seed=3))
    pack = _first_pack(tmp_path / "source")
    raw = bytearray(pack.read_bytes())
    raw[len(raw) // 3] ^= 0xFF
    pack.write_bytes(bytes(raw))
    target = target_at(location)
    with pytest.raises(CorruptObjectError):
        transfer(source, target, [digest])
    assert digest not in target


def test_a_recipe_of_other_content_publishes_nothing(location: Location, tmp_path: Path) -> None:
    source = ObjectStore(tmp_path / "source")
    one = source.put(weights(6 << 20, seed=4))
    other = source.put(weights(6 << 20, seed=5))
    # The recipe of ``other`` stored under the name of ``one``: every chunk is
    # sound, only the whole content betrays it.
    (tmp_path / "source" / object_path(one)).write_bytes(
        (tmp_path / "source" / object_path(other)).read_bytes()
    )
    target = target_at(location)
    with pytest.raises(IntegrityError) as info:
        transfer(source, target, [one])
    assert (
        info.value.expected == one
        and info.value.actual == blake3.blake3(source.get(other)).hexdigest()
    )
    assert one not in target


def test_a_damaged_copy_in_the_target_is_replaced(tmp_path: Path) -> None:
    source = ObjectStore(tmp_path / "source")
    data = b"content" * 1000
    digest = source.put(data)
    target = ObjectStore(tmp_path / "target")
    transfer(source, target, [digest])
    path = tmp_path / "target" / object_path(digest)
    raw = bytearray(path.read_bytes())
    raw[HEADER_SIZE + 3] ^= 0xFF
    path.write_bytes(bytes(raw))
    report = transfer(source, target, [digest])
    assert report.copied == (digest,) and target.get(digest) == data


def test_a_large_loose_object_from_before_chunking_is_streamed(
    location: Location, tmp_path: Path
) -> None:
    source = ObjectStore(tmp_path / "source")
    data = weights(6 << 20, seed=6)
    digest = blake3.blake3(data).hexdigest()
    path = tmp_path / "source" / object_path(digest)
    path.parent.mkdir(parents=True)
    path.write_bytes(encode_header(Codec.RAW, len(data)) + data)
    assert source.stat(digest).codec is Codec.RAW
    target = target_at(location)
    assert transfer(source, target, [digest]).bytes_copied == len(data)
    assert target.get(digest) == data


def test_a_failing_source_read_names_the_source(
    location: Location, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = ObjectStore(tmp_path / "source")
    digest = source.put(weights(6 << 20, seed=7))
    target = target_at(location)

    def broken(*args: object, **kwargs: object) -> bytes:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(source.storage, "read_view", broken)
    with pytest.raises(StorageError, match="Input/output error") as info:
        transfer(source, target, [digest])
    assert source.url in str(info.value)
    assert digest not in target


def test_a_failing_target_write_names_the_target(tmp_path: Path, monkeypatch) -> None:
    source = ObjectStore(tmp_path / "source")
    digest = source.put(weights(6 << 20, seed=8))
    target = ObjectStore(tmp_path / "target")

    def full(*args: object, **kwargs: object) -> bool:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(target.storage, "write_new", full)
    with pytest.raises(StorageError, match="No space left") as info:
        transfer(source, target, [digest])
    assert target.url in str(info.value)
    monkeypatch.undo()
    assert digest not in target


def test_a_loose_object_is_copied_as_stored(tmp_path: Path) -> None:
    source = ObjectStore(tmp_path / "source")
    digest = source.put(b"compressible " * 5000)
    target = ObjectStore(tmp_path / "target")
    transfer(source, target, [digest])
    copied = (tmp_path / "target" / object_path(digest)).read_bytes()
    assert copied == (tmp_path / "source" / object_path(digest)).read_bytes()


@pytest.mark.parametrize("where", ["header", "payload", "tail"])
def test_a_damaged_loose_object_publishes_nothing(tmp_path: Path, where: str) -> None:
    source = ObjectStore(tmp_path / "source")
    digest = source.put(bytes(range(256)) * 10)
    path = tmp_path / "source" / object_path(digest)
    raw = bytearray(path.read_bytes())
    if where == "header":
        raw[8] ^= 0x01  # the recorded size
    elif where == "payload":
        raw[HEADER_SIZE + 5] ^= 0xFF
    else:
        raw += b"trailing"
    path.write_bytes(bytes(raw))
    target = ObjectStore(tmp_path / "target")
    with pytest.raises(IntegrityError):
        transfer(source, target, [digest])
    assert digest not in target


def test_objects_already_there_fill_their_share_of_the_bar(tmp_path: Path) -> None:
    source = ObjectStore(tmp_path / "source")
    target = ObjectStore(tmp_path / "target")
    small, big = b"small object" * 10, weights(6 << 20)
    digests = [source.put(small), source.put(big)]
    transfer(source, target, digests[:1])  # the small one is there already
    rec = Recorder()
    sizes = {digests[0]: len(small), digests[1]: len(big)}
    report = transfer(source, target, digests, progress=rec, sizes=sizes)
    assert report.copied == (digests[1],) and report.present == 1
    assert rec.starts == [(len(small) + len(big), "copying 2 objects")]
    assert rec.advanced == len(small) + len(big) and rec.closed  # the bar ends full
