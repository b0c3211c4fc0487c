"""Stress: 8 writers re-log old content while gc runs in a loop with zero grace.

Each writer keeps one repository in mode ``"w"``: every save drops its previous
version, so content from a shared pool keeps becoming unreferenced and being
logged again by another writer — exactly what gc must not delete under it.
Each writer also appends its own versions to one shared repository in mode
``"a"``. After each save the writer opens the manifest afresh and loads what it
committed; at the end every version of every manifest is loaded and verified.

``SCRIBESTORE_STRESS_SECONDS`` sets the duration of each run (default 120, which
keeps ``make test`` in its budget; set it higher to hunt for rarer races).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

import pytest

from scribestore import ObjectStore, Repository
from scribestore.ops.gc import collect_garbage
from support.helpers import python_child
from support.locations import Location, make_location

WRITERS = 8
SECONDS = float(os.environ.get("SCRIBESTORE_STRESS_SECONDS", "120"))

_WRITER = """
import json, random, sys, time
from scribestore import Repository
url, options, tag, deadline = (json.loads(a) for a in sys.argv[1:])
# The same pool in every writer: 14 small contents and 2 chunked ones.
def item(k):
    rng = random.Random(k)
    size = (4 << 20) + 4096 * k if k >= 14 else 1000 + 997 * k
    return rng.randbytes(size)
pool = [item(k) for k in range(16)]
rng = random.Random(tag)
mine = f"{url}/writer-{tag}.json"
shared = f"{url}/repository.json"
saves = lost = 0
i = 0
while time.time() < deadline:
    k = rng.randrange(len(pool))
    repo = Repository(mine, mode="w", **options)
    repo.log_artifact("content", pool[k], "bytes")
    repo.save()
    saves += 1
    if Repository(mine, mode="r", **options).load_artifact("content") != pool[k]:
        lost += 1
    if i % 3 == 0:
        repo = Repository(shared, mode="a", **options)
        repo.log_artifact(f"w{tag}", f"{tag}:{i}:" * 50, "text")
        repo.log_artifact("pool", pool[rng.randrange(len(pool))], "bytes")
        repo.save()
        saves += 1
    i += 1
print(json.dumps({"saves": saves, "lost": lost, "shared": (i + 2) // 3}))
"""


def _stress(loc: Location, tmp_path: Path) -> dict[str, int]:
    deadline = time.time() + SECONDS
    procs = [python_child(_WRITER, loc.url, loc.options, tag, deadline) for tag in range(WRITERS)]
    store = ObjectStore(loc.join("objects"), **loc.options)
    runs = deleted = 0
    while any(p.poll() is None for p in procs):
        try:
            # No grace and no journal retention: every mode "w" save's replaced
            # manifest is journaled and its entry expires at once, so gc deletes
            # while the writers save (the harshest schedule).
            report = collect_garbage(store, grace=dt.timedelta(0), keep_journal=dt.timedelta(0))
        except Exception:
            for proc in procs:
                proc.kill()
            raise
        runs += 1
        deleted += len(report.deleted_objects) + len(report.deleted_packs)
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    collect_garbage(store, grace=dt.timedelta(0), keep_journal=dt.timedelta(0))

    for tag in range(WRITERS):
        repo = Repository(loc.join(f"writer-{tag}.json"), mode="r", **loc.options)
        assert repo.verify().problems == ()
    shared = Repository(loc.join("repository.json"), mode="r", **loc.options)
    assert shared.verify().problems == ()
    for tag, result in enumerate(results):
        mine = [m for m in shared if m["name"] == f"w{tag}"]
        assert [m["version"] for m in mine] == list(range(result["shared"]))
        for m in mine:
            version = m["version"]
            assert shared.load_artifact(f"w{tag}", version=version) == f"{tag}:{3 * version}:" * 50
    pool = [m for m in shared if m["name"] == "pool"]
    assert len(pool) == sum(r["shared"] for r in results)
    for m in pool:
        shared.load_artifact("pool", version=m["version"])
    summary = {
        "writers": WRITERS,
        "seconds": int(SECONDS),
        "saves": sum(r["saves"] for r in results),
        "lost": sum(r["lost"] for r in results),
        "gc_runs": runs,
        "deleted": deleted,
    }
    print(f"\ngc stress on {loc.backend}: {summary}")
    assert summary["lost"] == 0
    assert runs > 1 and deleted > 0  # gc really ran and really deleted
    return summary


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["local", "s3"])
def test_gc_in_a_loop_beside_writers_loses_nothing(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    _stress(make_location(backend, tmp_path, request), tmp_path)
