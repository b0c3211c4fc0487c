"""The tools a user would otherwise pick, on the same files in the same run.

DVC (``dvc add`` in a ``dvc init --no-scm`` project with its local cache,
``dvc checkout`` to restore) and restic (a version-2 repository with
compression ``auto``: ``backup``, ``restore``, ``stats --mode raw-data``)
run as the commands a user types, each in a fresh project or repository,
and report the same figures as scribestore's scenarios: seconds, new bytes
on storage, and whether the restore checks hashes.

DVC is found as ``$SCRIBESTORE_BENCH_DVC``, else ``dvc`` beside this
Python, else in ``.venv-peers`` (``make bench`` installs it there, apart
from the project's own environment, whose pins it would move), else on
PATH; restic on PATH (Debian's package). A tool that is absent is
reported as absent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from timing import evict

ROOT = Path(__file__).resolve().parent.parent
RESTIC_PASSWORD = "benchmark"


def find_dvc() -> str | None:
    """The ``dvc`` command to run, or None."""
    candidates = [
        os.environ.get("SCRIBESTORE_BENCH_DVC", ""),
        str(Path(sys.executable).parent / "dvc"),
        str(ROOT / ".venv-peers" / "bin" / "dvc"),
    ]
    for path in candidates:
        if path and Path(path).is_file() and os.access(path, os.X_OK):
            return path
    return shutil.which("dvc")


def find_restic() -> str | None:
    """The ``restic`` command on PATH, or None."""
    return shutil.which("restic")


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


#: Peak resident memory of any command _timed ran, in MiB, per tool.
PEAK_RSS: dict[str, float] = {}


def _timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    """Seconds ``cmd`` took; its peak resident memory is kept in :data:`PEAK_RSS`.

    The peak is the child's own VmHWM, read while it runs: ``ru_maxrss``
    from ``wait4`` would start from this process's peak, inherited across
    fork and exec. Dirty pages are synced first, outside the timing.
    """
    peak = [0.0]
    done = threading.Event()
    os.sync()  # as before each of scribestore's runs: no writeback left to wait for
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )

    def watch() -> None:
        while not done.wait(0.01):
            peak[0] = max(peak[0], _hwm_mib(proc.pid))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    _, errors = proc.communicate()
    seconds = time.perf_counter() - start
    done.set()
    watcher.join()
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd, stderr=errors)
    tool = Path(cmd[0]).name
    PEAK_RSS[tool] = max(PEAK_RSS.get(tool, 0.0), round(peak[0], 1))
    return seconds


def _hwm_mib(pid: int) -> float:
    """VmHWM of process ``pid`` in MiB, or 0 once it has gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def dvc_round(dvc: str, work: Path, src: Path, edited: Path) -> dict[str, Any]:
    """Ingest ``src``, add it again unchanged, add a copy of it at a new path,
    add ``edited`` in its place, restore.

    The file is copied into the project first (DVC adds files where they
    are), outside the timings; restore is ``dvc checkout`` after deleting it.
    """
    project = work / "dvc"
    project.mkdir(parents=True)
    subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=project, check=True, capture_output=True)
    cache = project / ".dvc" / "cache"
    target = project / "model.bin"
    shutil.copyfile(src, target)
    ingest = _timed([dvc, "add", "-q", "model.bin"], project)
    stored = tree_bytes(cache)
    again = _timed([dvc, "add", "-q", "model.bin"], project)
    shutil.copyfile(src, project / "copy.bin")
    moved = _timed([dvc, "add", "-q", "copy.bin"], project)
    target.unlink()  # DVC may have linked it to the cache: replace, never write through
    shutil.copyfile(edited, target)
    tune = _timed([dvc, "add", "-q", "model.bin"], project)
    tuned_bytes = tree_bytes(cache) - stored
    target.unlink()
    restore = _timed([dvc, "checkout", "-q", "model.bin"], project)
    if target.read_bytes() != edited.read_bytes():
        raise RuntimeError("dvc checkout restored other bytes")
    target.unlink()
    evict(project / ".dvc")
    cold = _timed([dvc, "checkout", "-q", "model.bin"], project)
    # checkout copies from the cache by the file's name, checking no hash
    return _figures(
        ingest, again, moved, tune, tuned_bytes, stored, (restore, cold), verifies=False
    )


def restic_round(restic: str, work: Path, src: Path, edited: Path) -> dict[str, Any]:
    """Back up ``src``, back it up again unchanged, again with a copy of it at a
    new path, back up ``edited``, restore it."""
    repo = work / "restic-repo"
    env = {
        **os.environ,
        "RESTIC_PASSWORD": RESTIC_PASSWORD,
        "RESTIC_REPOSITORY": str(repo),
        "RESTIC_CACHE_DIR": str(work / "restic-cache"),
    }
    subprocess.run(
        [restic, "init", "--repository-version", "2"], check=True, capture_output=True, env=env
    )
    data = work / "restic-data"
    data.mkdir()
    target = data / "model.bin"
    shutil.copyfile(src, target)
    backup = [restic, "backup", "-q", "--compression", "auto", str(data)]
    ingest = _timed(backup, work, env)
    stored = tree_bytes(repo)
    again = _timed(backup, work, env)
    shutil.copyfile(src, data / "copy.bin")
    moved = _timed(backup, work, env)
    (data / "copy.bin").unlink()  # the later snapshots, and the restore, hold one file
    target.unlink()
    shutil.copyfile(edited, target)
    before = tree_bytes(repo)
    tune = _timed(backup, work, env)
    tuned_bytes = tree_bytes(repo) - before
    out = work / "restic-out"
    restore = _timed([restic, "restore", "latest", "--target", str(out)], work, env)
    restored = out / target.relative_to("/")
    if restored.read_bytes() != edited.read_bytes():
        raise RuntimeError("restic restore restored other bytes")
    shutil.rmtree(out)
    evict(repo, work / "restic-cache")
    cold = _timed([restic, "restore", "latest", "--target", str(out)], work, env)
    # restic checks each blob's hash as it restores
    return _figures(ingest, again, moved, tune, tuned_bytes, stored, (restore, cold), verifies=True)


def _figures(
    ingest: float,
    again: float,
    moved: float,
    tune: float,
    tuned_bytes: int,
    stored: int,
    restore: tuple[float, float],
    *,
    verifies: bool,
) -> dict[str, Any]:
    """One round's figures, under the keys ``report.SIDE_BY_SIDE`` reports;
    ``restore`` is (warm, with the store out of the page cache)."""
    return {
        "ingest_s": ingest,
        "readd_s": again,
        "newpath_s": moved,
        "finetune_s": tune,
        "finetune_new_bytes": tuned_bytes,
        "stored_bytes": stored,
        "restore_s": restore[0],
        "restore_cold_s": restore[1],
        "restore_verifies": verifies,
    }


def dvc_stored(dvc: str, work: Path, src: Path) -> tuple[float, int]:
    """Seconds ``dvc add`` of a copy of ``src`` (a file or a folder) took in a
    new project, and the bytes its cache then holds."""
    project = work / "dvc-stored"
    project.mkdir(parents=True)
    subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=project, check=True, capture_output=True)
    if src.is_dir():
        shutil.copytree(src, project / "data")
    else:
        shutil.copyfile(src, project / "data")
    seconds = _timed([dvc, "add", "-q", "data"], project)
    return seconds, tree_bytes(project / ".dvc" / "cache")


def restic_stored(restic: str, work: Path, src: Path) -> tuple[float, int]:
    """Seconds one backup of ``src`` into a new restic repository (version 2,
    compression auto) took, and the bytes the repository then holds."""
    repo = work / "restic-stored"
    env = {**os.environ, "RESTIC_PASSWORD": RESTIC_PASSWORD, "RESTIC_REPOSITORY": str(repo)}
    subprocess.run(
        [restic, "init", "--repository-version", "2"], check=True, capture_output=True, env=env
    )
    env["RESTIC_CACHE_DIR"] = str(work / "restic-stored-cache")
    seconds = _timed([restic, "backup", "-q", "--compression", "auto", str(src)], work, env)
    return seconds, tree_bytes(repo)


#: One tool's round: (command, round directory, file, fine-tuned file) -> figures.
Round = Callable[[str, Path, Path, Path], dict[str, Any]]


def bench_peers(
    work: Path,
    src: Path,
    edited: Path,
    extra: tuple[Path, Path],
    *,
    repeat: int,
    ours: Callable[[Path, Path, Path], dict[str, Any]],
) -> dict[str, Any]:
    """scribestore's round (``ours``) and each peer's, ``repeat`` rounds of each.

    Rounds alternate between the tools and their order rotates, so the noise
    of a shared machine falls on all of them. Each tool's figures are medians,
    with ``spread`` giving min and max per figure, or say why it is absent.
    For ``extra``, a bf16 file and a model folder, each peer also reports the
    bytes it stores (and for the folder the time it takes) in a new repository.
    """
    out: dict[str, Any] = {}
    runs: dict[str, tuple[str, Round]] = {"scribestore": ("", lambda _, w, s, e: ours(w, s, e))}
    tools = (
        ("dvc", find_dvc, dvc_round, dvc_stored),
        ("restic", find_restic, restic_round, restic_stored),
    )
    for name, find, run, _ in tools:
        command = find()
        if command is None:
            out[name] = {"absent": f"{name} not found (see benchmarks/peers.py)"}
        else:
            runs[name] = (command, run)
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in runs}
    order = list(runs)
    for i in range(repeat):
        for name in order[i % len(order) :] + order[: i % len(order)]:
            command, run = runs[name]
            round_dir = work / f"{name}-{i}"
            rounds[name].append(run(command, round_dir, src, edited))
            shutil.rmtree(round_dir)
    for name, figures in rounds.items():
        out[name] = summarize(figures)
    for name, _, _, stored in tools:
        if name not in runs:
            continue
        command = runs[name][0]
        bf16, folder = extra
        out[name]["bf16_stored_bytes"] = stored(command, work / f"{name}-bf16", bf16)[1]
        found = stored(command, work / f"{name}-folder", folder)
        out[name]["folder_s"], out[name]["folder_stored_bytes"] = found
        for kind in ("bf16", "folder"):
            shutil.rmtree(work / f"{name}-{kind}")
        out[name]["peak_rss_mib"] = PEAK_RSS.get(Path(command).name, 0.0)
        version = [command, "version" if name == "restic" else "--version"]
        out[name]["startup_s"] = _median([_timed(version, work) for _ in range(3)])
    return out


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over ``rounds``, and in ``spread`` its min and max."""
    out: dict[str, Any] = {key: _median([r[key] for r in rounds]) for key in rounds[0]}
    out["spread"] = {
        key: [min(r[key] for r in rounds), max(r[key] for r in rounds)]
        for key, value in rounds[0].items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }
    return out


def _median(values: list[Any]) -> Any:
    if isinstance(values[0], bool):
        return values[0]
    return sorted(values)[len(values) // 2]
