"""Writers killed with SIGKILL at random points during save leave a consistent store.

Each trial starts a fresh child process that logs several artifacts (a JSON
value, 256 KiB of bytes, a 4.5 MiB value that is chunked into packs, and a
1 MiB file) and saves, over and over. The parent waits until the child
announces its first save, sleeps a random time drawn from about one measured
save duration, and SIGKILLs it. A trial counts as "mid-save" when the child's
last words were "saving" (it never reported the save finished). Trials run
until enough of them landed mid-save.

After every kill: the manifest parses; ``verify()`` finds every referenced
object present and intact; every version saved before the trial is unchanged
and loads; and the killed save's versions are all there or all absent.
The next child is started (and imports) while the parent checks, so trials
cost little more than the save they interrupt. The store is replaced by a
fresh one every few trials so that the checks, which read everything, stay
cheap.
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scribestore import ManifestNotFoundError, Project, Repository
from scribestore.storage import open_storage
from support.helpers import python_child
from support.locations import S3_BUCKET, Location

SIZES = {"small": 256 << 10, "big": (4 << 20) + (512 << 10), "file": 1 << 20}
SEED = int(os.environ.get("SCRIBESTORE_CRASH_SEED", "0")) or random.randrange(1 << 30)

_CHILD = """
import json, os, sys, time
from pathlib import Path
from scribestore import Project, Repository
print("imported", flush=True)
line = sys.stdin.readline()
if not line.strip():
    sys.exit(0)
job = json.loads(line)
options, sizes, workdir = job["options"], job["sizes"], Path(job["workdir"])
if job["kind"] == "repository":
    store = Repository(job["fpath"], mode="a", **options)
else:
    store = Project(job["fpath"], mode="a", author="crash", **options)
n = 0
while job["saves"] is None or n < job["saves"]:
    tag = f"{os.getpid()}-{n}"
    path = workdir / f"file-{tag}.bin"
    path.write_bytes(os.urandom(sizes["file"]))
    values = [
        ("meta", {"tag": tag}, "json"),
        ("small", os.urandom(sizes["small"]), "bytes"),
        ("big", os.urandom(sizes["big"]), "bytes"),
        ("file", path, "file"),
    ]
    if job["kind"] == "repository":
        for name, value, handler in values:
            store.log_artifact(name, value, handler)
    else:
        with store.log(f"run-{tag}") as exp:
            exp.log_metric("n", n)
            for name, value, handler in values[:3]:
                exp.log_artifact(name, value, handler)
            with exp.log_test("holdout") as test:
                test.log_artifact("file", path, "file")
    print(f"saving {n}", flush=True)
    start = time.perf_counter()
    store.save()
    print(f"saved {n} {time.perf_counter() - start:.6f}", flush=True)
    n += 1
"""


@dataclass
class Trials:
    """How a crash run went, for the assertion messages."""

    trials: int = 0
    mid_save: int = 0
    committed_by_killed: int = 0
    # Killed after publishing objects but before the manifest named them.
    orphaned_objects: int = 0


class Harness:
    """Runs kill trials of one kind ("repository" or "project") against fresh stores."""

    def __init__(self, kind: str, base: Location, workdir: Path) -> None:
        self.kind = kind
        self.base = base
        self.workdir = workdir
        self.rng = random.Random(SEED)
        self.stores = 0
        self.loc = self._fresh_store()

    # --- stores and children -------------------------------------------------------

    def _fresh_store(self) -> Location:
        self.stores += 1
        if self.base.backend == "local":
            return Location("local", str(Path(self.base.url) / f"store-{self.stores}"))
        return Location(
            self.base.backend, f"{self.base.url}/store-{self.stores}", self.base.options
        )

    @property
    def fpath(self) -> str:
        name = "repository.json" if self.kind == "repository" else "project.json"
        return self.loc.join(name)

    def spawn(self) -> subprocess.Popen[str]:
        child = python_child(_CHILD, stdin=subprocess.PIPE)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "imported", self._stderr(child)
        return child

    def start(self, child: subprocess.Popen[str], saves: int | None) -> None:
        job = {
            "kind": self.kind,
            "fpath": self.fpath,
            "options": self.loc.options,
            "sizes": SIZES,
            "workdir": str(self.workdir),
            "saves": saves,
        }
        assert child.stdin is not None
        child.stdin.write(json.dumps(job) + "\n")
        child.stdin.flush()

    @staticmethod
    def _stderr(child: subprocess.Popen[str]) -> str:
        if child.poll() is None:
            child.kill()
        _, err = child.communicate(timeout=30)
        return err

    def calibrate(self) -> float:
        """Run three complete saves; return the median save duration in seconds."""
        child = self.spawn()
        self.start(child, 3)
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
        durations = [
            float(line.split()[2]) for line in out.splitlines() if line.startswith("saved")
        ]
        assert len(durations) == 3, out
        return statistics.median(durations)

    def object_files(self) -> set[str]:
        """Published object files and packs (not in-flight temp files)."""
        storage = open_storage(self.loc.url, **self.loc.options)
        return {p for p in storage.list("objects") if not p.rsplit("/", 1)[-1].startswith(".tmp-")}

    # --- checking -----------------------------------------------------------------

    def state(self) -> dict[Any, Any]:
        """What the saved manifest holds, opened the way a reader would (it must parse).

        Empty when no save has committed yet (a kill before the first one).
        """
        try:
            return self._state()
        except ManifestNotFoundError:
            return {}

    def _state(self) -> dict[Any, Any]:
        if self.kind == "repository":
            repo = Repository(self.fpath, mode="r", **self.loc.options)
            return {
                (m["name"], m["version"]): (m["hash"], m["size"], m["created_at"]) for m in repo
            }
        project = Project(self.fpath, mode="r", **self.loc.options)
        return {
            exp.id: (
                exp.slug,
                exp.metrics,
                [a["hash"] for a in exp.to_dict()["artifacts"]],
                [a.hash for t in exp.tests for a in t.saved_artifacts()],
            )
            for exp in project.experiments
        }

    def check(self, before: dict[Any, Any]) -> tuple[dict[Any, Any], int]:
        """Assert the invariants after a kill; return the new state and versions added."""
        after = self.state()
        for key, value in before.items():
            assert after.get(key) == value, f"saved entry {key} changed or vanished"
        added = [k for k in after if k not in before]
        if not after:
            return after, 0  # killed before the first save committed: nothing to check
        if self.kind == "repository":
            store: Repository | Project = Repository(self.fpath, mode="r", **self.loc.options)
            # A save is all or nothing: the killed child's versions come in whole saves.
            per_name = Counter(name for name, _ in added)
            assert len(set(per_name.values())) <= 1 and (
                not per_name or set(per_name) == {"meta", "small", "big", "file"}
            ), per_name
            assert isinstance(store, Repository)
            for name, version in before:
                if name in ("meta", "small"):  # verify() below reads the big ones
                    store.load_artifact(name, version=version)
        else:
            store = Project(self.fpath, mode="r", **self.loc.options)
            for exp in store.experiments:
                assert [a["name"] for a in exp.to_dict()["artifacts"]] == ["meta", "small", "big"]
                assert exp.load_artifact("meta")["tag"].endswith(f"-{int(exp.metrics['n'])}")
        report = store.verify()
        assert report.clean, report.problems
        assert report.checked == (len(after) if self.kind == "repository" else 4 * len(after))
        return after, len(added)

    # --- trials ---------------------------------------------------------------------

    def run(self, *, mid_save_target: int, max_trials: int, reset_every: int) -> Trials:
        save_time = self.calibrate()
        result = Trials()
        before = self.state()
        objects = self.object_files()
        child = self.spawn()
        try:
            while result.mid_save < mid_save_target and result.trials < max_trials:
                self.start(child, None)
                assert child.stdout is not None
                line = child.stdout.readline()
                assert line.startswith("saving 0"), f"{line!r}: {self._stderr(child)}"
                time.sleep(self.rng.uniform(0, 1.3 * save_time))
                child.send_signal(signal.SIGKILL)
                out, err = child.communicate(timeout=60)
                assert child.returncode == -signal.SIGKILL, err
                lines = [line, *out.splitlines()]
                result.mid_save += lines[-1].startswith("saving")
                result.trials += 1
                child = self.spawn()  # imports while we check
                before, added = self.check(before)
                published = self.object_files()
                result.committed_by_killed += bool(added)
                result.orphaned_objects += bool(published - objects) and not added
                objects = published
                if result.trials % reset_every == 0:
                    self.loc = self._fresh_store()
                    before = self.state()
                    objects = self.object_files()
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        # After all that, a writer still saves normally (no stale lock, nothing wedged).
        survivor = self.spawn()
        self.start(survivor, 1)
        _, err = survivor.communicate(timeout=300)
        assert survivor.returncode == 0, err
        self.check(before)
        return result


def _harness(kind: str, backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Harness:
    workdir = tmp_path / "files"
    workdir.mkdir()
    if backend == "local":
        base = Location("local", str(tmp_path / "stores"))
    else:
        server = request.getfixturevalue("s3_server")
        base = Location(
            "s3", f"s3://{S3_BUCKET}/crash-{uuid.uuid4().hex[:8]}", server.storage_options()
        )
    return Harness(kind, base, workdir)


def _report(result: Trials, target: int) -> str:
    return (
        f"seed {SEED} (rerun with SCRIBESTORE_CRASH_SEED={SEED}): {result.trials} trials, "
        f"{result.mid_save} killed mid-save (target {target}), "
        f"{result.committed_by_killed} where the killed save had committed, "
        f"{result.orphaned_objects} where it had published objects but not the manifest"
    )


@pytest.mark.slow
def test_sigkill_during_repository_save_local(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    harness = _harness("repository", "local", tmp_path, request)
    result = harness.run(mid_save_target=50, max_trials=150, reset_every=10)
    assert result.mid_save >= 50, _report(result, 50)
    # Kills landed in the window that matters: objects written, manifest not yet.
    assert result.orphaned_objects >= 1, _report(result, 50)
    print(_report(result, 50))


@pytest.mark.slow
def test_sigkill_during_repository_save_s3(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    harness = _harness("repository", "s3", tmp_path, request)
    result = harness.run(mid_save_target=6, max_trials=24, reset_every=3)
    assert result.mid_save >= 6, _report(result, 6)
    print(_report(result, 6))


@pytest.mark.slow
def test_sigkill_during_project_save_local(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    harness = _harness("project", "local", tmp_path, request)
    result = harness.run(mid_save_target=10, max_trials=40, reset_every=5)
    assert result.mid_save >= 10, _report(result, 10)
    print(_report(result, 10))


def test_sigkill_quick(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """A short local run, for runs without the slow tests: 3 mid-save kills."""
    harness = _harness("repository", "local", tmp_path, request)
    result = harness.run(mid_save_target=3, max_trials=12, reset_every=3)
    assert result.mid_save >= 3, _report(result, 3)
