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
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from peers import bench_peers
from report import Row, ratio, report_large, report_peers, report_scale
from timing import times

RESULTS = Path(__file__).resolve().parent / "results"


def median_time(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``repeat`` calls, in seconds."""
    return statistics.median(times(fn, repeat))


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
        for _ in range(n):
            repo.log_artifact("features", [0, 1, 2], "json")
        build_start = time.perf_counter()
        repo.save()
        save_all = time.perf_counter() - build_start

        def open_and_query() -> None:
            r = Repository(fpath, mode="r")
            r.get_artifact_metadata("features", version=n // 2)
            r.get_artifact_metadata("features")

        ours = median_time(open_and_query, repeat)

        def one_more() -> None:
            r = Repository(fpath, mode="a")
            r.log_artifact("features", [0, 1, 2, 3], "json")
            r.save()

        save_one = median_time(one_more, repeat)
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

        theirs = median_time(lz_open, 1)

        def lz_save_one() -> None:
            r = lazyscribe.Repository(str(lz_path), mode="w+")
            r.log_artifact("features", [0, 1, 2, 3], "json")
            r.save()

        lz_save = median_time(lz_save_one, 1)
        # Scale to the same version count when a smaller lazyscribe run was asked for.
        scale = n / lazyscribe_n
        result.update(
            {
                "lazyscribe_versions": lazyscribe_n,
                "lazyscribe_open_s": theirs,
                "lazyscribe_save_s": lz_save * scale,
                "speedup_vs_lazyscribe": theirs * scale / ours,
            }
        )
        return result


HERE = Path(__file__).resolve().parent


def run_scenario(name: str, **args: Any) -> dict[str, Any]:
    """Run one scenario in a fresh interpreter; return its JSON figures.

    Its caches (the stat cache among them) live beside its work directory,
    in ``<work>.cache``: scenarios on one store share them, as one user's
    runs would, and a new store starts with none, so an ingest of new
    content never finds a stat record of the same path from another store.
    Dirty pages are synced first, outside the timing: otherwise a scenario
    that fsyncs would also wait for the writeback of files that the harness
    or an earlier scenario (``cp`` without fsync, a copy to a new path) left.
    """
    import subprocess

    os.sync()
    env = {**os.environ, "SCRIBESTORE_CACHE_DIR": f"{args['work']}.cache"}
    out = subprocess.run(
        [sys.executable, str(HERE / "scenarios.py"), name, json.dumps(args)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    best = dict(sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2])
    best["all_seconds"] = [round(r["seconds"], 3) for r in runs]
    best["peak_rss_growth_mib"] = max(r["peak_rss_growth_mib"] for r in runs)
    best["peak_rss_mib"] = max(r["peak_rss_mib"] for r in runs)
    return best


def median_of(name: str, repeat: int, fresh: bool, work: Path, **args: Any) -> dict[str, Any]:
    """Median seconds over ``repeat`` runs (each in a fresh work dir if ``fresh``)."""
    return interleaved({name: (name, fresh, work, args)}, repeat)[name]


def interleaved(
    specs: dict[str, tuple[str, bool, Path, dict[str, Any]]], repeat: int
) -> dict[str, dict[str, Any]]:
    """Median figures of several scenarios run in turn, round after round.

    Alternating the runs of a scenario and its baseline spreads the noise of
    a shared machine over both, instead of giving a quiet minute to one and
    a busy one to the other. The order rotates each round, so no scenario
    always runs right after the one that wrote the most (this machine's disk
    slows down for a while after a gigabyte or two of writes). ``specs`` maps
    a key to (scenario, fresh work dir each run, work dir, arguments).
    """
    runs: dict[str, list[dict[str, Any]]] = {key: [] for key in specs}
    keys = list(specs)
    for i in range(repeat):
        for key in keys[i % len(keys) :] + keys[: i % len(keys)]:
            name, fresh, work, args = specs[key]
            target = work / f"{name}-{i}" if fresh else work
            target.mkdir(parents=True, exist_ok=True)
            runs[key].append(run_scenario(name, work=str(target), **args))
            if fresh and i < repeat - 1:
                shutil.rmtree(target)
    return {key: _median(r) for key, r in runs.items()}


def make_weights(path: Path, size: int, seed: int, dtype: str = "float32") -> None:
    """``size`` bytes of weights like trained ones (normal, sd 0.02), as float32
    or bfloat16 (float32 with its low 16 bits cut, as a cast does)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    per = 4 if dtype == "float32" else 2
    with path.open("wb") as f:
        for start in range(0, size, 64 << 20):
            count = min(64 << 20, size - start) // per
            block = (rng.standard_normal(count) * 0.02).astype("float32")
            cast = block if per == 4 else (block.view("<u4") >> 16).astype("<u2")
            f.write(cast.tobytes())


def make_model_folder(path: Path, size: int) -> Path:
    """A Hugging Face style model folder of about ``size`` bytes: a config, a
    tokenizer, generation settings and two float32 safetensors shards."""
    import numpy as np

    path.mkdir()
    (path / "config.json").write_text(
        json.dumps({"architectures": ["LlamaForCausalLM"], "hidden_size": 2048, "layers": 16})
    )
    (path / "generation_config.json").write_text(json.dumps({"temperature": 0.7, "top_p": 0.9}))
    rng = np.random.default_rng(5)
    vocab = {f"tok{n}_{rng.integers(1 << 30)}": n for n in range(50_000)}
    (path / "tokenizer.json").write_text(json.dumps({"model": {"vocab": vocab}}))
    for shard in (1, 2):
        raw = path / f"shard-{shard}.raw"
        make_weights(raw, size // 2, seed=10 + shard)
        header = json.dumps(
            {"w": {"dtype": "F32", "shape": [size // 8], "data_offsets": [0, size // 2]}}
        ).encode()
        with (path / f"model-0000{shard}-of-00002.safetensors").open("wb") as f:
            f.write(len(header).to_bytes(8, "little") + header)
            with raw.open("rb") as r:
                shutil.copyfileobj(r, f, 8 << 20)
        raw.unlink()
    return path


def edit_copy(src: Path, dst: Path, *, fraction: float, regions: int) -> int:
    """A copy of ``src`` with ``fraction`` of its bytes rewritten in ``regions`` places."""
    import random

    data = bytearray(src.read_bytes())
    rng = random.Random(0)
    per = int(len(data) * fraction / regions)
    for r in range(regions):
        start = (r + 1) * len(data) // (regions + 1)
        data[start : start + per] = rng.randbytes(per)
    dst.write_bytes(data)
    return per * regions


def _new_path_rounds(work: Path, base: Path, store: Path, rounds: int) -> dict[str, Any]:
    """The same content logged from a new path, against BLAKE3 of that file on every core.

    Each round copies ``base`` to a path the stat cache has never seen, then
    syncs, so neither timing waits for the copy's writeback; the two take
    turns at going first.
    """
    runs: dict[str, list[dict[str, Any]]] = {"b3": [], "moved": []}
    for i in range(rounds):
        copy = work / f"new-path-{i}.bin"
        shutil.copyfile(base, copy)
        os.sync()
        pair = {
            "b3": ("b3_file", False, work, {"src": str(copy)}),
            "moved": ("scribe_log_again", False, store, {"src": str(copy)}),
        }
        # One round each time, so the order is turned here: odd rounds log first.
        order = list(pair) if i % 2 == 0 else list(reversed(pair))
        found = interleaved({key: pair[key] for key in order}, 1)
        for key, result in found.items():
            runs[key].append(result)
        copy.unlink()
    return {key: _median(r) for key, r in runs.items()}


def scribe_round(work: Path, src: Path, edited: Path) -> dict[str, Any]:
    """scribestore's side-by-side round, the steps the peers' rounds take, in a new
    store with a stat cache of its own: log ``src``, log it again unchanged, log a
    copy of it at a new path, log ``edited`` in its place, restore it warm and cold."""
    work.mkdir(parents=True)
    w = str(work)
    first = run_scenario("scribe_log_again", src=str(src), work=w)
    again = run_scenario("scribe_log_again", src=str(src), work=w)
    copy = work.parent / f"{work.name}-copy.bin"
    shutil.copyfile(src, copy)
    moved = run_scenario("scribe_log_again", src=str(copy), work=w)
    copy.unlink()
    tuned = run_scenario("scribe_log_again", src=str(edited), work=w)
    restore = run_scenario("scribe_restore", src=str(edited), work=w)
    cold = run_scenario("scribe_restore", src=str(edited), work=w, cold=True)
    shutil.rmtree(f"{w}.cache", ignore_errors=True)
    return {
        "ingest_s": first["seconds"],
        "readd_s": again["seconds"],
        "newpath_s": moved["seconds"],
        "finetune_s": tuned["seconds"],
        "finetune_new_bytes": tuned["new_bytes"],
        "stored_bytes": first["new_bytes"],
        "restore_s": restore["seconds"],
        "restore_cold_s": cold["seconds"],
        "peak_rss_mib": max(r["peak_rss_mib"] for r in (first, again, moved, tuned, restore, cold)),
        "restore_verifies": True,
    }


def bench_large_files(work: Path, size: int, dedup_size: int, repeat: int) -> dict[str, Any]:
    import importlib.util

    has_lazy = importlib.util.find_spec("lazyscribe") is not None
    src = work / "weights.bin"
    make_weights(src, size, seed=1)
    out: dict[str, Any] = {"file_bytes": size}
    print(f"  log + save of {size >> 20} MiB float32", flush=True)
    a = {"src": str(src)}
    out.update(
        interleaved(
            {
                "cp_fsync": ("cp_fsync", True, work / "cp", a),
                "cp_fsync_b3": ("cp_fsync_b3", True, work / "cpb3", a),
                "cp_plain": ("cp_plain", True, work / "cp2", a),
                "scribe_log_save": ("scribe_log_save", True, work / "s", a),
            },
            repeat,
        )
    )
    scribe_dir = work / "s" / f"scribe_log_save-{repeat - 1}"
    print("  identical re-log and verified load", flush=True)
    out.update(
        interleaved(
            {
                "scribe_relog": ("scribe_log_again", False, scribe_dir, a),
                "read_and_hash": ("read_and_hash", False, work, a),
                "scribe_load": ("scribe_load", False, scribe_dir, a),
            },
            repeat,
        )
    )
    print(f"  the same {size >> 20} MiB at a new path", flush=True)
    moved = _new_path_rounds(work, src, scribe_dir, rounds=5)
    out["scribe_new_path"], out["b3_file"] = moved["moved"], moved["b3"]
    if has_lazy:
        print("  lazyscribe 2.2.2 (pickle handler)", flush=True)
        out["lazy_log_save"] = median_of("lazy_log_save", 1, True, work / "lz", src=str(src))
        lazy_dir = work / "lz" / "lazy_log_save-0"
        out["lazy_relog"] = median_of("lazy_relog", 1, False, lazy_dir, src=str(src))
        out["lazy_load"] = median_of("lazy_load", 1, False, lazy_dir, src=str(src))
    print(f"  dedup on a {dedup_size >> 20} MiB file", flush=True)
    base = work / "dedup-base.bin"
    make_weights(base, dedup_size, seed=2)
    edited = work / "dedup-edited.bin"
    changed = edit_copy(base, edited, fraction=0.05, regions=4)
    shifted = work / "dedup-shifted.bin"
    raw = base.read_bytes()
    shifted.write_bytes(raw[:4096] + b"\x01" + raw[4096:])
    del raw
    dedup_dir = work / "dedup"
    dedup_dir.mkdir()
    first = run_scenario("scribe_log_again", src=str(base), work=str(dedup_dir))
    tuned = run_scenario("scribe_log_again", src=str(edited), work=str(dedup_dir))
    insert = run_scenario("scribe_log_again", src=str(shifted), work=str(dedup_dir))
    out["dedup"] = {
        "file_bytes": dedup_size,
        "first_version_stored": first["new_bytes"],
        "changed_bytes": changed,
        "finetune_new_bytes": tuned["new_bytes"],
        "insert_new_bytes": insert["new_bytes"],
    }
    bf16 = work / "weights-bf16.bin"
    make_weights(bf16, dedup_size, seed=4, dtype="bfloat16")
    bf16_dir = work / "bf16"
    bf16_dir.mkdir()
    bf16_stored = run_scenario("scribe_log_again", src=str(bf16), work=str(bf16_dir))["new_bytes"]
    out["dedup"]["bf16_stored_bytes"] = bf16_stored
    folder = make_model_folder(work / "model-folder", dedup_size)
    (work / "folder").mkdir()
    logged = run_scenario(
        "scribe_log_again", src=str(folder), work=str(work / "folder"), handler="folder"
    )
    print("  side by side with the peers", flush=True)
    side = bench_peers(
        work / "peers", base, edited, (bf16, folder), repeat=repeat, ours=scribe_round
    )
    side["scribestore"].update(
        bf16_stored_bytes=bf16_stored,
        folder_s=logged["seconds"],
        folder_stored_bytes=logged["new_bytes"],
    )
    out["side_by_side"] = side
    return out


def bench_promotion(work: Path, sizes_mib: list[int], repeat: int) -> dict[str, Any]:
    """Promotion between a project and a repository sharing one object store."""
    out: dict[str, Any] = {}
    for mib in sizes_mib:
        src = work / f"promote-{mib}.bin"
        make_weights(src, mib << 20, seed=3)
        result = median_of("scribe_promote", repeat, True, work / f"promote-{mib}", src=str(src))
        out[str(mib)] = result
        src.unlink()
    return out


def bench_transfer(work: Path, size: int, repeat: int) -> dict[str, Any]:
    """Copying a stored model into another store, against a verified read streamed into put."""
    src = work / "transfer.bin"
    make_weights(src, size, seed=4)
    a = {"src": str(src)}
    out = interleaved(
        {
            "transfer": ("scribe_transfer", True, work / "t", a),
            "copy_by_put": ("scribe_copy_by_put", True, work / "p", a),
        },
        repeat,
    )
    src.unlink()
    return out


Section = Callable[[argparse.Namespace, dict[str, Any]], list[Row]]


def section_large(args: argparse.Namespace, results: dict[str, Any]) -> list[Row]:
    with tempfile.TemporaryDirectory(dir=RESULTS.parent) as tmp:
        large = bench_large_files(Path(tmp), args.size_mib << 20, args.dedup_mib << 20, args.repeat)
    results["large_files"] = large
    return report_large(large) + report_peers(large["side_by_side"])


def section_stages(args: argparse.Namespace, results: dict[str, Any]) -> list[Row]:
    from stages import bench_stages

    with tempfile.TemporaryDirectory(dir=RESULTS.parent) as tmp:
        src = Path(tmp) / "weights.bin"
        make_weights(src, min(args.size_mib, 256) << 20, seed=3)
        steps = bench_stages(src, args.repeat)
    results["stages"] = steps
    return [
        (f"  step: {name}", f"{seconds:.3f} s/GiB", "", "", "")
        for name, seconds in steps.items()
        if name != "native_planes"
    ]


def section_promote(args: argparse.Namespace, results: dict[str, Any]) -> list[Row]:
    with tempfile.TemporaryDirectory(dir=RESULTS.parent) as tmp:
        promo = bench_promotion(Path(tmp), [64, 256, args.size_mib], args.repeat)
    results["promotion"] = promo
    return [
        (
            f"promote {mib} MiB artifact (shared store)",
            f"{r['seconds'] * 1000:.1f} ms",
            f"+{r['object_bytes_added']} B",
            "",
            "< 50 ms",
        )
        for mib, r in promo.items()
    ]


def section_transfer(args: argparse.Namespace, results: dict[str, Any]) -> list[Row]:
    with tempfile.TemporaryDirectory(dir=RESULTS.parent) as tmp:
        moved = bench_transfer(Path(tmp), args.size_mib << 20, args.repeat)
    results["transfer"] = moved
    t, p = moved["transfer"], moved["copy_by_put"]
    return [
        (
            f"copy {args.size_mib} MiB into another store (transfer)",
            f"{t['seconds']:.2f} s",
            f"verified read into put {p['seconds']:.2f} s",
            ratio(t["seconds"], p["seconds"]),
            "< 1.0x",
        )
    ]


def section_remote(args: argparse.Namespace, results: dict[str, Any]) -> list[Row]:
    from remote import bench_remote

    with tempfile.TemporaryDirectory(dir=RESULTS.parent) as tmp:
        src = Path(tmp) / "weights.bin"
        make_weights(src, args.size_mib << 20, seed=4)
        remote = bench_remote(src, args.repeat)
    results["remote"] = remote
    rows: list[Row] = []
    if "absent" in remote or "error" in remote:
        why = remote.get("absent") or remote["error"]
        rows.append(("SeaweedFS cluster", "failed", why[:60], "", ""))
    for ours, theirs, label in (
        ("scribe_save", "put", "log+save"),
        ("scribe_load", "get", "verified load"),
    ):
        if ours in remote and theirs in remote:
            rows.append(
                (
                    f"cluster: {label} vs s3fs {theirs} ({args.size_mib} MiB)",
                    f"{remote[ours]:.2f}s",
                    f"{remote[theirs]:.2f}s",
                    ratio(remote[ours], remote[theirs]),
                    "",
                )
            )
    return rows


def section_scale(args: argparse.Namespace, results: dict[str, Any]) -> list[Row]:
    from scale import bench_repack, bench_scale

    with tempfile.TemporaryDirectory(dir=RESULTS.parent) as tmp:
        scaled = bench_scale(Path(tmp), args.scale_gib, args.repeat)
    with tempfile.TemporaryDirectory(dir=RESULTS.parent) as tmp:
        repacked = bench_repack(Path(tmp), 8, 64 << 20)
    results["scale"] = scaled
    results["repack"] = repacked
    return report_scale(scaled, repacked)


def section_versions(args: argparse.Namespace, results: dict[str, Any]) -> list[Row]:
    many = bench_open_many_versions(args.versions, args.repeat, args.lazyscribe_versions)
    results["open_many_versions"] = many
    lz = many.get("lazyscribe_open_s")
    lzs = many.get("lazyscribe_save_s")
    ours_save = many["scribestore_save_after_one_log_s"]
    return [
        (
            f"open {args.versions:,} versions + metadata",
            f"{many['scribestore_open_s']:.3f}s",
            f"{lz:.3f}s" if lz else "n/a",
            f"{many['speedup_vs_lazyscribe']:.0f}x faster" if lz else "",
            ">= 50x faster",
        ),
        (
            "save after one more log",
            f"{ours_save:.3f}s",
            f"{lzs:.3f}s" if lzs else "n/a",
            f"{lzs / ours_save:.0f}x faster" if lzs else "",
            "",
        ),
    ]


#: The sections of the run, in order: (name for --only, what it measures, runner).
SECTIONS: tuple[tuple[str, str, Section], ...] = (
    ("large", "large files", section_large),
    ("stages", "cost of each step", section_stages),
    ("promote", "promotion between shared stores", section_promote),
    ("transfer", "copying a stored model into another store", section_transfer),
    ("remote", "a store on a SeaweedFS cluster against plain s3fs", section_remote),
    ("scale", "operations against store size", section_scale),
    ("versions", "opening a repository with many versions", section_versions),
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--dedup-mib", type=int, default=512)
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument(
        "--lazyscribe-versions",
        type=int,
        default=20_000,
        help="versions in the lazyscribe baseline, its times scaled linearly to --versions "
        "(at 100k its open and save took 908 s and 901 s on the development machine)",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--scale-gib",
        type=int,
        nargs="+",
        default=[1, 5, 20],
        help="store sizes (GiB of distinct chunks) for the scale rows",
    )
    parser.add_argument("--only", choices=[name for name, _, _ in SECTIONS], default=None)
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    from scribestore.store import planes

    results: dict[str, Any] = {
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "native_planes": planes.NATIVE,
        "section_seconds": {},
    }
    rows: list[Row] = []
    began = time.perf_counter()
    for name, title, run in SECTIONS:
        if args.only in (None, name):
            print(f"{title} ...", flush=True)
            start = time.perf_counter()
            rows.extend(run(args, results))
            took = time.perf_counter() - start
            results["section_seconds"][name] = round(took, 1)
            print(f"  ({took:.0f} s)", flush=True)
    total = time.perf_counter() - began
    results["total_seconds"] = round(total, 1)
    for name, took in results["section_seconds"].items():
        rows.append((f"  wall time: {name}", f"{took:.0f} s", "", "", ""))
    rows.append(("  wall time: the whole run", f"{total / 60:.1f} min", "", "", "~25 min"))
    print()
    print(f"{'benchmark':<46} {'scribestore':>24} {'baseline':>26} {'ratio':>8} {'target':>10}")
    for row in rows:
        print(f"{row[0]:<46} {row[1]:>24} {row[2]:>26} {row[3]:>8} {row[4]:>10}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
