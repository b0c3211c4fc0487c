"""The local cache in front of remote stores: what a second load fetches, and what it checks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import msgspec
import numpy as np
import pytest

from scribestore import ConfigurationError, IntegrityError, ObjectStore, Repository
from scribestore.store.cache import ChunkCache, default_cache
from support.cli import invoke
from support.counting import count_reads
from support.locations import Location


def weights(n_bytes: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n_bytes // 4) * 0.02).astype("float32").tobytes()


def test_a_second_load_reads_no_object_bytes_from_the_store(
    location: Location, tmp_path: Path
) -> None:
    cache = ChunkCache(tmp_path / "cache")
    data = weights(12 << 20, seed=1)
    small = b"a small object" * 100
    digest = ObjectStore(location.join("objects"), **location.options).put(data)
    tiny = ObjectStore(location.join("objects"), **location.options).put(small)
    first = ObjectStore(location.join("objects"), cache=cache, **location.options)
    with count_reads(first.storage) as cold:
        assert first.get(digest) == data and first.get(tiny) == small
    assert cold.pack_bytes > len(data) // 2
    second = ObjectStore(location.join("objects"), cache=cache, **location.options)
    with count_reads(second.storage) as warm:
        assert second.get(digest) == data and second.get(tiny) == small
        with second.open(digest) as reader:
            reader.seek(5 << 20)
            assert reader.read(100) == data[5 << 20 : (5 << 20) + 100]
    assert warm.total == 0 and warm.requests == 0
    info = cache.info()
    assert info.entries > 100 and len(data) <= info.bytes < len(data) + (1 << 20)


def test_a_fine_tune_after_its_base_fetches_only_the_changed_chunks(tmp_path: Path) -> None:
    cache = ChunkCache(tmp_path / "cache")
    url = str(tmp_path / "store" / "objects")
    base = weights(16 << 20, seed=2)
    tuned = bytearray(base)
    tuned[3 << 20 : (3 << 20) + 8192] = weights(8192, seed=3)
    writer = ObjectStore(url)
    a, b = writer.put(base), writer.put(bytes(tuned))
    reader = ObjectStore(url, cache=cache)
    reader.get(a)
    with count_reads(reader.storage) as reads:
        assert reader.get(b) == bytes(tuned)
    assert 0 < reads.pack_bytes < 1 << 20  # a few chunks, not 16 MiB


def test_damaged_cache_entries_are_read_from_the_store_again(tmp_path: Path) -> None:
    cache = ChunkCache(tmp_path / "cache")
    url = str(tmp_path / "store" / "objects")
    data = weights(8 << 20, seed=4)
    digest = ObjectStore(url).put(data)
    ObjectStore(url, cache=cache).get(digest)
    entries = sorted((tmp_path / "cache").rglob("*"))
    files = [p for p in entries if p.is_file()]
    for path in files:  # flip a byte in every entry, recipe file included
        blob = bytearray(path.read_bytes())
        blob[len(blob) // 2] ^= 0x01
        path.write_bytes(bytes(blob))
    store = ObjectStore(url, cache=cache)
    with count_reads(store.storage) as reads:
        assert store.get(digest) == data
    assert reads.pack_bytes > len(data) // 2  # nothing damaged was used
    assert ObjectStore(url, cache=cache).get(digest) == data


def test_the_store_stays_the_authority_for_verify(tmp_path: Path) -> None:
    """verify reads the store, not the cache: a damaged pack is found though cached."""
    cache = ChunkCache(tmp_path / "cache")
    root = tmp_path / "store"
    root.mkdir()
    model = root / "m.bin"
    model.write_bytes(weights(8 << 20, seed=5))
    repo = Repository(root / "repository.json", mode="w")
    repo.log_artifact("model", model, handler="file")
    repo.save()
    ObjectStore(str(root / "objects"), cache=cache).get(repo.get_artifact_metadata("model")["hash"])
    [pack] = (root / "objects").rglob("*.pack")
    blob = bytearray(pack.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    pack.write_bytes(bytes(blob))
    report = Repository(root / "repository.json", mode="r").verify()
    assert [p.kind for p in report.problems] == ["corrupt"]
    cached = ObjectStore(str(root / "objects"), cache=cache)
    assert cached.get(repo.get_artifact_metadata("model")["hash"]) == model.read_bytes()
    with pytest.raises(IntegrityError):
        ObjectStore(str(root / "objects"), cache=False).get(
            repo.get_artifact_metadata("model")["hash"]
        )


def test_prune_keeps_the_most_recently_used(tmp_path: Path) -> None:
    cache = ChunkCache(tmp_path / "cache", limit=1 << 30)
    import blake3

    blobs = [bytes([i]) * 1000 for i in range(10)]
    for i, blob in enumerate(blobs):
        digest = blake3.blake3(blob).digest()
        cache.put(digest, blob)
        path = cache.root / "chunks" / digest.hex()[:2] / digest.hex()
        os.utime(path, (1_000_000 + i, 1_000_000 + i))
    assert cache.get(blake3.blake3(blobs[0]).digest()) == blobs[0]  # used: now the newest
    deleted, freed = cache.prune(3000)
    assert (deleted, freed) == (7, 7000)
    kept = [b for b in blobs if cache.get(blake3.blake3(b).digest()) is not None]
    assert kept == [blobs[0], blobs[8], blobs[9]]
    assert cache.info().entries == 3


def test_the_environment_configures_the_default_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCRIBESTORE_CACHE", "off")
    assert default_cache() is None
    monkeypatch.setenv("SCRIBESTORE_CACHE", "on")
    monkeypatch.setenv("SCRIBESTORE_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("SCRIBESTORE_CACHE_SIZE", "12345")
    cache = default_cache()
    assert cache is not None and cache.root == tmp_path / "c" and cache.limit == 12345
    monkeypatch.delenv("SCRIBESTORE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache().root == tmp_path / "xdg" / "scribestore"  # type: ignore[union-attr]
    monkeypatch.setenv("SCRIBESTORE_CACHE_SIZE", "ten gigs")
    with pytest.raises(ConfigurationError, match="SCRIBESTORE_CACHE_SIZE"):
        default_cache()
    # Local stores never get the environment's cache; remote ones do.
    monkeypatch.setenv("SCRIBESTORE_CACHE_SIZE", "1000000")
    assert ObjectStore(tmp_path / "local").cache is None
    assert ObjectStore(f"local://{tmp_path / 'viafsspec'}").cache is not None


def test_cli_cache_info_and_prune(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCRIBESTORE_CACHE", "on")
    monkeypatch.setenv("SCRIBESTORE_CACHE_DIR", str(tmp_path / "c"))
    cache = default_cache()
    assert cache is not None
    url = str(tmp_path / "store" / "objects")
    ObjectStore(url, cache=cache).get(ObjectStore(url).put(weights(8 << 20)))
    held = cache.info()
    result = invoke("cache", "info", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == msgspec.to_builtins(held)
    result = invoke("cache", "prune", "--to", "0")
    assert result.exit_code == 0 and f"deleted {held.entries} entries" in result.stdout
    assert cache.info().entries == 0
    monkeypatch.setenv("SCRIBESTORE_CACHE", "off")
    assert invoke("cache", "info").exit_code == 1


def test_repository_loads_from_a_remote_store_use_the_environments_cache(
    shared_location: Location, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCRIBESTORE_CACHE", "on")
    monkeypatch.setenv("SCRIBESTORE_CACHE_DIR", str(tmp_path / "cache"))
    model = tmp_path / "model.bin"
    model.write_bytes(weights(8 << 20, seed=7))
    url = shared_location.join("repository.json")
    repo = Repository(url, mode="w", **shared_location.options)
    repo.log_artifact("model", model, handler="file")
    repo.save()
    remote = shared_location.backend != "local"
    for attempt in range(2):
        reader = Repository(url, mode="r", **shared_location.options)
        assert (reader.objects.cache is not None) is remote
        with count_reads(reader.objects.storage) as reads:
            reader.load_artifact("model", dest=tmp_path / f"out{attempt}.bin")
        assert (tmp_path / f"out{attempt}.bin").read_bytes() == model.read_bytes()
        if attempt == 1 and remote:
            assert reads.total == 0  # the second load came from the cache
        else:
            assert reads.pack_bytes > 0
