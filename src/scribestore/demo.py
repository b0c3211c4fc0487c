"""``python -m scribestore.demo [STORE]``: the main job, end to end, in seconds.

1. Logs a project of three experiments with parameters, metrics, a test and
   artifacts.
2. Versions a model file of about 100 MB (float32 weights) three times in a
   Repository with the ``file`` handler, changing about 1 % of its bytes in
   one region each time.
3. Promotes the best experiment's model configuration into the repository:
   the project and the repository share one object store, so that is a
   manifest write and no byte is copied.
4. Time-travels: restores version 0 to a file and loads "the model as of"
   a moment between versions 1 and 2.
5. Verifies every version by reading it back to its hash-checked end.
6. Prints versions, logical versus stored bytes, and the dedup ratio.

The demo owns its directory: it writes a marker file ``.scribestore-demo``
there and, when run again, empties the directory first, so each run starts
from nothing and prints the same numbers. It refuses to touch a non-empty
directory without that marker.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scribestore.project import Project
from scribestore.repository import Repository
from scribestore.store.hashing import hash_file

if TYPE_CHECKING:
    from collections.abc import Callable

    from scribestore.experiment import Experiment

__all__ = ["DEFAULT_MODEL_BYTES", "DemoError", "DemoSummary", "main", "run"]

#: Size of the demo's model file.
DEFAULT_MODEL_BYTES = 100_000_000
MARKER = ".scribestore-demo"

_EXPERIMENTS = (
    # name, learning rate, hidden units, AUC on the validation set
    ("baseline", 0.1, 256, 0.871),
    ("wider", 0.05, 1024, 0.912),
    ("regularized", 0.05, 512, 0.897),
)


class DemoError(Exception):
    """The demo cannot run in the directory it was given."""


@dataclasses.dataclass
class DemoSummary:
    """What the demo stored and checked.

    Attributes:
        versions: artifact versions in the repository.
        model_versions: versions of the model file.
        artifacts: every artifact version in the store (repository and project).
        logical_bytes: the size of all of them, each counted in full.
        distinct_bytes: the size of each distinct content once.
        stored_bytes: what the object store occupies on disk.
        dedup_ratio: logical_bytes / stored_bytes.
        verified: artifact versions read back to their hash-checked end.
        best_experiment: slug of the promoted experiment.
        seconds: wall time of the run.
    """

    store: str
    versions: int
    model_versions: int
    artifacts: int
    logical_bytes: int
    distinct_bytes: int
    stored_bytes: int
    dedup_ratio: float
    verified: int
    best_experiment: str
    seconds: float


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def prepare(root: Path) -> None:
    """Make ``root`` an empty demo directory.

    Raises:
        DemoError: ``root`` is a file, or a non-empty directory the demo did not create.
    """
    if root.exists() and not root.is_dir():
        raise DemoError(f"{root} is a file; give the demo a directory")
    if root.is_dir() and any(root.iterdir()):
        if not (root / MARKER).is_file():
            raise DemoError(
                f"{root} is not empty and was not made by the demo (no {MARKER} in it); "
                "give the demo a new or empty directory"
            )
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text("made by python -m scribestore.demo; emptied on every run\n")


class _Weights:
    """The model file: float32 weights, changed one region at a time."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size - size % 4
        self._seed = 0
        try:
            import numpy
        except ImportError:  # numpy is optional: random bytes change the same way
            self._numpy = None
            path.write_bytes(random.Random(0).randbytes(self.size))
        else:
            self._numpy = numpy
            rng = numpy.random.default_rng(0)
            rng.standard_normal(self.size // 4, dtype=numpy.float32).tofile(path)

    def change(self, where: float, fraction: float = 0.01) -> tuple[int, int]:
        """Rewrite ``fraction`` of the file from ``where`` (0-1); return (offset, length)."""
        self._seed += 1
        length = int(self.size * fraction) // 4 * 4
        offset = int(self.size * where) // 4 * 4
        if self._numpy is not None:
            rng = self._numpy.random.default_rng(self._seed)
            data = rng.standard_normal(length // 4, dtype=self._numpy.float32).tobytes()
        else:
            data = random.Random(self._seed).randbytes(length)
        with open(self.path, "r+b") as f:
            f.seek(offset)
            f.write(data)
        return offset, length


def run(
    root: str | os.PathLike[str],
    *,
    model_bytes: int = DEFAULT_MODEL_BYTES,
    say: Callable[[str], None] = print,
) -> DemoSummary:
    """Run the demo in ``root`` and return its summary; ``say`` gets each report line.

    Raises:
        DemoError: ``root`` is not the demo's to use.
        AssertionError: a check failed (a loaded version differs from what was saved).
    """
    started = time.perf_counter()
    root = Path(root)
    prepare(root)
    say(f"scribestore demo in {root}")
    best = _log_experiments(root, say)
    repo = Repository(root / "repository.json", mode="w")
    with tempfile.TemporaryDirectory(prefix="scribestore-demo-") as tmp:
        digests = _save_model_versions(repo, Path(tmp), model_bytes, say)
        _promote(repo, best, say)
        _travel_in_time(repo, Path(tmp), digests, say)
    verified, project_sizes = _verify_everything(root, say)
    repo = Repository(root / "repository.json", mode="r")
    versions = [(m["hash"], m["size"]) for m in repo]
    everything = versions + project_sizes
    logical = sum(size for _, size in everything)
    stats = repo.objects.stats()
    summary = DemoSummary(
        store=str(root),
        versions=len(versions),
        model_versions=sum(1 for m in repo if m["name"] == "model"),
        artifacts=len(everything),
        logical_bytes=logical,
        distinct_bytes=sum(dict(everything).values()),
        stored_bytes=stats.stored_size,
        dedup_ratio=round(logical / stats.stored_size, 3) if stats.stored_size else 0.0,
        verified=verified,
        best_experiment=best.slug,
        seconds=round(time.perf_counter() - started, 2),
    )
    _say_summary(summary, repo.objects.url, say)
    return summary


def _log_experiments(root: Path, say: Callable[[str], None]) -> Experiment:
    """1. Experiments: log and save them; return the best."""
    project = Project(root / "project.json", mode="w", author="demo")
    for name, lr, hidden, auc in _EXPERIMENTS:
        with project.log(name) as exp:
            exp.log_parameter("learning_rate", lr)
            exp.log_parameter("hidden_units", hidden)
            exp.log_metric("auc", auc)
            exp.tag("demo")
            exp.log_artifact(
                "model-config",
                {"learning_rate": lr, "hidden_units": hidden, "activation": "gelu"},
                handler="json",
                indent=2,
            )
            exp.log_artifact("losses", [round(1 / (i + 1) + lr, 4) for i in range(50)], "json")
            with exp.log_test("holdout", "last month's traffic") as test:
                test.log_metric("auc", round(auc - 0.02, 3))
    project.save()
    best = max(project.experiments, key=lambda e: e.metrics["auc"])
    say(
        f"project: {len(project)} experiments logged; best is {best.slug} "
        f"(auc {best.metrics['auc']})"
    )
    return best


def _save_model_versions(
    repo: Repository, tmp: Path, model_bytes: int, say: Callable[[str], None]
) -> list[str]:
    """2. Three versions of the model file; return their digests."""
    weights = _Weights(tmp / "model.bin", model_bytes)
    say(f"model.bin: {_human(weights.size)} of float32 weights")
    digests = []
    for version, where in enumerate((None, 0.10, 0.60)):
        change = ""
        if where is not None:
            offset, length = weights.change(where)
            change = f", {_human(length)} rewritten at offset {_human(offset)}"
        digests.append(hash_file(weights.path)[0])
        t0 = time.perf_counter()
        repo.log_artifact("model", weights.path, handler="file")
        repo.save()
        say(f"  version {version} saved in {time.perf_counter() - t0:.2f} s{change}")
    return digests


def _promote(repo: Repository, best: Experiment, say: Callable[[str], None]) -> None:
    """3. Promotion: one manifest write, the bytes are already in the shared store."""
    before = repo.objects.stats().objects
    best.promote_artifact(repo, "model-config")
    after = repo.objects.stats().objects
    say(f"promoted model-config of {best.slug}: manifest write only ({after - before} new objects)")


def _travel_in_time(
    repo: Repository, tmp: Path, digests: list[str], say: Callable[[str], None]
) -> None:
    """4. Time travel: restore version 0, find version 1 by time."""
    restored = repo.load_artifact("model", version=0, dest=tmp / "v0.bin")
    assert hash_file(restored)[0] == digests[0], "version 0 came back different"
    v1 = repo.get_artifact_metadata("model", version=1)
    v2 = repo.get_artifact_metadata("model", version=2)
    moment = v1["timestamp"]  # any time from version 1 until version 2
    asof = repo.get_artifact_metadata("model", version=moment, match="asof")
    assert asof["version"] == 1 and asof["hash"] == digests[1] != v2["hash"]
    with repo.load_artifact("model", version=moment, match="asof") as stream:
        while stream.read(4 << 20):
            pass
    say(f"time travel: version 0 restored intact; as of {moment} the model was version 1")


def _verify_everything(root: Path, say: Callable[[str], None]) -> tuple[int, list[tuple[str, int]]]:
    """5. Read back every version and artifact; return the count and the project's (hash, size)."""
    repo = Repository(root / "repository.json", mode="r")
    verified = 0
    for meta in repo:
        with repo.open_artifact(meta["name"], version=meta["version"]) as stream:
            while stream.read(4 << 20):
                pass
        verified += 1
    project = Project(root / "project.json", mode="r")
    project_sizes = []
    for exp in project.experiments:
        for art in exp.to_dict()["artifacts"]:
            exp.load_artifact(art["name"])
            project_sizes.append((art["hash"], art["size"]))
            verified += 1
    say(f"verified: {verified} artifact versions read back, every byte hash-checked")
    return verified, project_sizes


def _say_summary(summary: DemoSummary, url: str, say: Callable[[str], None]) -> None:
    """6. The summary lines."""
    say("summary:")
    model = summary.model_versions
    say(f"  versions      {summary.versions} in the repository ({model} of the model)")
    say(
        f"  logical       {_human(summary.logical_bytes)} (every version of every artifact in full)"
    )
    say(f"  distinct      {_human(summary.distinct_bytes)} (each distinct content once)")
    say(f"  stored        {_human(summary.stored_bytes)} on disk in {url}")
    say(f"  dedup ratio   {summary.dedup_ratio:.2f}x")
    say(f"  took          {summary.seconds:.1f} s")


def main(argv: list[str] | None = None) -> int:
    """Run the demo from the command line; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m scribestore.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument("store", nargs="?", default="demo-store", help="demo directory")
    parser.add_argument(
        "--model-mb", type=float, default=DEFAULT_MODEL_BYTES / 1e6, help="model size in MB"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    say: Callable[[str], None] = (lambda _: None) if args.json else print
    try:
        summary = run(args.store, model_bytes=int(args.model_mb * 1e6), say=say)
    except DemoError as exc:
        print(f"scribestore demo: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        data: dict[str, Any] = dataclasses.asdict(summary)
        print(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
