"""One benchmark scenario per call, run in a fresh child process.

``python benchmarks/scenarios.py NAME JSON_ARGS`` prints one JSON object:
the scenario's figures plus ``peak_rss_growth_mib`` (peak resident memory of
this process above its level before the measured work).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import blake3

from timing import evict

SCENARIOS: dict[str, Callable[..., dict[str, Any]]] = {}


def scenario(fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    SCENARIOS[fn.__name__] = fn
    return fn


def rss_mib() -> float:
    """Peak resident memory of this process (VmHWM; ru_maxrss would include
    the parent's peak, inherited across fork+exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# --- baselines -----------------------------------------------------------------


def _copy_and_fsync(src: str, dst: Path) -> None:
    subprocess.run(["cp", src, str(dst)], check=True)
    fd = os.open(dst, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@scenario
def cp_fsync(src: str, work: str) -> dict[str, Any]:
    dst = Path(work) / "copy.bin"
    return {"seconds": timed(lambda: _copy_and_fsync(src, dst))}


@scenario
def cp_fsync_b3(src: str, work: str) -> dict[str, Any]:
    """The sequential floor of storing new content: copy it durably, then
    hash it with BLAKE3 on every core."""
    dst = Path(work) / "copy.bin"

    def run() -> None:
        _copy_and_fsync(src, dst)
        blake3.blake3(max_threads=blake3.blake3.AUTO).update_mmap(src).digest()

    return {"seconds": timed(run)}


@scenario
def b3_file(src: str, work: str) -> dict[str, Any]:
    """BLAKE3 of a file on every core: what naming new content costs at least."""
    return {
        "seconds": timed(
            lambda: blake3.blake3(max_threads=blake3.blake3.AUTO).update_mmap(src).digest()
        )
    }


@scenario
def cp_plain(src: str, work: str) -> dict[str, Any]:
    dst = Path(work) / "copy.bin"
    return {"seconds": timed(lambda: subprocess.run(["cp", src, str(dst)], check=True))}


@scenario
def read_and_hash(src: str, work: str) -> dict[str, Any]:
    buf = bytearray(8 << 20)

    def run() -> None:
        h = blake3.blake3()
        with open(src, "rb", buffering=0) as f:
            while n := f.readinto(buf):
                h.update(memoryview(buf)[:n])
        h.hexdigest()

    return {"seconds": timed(run)}


# --- scribestore -----------------------------------------------------------------


@scenario
def scribe_log_save(src: str, work: str) -> dict[str, Any]:
    from scribestore import Repository

    def run() -> None:
        repo = Repository(Path(work) / "repository.json", mode="w")
        repo.log_artifact("model", Path(src), "file")
        repo.save()

    seconds = timed(run)
    return {"seconds": seconds, "stored_bytes": tree_size(Path(work))}


@scenario
def scribe_log_again(src: str, work: str, handler: str = "file") -> dict[str, Any]:
    """Log ``src`` as a new version of an existing repository (identical or
    edited); ``handler`` ``"folder"`` logs a folder."""
    from scribestore import Repository

    before = tree_size(Path(work))

    def run() -> None:
        repo = Repository(Path(work) / "repository.json", mode="a")
        repo.log_artifact("model", Path(src), handler)
        repo.save()

    seconds = timed(run)
    return {"seconds": seconds, "new_bytes": tree_size(Path(work)) - before}


@scenario
def scribe_load(src: str, work: str) -> dict[str, Any]:
    from scribestore import Repository

    repo = Repository(Path(work) / "repository.json", mode="r")
    buf = bytearray(8 << 20)

    def run() -> None:
        with repo.open_artifact("model", version=0) as reader:
            while reader.readinto(buf):
                pass
            assert reader.verified

    return {"seconds": timed(run)}


@scenario
def scribe_restore(src: str, work: str, cold: bool = False) -> dict[str, Any]:
    """Restore the newest version of ``model`` to a file, verified, as ``scribestore get``
    does; ``cold``: with the store's files out of the page cache."""
    from scribestore import Repository

    dest = Path(work) / "restored.bin"
    dest.unlink(missing_ok=True)
    if cold:
        evict(Path(work))

    def run() -> None:
        Repository(Path(work) / "repository.json", mode="r").load_artifact("model", dest=dest)

    seconds = timed(run)
    assert dest.stat().st_size == Path(src).stat().st_size
    dest.unlink()
    return {"seconds": seconds}


@scenario
def scribe_promote(src: str, work: str) -> dict[str, Any]:
    from scribestore import Project, Repository

    project = Project(Path(work) / "project.json", mode="w")
    with project.log("exp") as exp:
        exp.log_artifact("model", Path(src), "file")
    project.save()
    project = Project(Path(work) / "project.json", mode="r")
    repo = Repository(Path(work) / "repository.json", mode="w")
    repo.log_artifact("other", [1], "json")
    repo.save()  # the repository exists and is registered, as in steady use
    before = tree_size(Path(work) / "objects")
    seconds = timed(lambda: project["exp"].promote_artifact(repo, "model"))
    return {"seconds": seconds, "object_bytes_added": tree_size(Path(work) / "objects") - before}


def _source_store(src: str, work: str) -> tuple[Any, str]:
    from scribestore import ObjectStore

    source = ObjectStore(Path(work) / "source")
    return source, source.put(Path(src))


@scenario
def scribe_transfer(src: str, work: str) -> dict[str, Any]:
    """Copy a stored model into another store with its digest known (ops.transfer)."""
    from scribestore import ObjectStore
    from scribestore.ops.transfer import transfer

    source, digest = _source_store(src, work)
    target = ObjectStore(Path(work) / "target")
    seconds = timed(lambda: transfer(source, target, [digest]))
    return {"seconds": seconds, "stored_bytes": tree_size(Path(work) / "target")}


@scenario
def scribe_copy_by_put(src: str, work: str) -> dict[str, Any]:
    """Baseline: the same copy as a verified read streamed into put (spooled, re-chunked)."""
    from scribestore import ObjectStore

    source, digest = _source_store(src, work)
    target = ObjectStore(Path(work) / "target")

    def run() -> None:
        with source.open(digest) as reader:
            assert target.put(reader) == digest

    seconds = timed(run)
    return {"seconds": seconds, "stored_bytes": tree_size(Path(work) / "target")}


# --- lazyscribe 2.2.2 ----------------------------------------------------------------


def _array(src: str) -> Any:
    import numpy as np

    return np.fromfile(src, dtype=np.float32)


@scenario
def lazy_log_save(src: str, work: str) -> dict[str, Any]:
    import lazyscribe

    arr = _array(src)

    def run() -> None:
        repo = lazyscribe.Repository(str(Path(work) / "repository.json"), mode="w")
        repo.log_artifact("model", arr, "pickle")
        repo.save()

    seconds = timed(run)
    return {"seconds": seconds, "stored_bytes": tree_size(Path(work))}


@scenario
def lazy_relog(src: str, work: str) -> dict[str, Any]:
    import lazyscribe

    arr = _array(src)
    before = tree_size(Path(work))

    def run() -> None:
        repo = lazyscribe.Repository(str(Path(work) / "repository.json"), mode="w+")
        repo.log_artifact("model", arr, "pickle")
        repo.save()

    seconds = timed(run)
    return {"seconds": seconds, "new_bytes": tree_size(Path(work)) - before}


@scenario
def lazy_load(src: str, work: str) -> dict[str, Any]:
    import lazyscribe

    repo = lazyscribe.Repository(str(Path(work) / "repository.json"), mode="r")
    return {"seconds": timed(lambda: repo.load_artifact("model", version=0))}


def main() -> None:
    name, args = sys.argv[1], json.loads(sys.argv[2])
    # Start from clean disk state: dirty pages an earlier scenario left (cp
    # without fsync, a freshly generated input) would otherwise be written
    # back during this one and slow whichever scenario comes next.
    os.sync()
    base = rss_mib()
    result = SCENARIOS[name](**args)
    peak = rss_mib()
    result["peak_rss_growth_mib"] = round(peak - base, 1)
    result["peak_rss_mib"] = round(peak, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
