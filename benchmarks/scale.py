"""Cost of everyday operations against store size, and what gc's repack frees.

One store grows to each size in turn (distinct, incompressible content, so
every GiB is a GiB of chunks in packs); at each size a fresh process-like
open does a small save, a re-log of an unchanged file and a load, and the
number of storage requests each makes is counted. A copy of the store at the
smallest size is kept, and each figure is the ratio to the same operation on
that copy, in rounds alternating with it (this machine is shared and noisy).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from timing import times

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

_FILL = 256 << 20  # bytes per unreferenced object that grows the store
_COUNTED = ("list", "read_bytes", "read_range", "read_view", "open_read", "exists", "size")


@contextmanager
def counting() -> Iterator[dict[str, int]]:
    """Count calls to the local storage backend's request methods while the block runs."""
    from scribestore.storage.local import LocalStorage

    counts = {name: 0 for name in _COUNTED}
    real = {name: getattr(LocalStorage, name) for name in _COUNTED}

    def wrap(name: str) -> Any:
        def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return real[name](self, *args, **kwargs)

        return counted

    for name in _COUNTED:
        setattr(LocalStorage, name, wrap(name))
    try:
        yield counts
    finally:
        for name, fn in real.items():
            setattr(LocalStorage, name, fn)


def _grow(objects: Path, to_bytes: int, have: int, seed: int) -> int:
    from scribestore import ObjectStore

    store = ObjectStore(objects)
    rng = np.random.default_rng(seed)
    while have < to_bytes:
        store.put(rng.bytes(_FILL))
        have += _FILL
    return have


_RSS = textwrap.dedent(
    """
    import sys
    from scribestore import Repository
    with Repository(sys.argv[1], mode="r").load_artifact("probe") as reader:
        while reader.read(1 << 20):
            pass
    # VmHWM is this process's own peak (ru_maxrss would include the parent's before exec).
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            print(int(line.split()[1]))
    """
)


def _rss_mib(manifest: Path) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _RSS, str(manifest)], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip()) / 1024


def _operations(work: Path, n: int) -> dict[str, Callable[[], None]]:
    """A small save, a re-log of the unchanged probe file and a verified load, on ``work``."""
    from scribestore import Repository

    manifest = work / "repository.json"
    probe = work / "probe.bin"
    saved = [0]

    def small_save() -> None:
        repo = Repository(manifest, mode="a")
        repo.log_artifact("small", b"small %d %d" % (n, saved[0]), "bytes")
        repo.save()
        saved[0] += 1

    def relog() -> None:
        repo = Repository(manifest, mode="a")
        repo.log_artifact("probe", probe, "file")
        repo.save()

    def load() -> None:
        with Repository(manifest, mode="r").load_artifact("probe") as reader:
            while reader.read(1 << 20):  # every byte, verified
                pass

    return {"small_save": small_save, "relog": relog, "load": load}


def _measure(grown: Path, fresh: Path, rounds: int, n: int) -> dict[str, Any]:
    """Each operation on the grown store and on the fresh one, rounds alternating."""
    from scribestore.storage import listing_cache

    # Writeback of the bytes just written would slow the fsyncs of the first
    # saves; and a listing of packs/ is kept only once the directory has not
    # changed for 2 s (storage/listing_cache.py): measure the store at rest.
    os.sync()
    time.sleep(listing_cache.RACY_NS / 1e9)
    ops, ref = _operations(grown, n), _operations(fresh, n)
    out: dict[str, Any] = {}
    for name, fn in ops.items():
        fn(), ref[name]()  # warm: the page cache, and the stat cache for the re-log
        ours: list[float] = []
        theirs: list[float] = []
        for _ in range(rounds):
            ours += times(fn, 1)
            theirs += times(ref[name], 1)
        out[f"{name}_s"] = statistics.median(ours)
        out[f"{name}_fresh_s"] = statistics.median(theirs)
        with counting() as counts:
            fn()
        out[f"{name}_requests"] = sum(counts.values())
    out["open_and_load_rss_mib"] = _rss_mib(grown / "repository.json")
    packs = grown / "objects" / "packs"
    out["packs"] = sum(1 for p in packs.iterdir() if p.suffix == ".pack")
    out["merged_indexes"] = sum(1 for p in packs.iterdir() if p.suffix == ".midx")
    return out


def bench_scale(work: Path, sizes_gib: list[int], repeat: int) -> dict[str, Any]:
    """The operations at each store size (GiB of distinct chunks), each beside
    the same operation on a copy of the store at the smallest size."""
    from scribestore import Repository

    grown, fresh = work / "grown", work / "fresh"
    grown.mkdir()
    probe = grown / "probe.bin"
    probe.write_bytes(np.random.default_rng(1).bytes(64 << 20))
    repo = Repository(grown / "repository.json", mode="w")
    repo.log_artifact("probe", probe, "file")
    repo.save()
    have = 64 << 20
    results: dict[str, Any] = {}
    rounds = max(3 * repeat, 9)
    for n, gib in enumerate(sizes_gib):
        have = _grow(grown / "objects", gib << 30, have, seed=100 + n)
        if n == 0:
            shutil.copytree(grown, fresh)
        results[f"{gib}GiB"] = _measure(grown, fresh, rounds, n)
        print(f"  {gib} GiB: {results[f'{gib}GiB']}", flush=True)
    return results


def bench_repack(work: Path, versions: int, size: int) -> dict[str, Any]:
    """Stored bytes after dropping half of a fine-tune chain and running gc twice.

    The chain's versions go into two registered repositories; dropping the
    first one (forgotten by gc) leaves packs whose chunks are partly live.
    """
    import datetime as dt

    from scribestore import ObjectStore, Repository
    from scribestore.ops.gc import collect_garbage

    rng = np.random.default_rng(5)
    data = bytearray(rng.bytes(size))
    halves = [work / "first.json", work / "second.json"]
    for k in range(versions):
        repo = Repository(halves[k * 2 // versions], mode="a")
        repo.log_artifact("model", bytes(data), "bytes")
        repo.save()
        at = int(rng.integers(0, size - size // 4))
        data[at : at + size // 4] = rng.bytes(size // 4)  # a quarter rewritten per version
    store = ObjectStore(work / "objects")
    before = store.stats().stored_size
    halves[0].unlink()
    first = collect_garbage(store, grace=dt.timedelta(0), forget=[str(halves[0])])
    second = collect_garbage(store, grace=dt.timedelta(0))
    after = store.stats().stored_size
    live = ObjectStore(work / "objects").stored_bytes(
        v.hash for v in Repository(halves[1], mode="r").saved_versions()["model"]
    )
    return {
        "stored_before": before,
        "stored_after_gc": after,
        "live_bytes": live,
        "repacked_packs": len(first.repacked_packs),
        "repacked_bytes": first.repacked_bytes,
        "deleted_packs": len(second.deleted_packs),
        "after_over_live": after / live,
    }


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        print(bench_repack(Path(tmp), 8, 64 << 20))
