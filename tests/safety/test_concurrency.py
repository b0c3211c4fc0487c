"""Concurrent writers from several processes lose nothing (local disk and S3).

Children start together (each waits for a "go" line after importing and
opening its store), so their saves overlap. On S3 the children count the
conflicting conditional PUTs they retried, proving the race was real and was
resolved by the server refusing stale writes rather than by luck.
"""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import threading
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
import s3fs

from scribestore.storage import open_storage
from scribestore.storage.s3 import is_conflict
from support.helpers import python_child
from support.locations import S3_BUCKET, Location
from support.s3server import S3Server
from support.store_util import project_at, repo_at

PROCS = 8
SAVES = 25

# Counts conflicts seen by S3Storage.update (a wrapper around its conflict test).
_COUNT_CONFLICTS = """
import scribestore.storage.s3 as s3mod
conflicts = [0]
_real = s3mod.is_conflict
def _counting(exc):
    hit = _real(exc)
    conflicts[0] += hit
    return hit
s3mod.is_conflict = _counting
"""

_REPO_CHILD = (
    """
import json, sys
from scribestore import Repository
"""
    + _COUNT_CONFLICTS
    + """
fpath, options, proc, saves = (json.loads(a) for a in sys.argv[1:])
repo = Repository(fpath, mode="a", **options)
print("ready", flush=True)
assert sys.stdin.readline().strip() == "go"
names = ["shared", f"own-{proc}", f"pair-{proc % 2}"]
saved = []
for k in range(saves):
    if k % 10 == 9:
        # Mostly one long-lived (stale) handle; sometimes a fresh one.
        repo = Repository(fpath, mode="a", **options)
    name = names[k % 3]
    repo.log_artifact(name, {"proc": proc, "save": k}, "json")
    repo.save()
    meta = repo.get_artifact_metadata(name)
    saved.append([name, meta["version"], meta["hash"], meta["timestamp"], k])
print(json.dumps({"saved": saved, "conflicts": conflicts[0]}), flush=True)
"""
)


def _run_together(code: str, args: list[list[Any]], timeout: float = 300) -> list[dict[str, Any]]:
    """Start one child per argument list, release them at once, return their JSON output."""
    procs = [python_child(code, *a, stdin=subprocess.PIPE) for a in args]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if line.strip() != "ready":
                _, err = proc.communicate(timeout=30)
                raise AssertionError(f"child did not start: {line!r}\n{err}")
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _check_repository(loc: Location, results: list[dict[str, Any]], procs: int, saves: int) -> None:
    repo = repo_at(loc, "r")
    by_name: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for meta in repo:
        by_name[meta["name"]].append(meta)
    # Version numbers per name are unique and dense, and every save is there once.
    for name, metas in by_name.items():
        assert [m["version"] for m in metas] == list(range(len(metas))), name
    values = {
        (name, m["version"]): (m, repo.load_artifact(name, version=m["version"]))
        for name, metas in by_name.items()
        for m in metas
    }
    loaded = Counter((value["proc"], value["save"]) for _, value in values.values())
    expected = Counter({(p, k): 1 for p in range(procs) for k in range(saves)})
    assert loaded == expected, (
        f"lost {sorted(expected - loaded)}, duplicated {sorted(loaded - expected)}; "
        f"conflicts retried: {[r['conflicts'] for r in results]}"
    )
    # What each writer was told after its save (renumbered if others committed
    # first) is what the manifest holds.
    for proc, result in enumerate(results):
        for name, version, digest, created_at, k in result["saved"]:
            meta, value = values[(name, version)]
            assert (meta["hash"], meta["timestamp"]) == (digest, created_at)
            assert value == {"proc": proc, "save": k}
    report = repo.verify()
    assert report.clean and report.checked == procs * saves


@pytest.mark.slow
def test_many_writers_one_repository(shared_location: Location) -> None:
    fpath = shared_location.join("repository.json")
    args = [[fpath, shared_location.options, p, SAVES] for p in range(PROCS)]
    results = _run_together(_REPO_CHILD, args)
    _check_repository(shared_location, results, PROCS, SAVES)
    if shared_location.backend == "s3":
        assert sum(r["conflicts"] for r in results) > 0, "no write conflict: the race never ran"


def test_few_writers_one_repository(tmp_path: Path) -> None:
    """A quick local version of the above, for runs without the slow tests."""
    loc = Location("local", str(tmp_path / "store"))
    results = _run_together(
        _REPO_CHILD, [[loc.join("repository.json"), {}, p, 6] for p in range(4)]
    )
    _check_repository(loc, results, 4, 6)


_PROJECT_CHILD = (
    """
import json, sys
from scribestore import Project
"""
    + _COUNT_CONFLICTS
    + """
fpath, options, proc, count = (json.loads(a) for a in sys.argv[1:])
project = Project(fpath, mode="a", author=f"writer-{proc}", **options)
print("ready", flush=True)
assert sys.stdin.readline().strip() == "go"
slugs = []
for k in range(count):
    with project.log(f"exp-{proc}-{k}") as exp:
        exp.log_metric("score", proc * 100 + k)
        exp.log_artifact("config", {"proc": proc, "k": k}, "json")
        with exp.log_test("holdout") as test:
            test.log_artifact("preds", [proc, k], "json")
    project.save()
    slugs.append(exp.slug)
print(json.dumps({"slugs": slugs, "conflicts": conflicts[0]}), flush=True)
"""
)


@pytest.mark.parametrize("procs", [4])
def test_concurrent_projects_keep_every_experiment(shared_location: Location, procs: int) -> None:
    count = 5
    fpath = shared_location.join("project.json")
    results = _run_together(
        _PROJECT_CHILD, [[fpath, shared_location.options, p, count] for p in range(procs)]
    )
    project = project_at(shared_location, "r")
    assert len(project) == procs * count
    found = {}
    for exp in project.experiments:
        config = exp.load_artifact("config")
        assert exp.metrics == {"score": config["proc"] * 100 + config["k"]}
        assert exp.author == f"writer-{config['proc']}"
        assert exp.tests[0].load_artifact("preds") == [config["proc"], config["k"]]
        found[(config["proc"], config["k"])] = exp.slug
    assert set(found) == {(p, k) for p in range(procs) for k in range(count)}
    assert sorted(s for r in results for s in r["slugs"]) == sorted(found.values())
    report = project.verify()
    assert report.clean and report.checked == 2 * procs * count


# --- the S3 server enforces conditional writes ------------------------------------------


def _client(server: S3Server) -> Any:
    return s3fs.S3FileSystem(**server.storage_options())


def test_s3_server_enforces_conditional_puts(s3_server: S3Server) -> None:
    fs = _client(s3_server)
    key = f"conditional/{uuid.uuid4().hex}"
    first = fs.call_s3("put_object", Bucket=S3_BUCKET, Key=key, Body=b"one", IfNoneMatch="*")
    # Create-only on an existing key fails...
    with pytest.raises(OSError) as err:
        fs.call_s3("put_object", Bucket=S3_BUCKET, Key=key, Body=b"two", IfNoneMatch="*")
    assert is_conflict(err.value)
    # ...a put conditional on the current ETag succeeds...
    second = fs.call_s3("put_object", Bucket=S3_BUCKET, Key=key, Body=b"two", IfMatch=first["ETag"])
    assert second["ETag"] != first["ETag"]
    # ...and one conditional on a stale ETag fails and changes nothing.
    with pytest.raises(OSError) as err:
        fs.call_s3("put_object", Bucket=S3_BUCKET, Key=key, Body=b"three", IfMatch=first["ETag"])
    assert is_conflict(err.value)
    with pytest.raises(OSError) as err:
        fs.call_s3("put_object", Bucket=S3_BUCKET, Key=key, Body=b"four", IfMatch='"0000"')
    assert is_conflict(err.value)
    assert fs.cat_file(f"{S3_BUCKET}/{key}") == b"two"


def test_s3_update_rereads_when_another_writer_commits_first(s3_server: S3Server) -> None:
    prefix = f"s3://{S3_BUCKET}/{uuid.uuid4().hex}"
    storage = open_storage(prefix, **s3_server.storage_options())
    other = open_storage(prefix, **s3_server.storage_options())
    storage.write_atomic("doc", b"a")
    seen: list[bytes | None] = []

    def change(current: bytes | None) -> bytes:
        seen.append(current)
        if len(seen) == 1:
            # Another writer commits between our read and our conditional write.
            other.write_atomic("doc", (current or b"") + b"b")
        return (current or b"") + b"c"

    assert storage.update("doc", change) == b"abc"
    assert seen == [b"a", b"ab"]
    assert storage.read_bytes("doc") == b"abc"


def test_s3_conditional_puts_are_atomic_under_concurrency(s3_server: S3Server) -> None:
    """Of many PUTs conditional on one ETag sent at once, exactly one succeeds.

    A server that ignores the condition lets all of them win. Plain moto
    checks the condition and writes in two steps, so under load several can
    win and all but one write is silently lost (how concurrent saves lost
    versions against it); tests/moto_atomic.py closes that window. With the
    server's thread switch interval shortened to 1 us, plain moto failed this
    test in 2 runs of 3 and the patched server in none.
    """
    import boto3
    import botocore.config
    import botocore.exceptions

    # SeaweedFS answers a lost conditional PUT only after seconds (it queues
    # them), so fewer rounds there; moto's race needed many rounds to show.
    writers, rounds, size = 16, (20 if isinstance(s3_server, S3Server) else 3), 1
    config = botocore.config.Config(
        retries={"max_attempts": 1}, max_pool_connections=writers, proxies={}
    )
    options = s3_server.storage_options()
    clients = [
        boto3.session.Session().client(
            "s3",
            endpoint_url=s3_server.endpoint_url,
            aws_access_key_id=options["key"],
            aws_secret_access_key=options["secret"],
            region_name="us-east-1",
            config=config,
        )
        for _ in range(writers)
    ]
    key = f"atomic/{uuid.uuid4().hex}"
    clients[0].put_object(Bucket=S3_BUCKET, Key=key, Body=b"start")

    def body(round_: int, i: int) -> bytes:
        # Unique per round and writer: equal bodies have equal ETags, and a
        # writer re-putting the current body would leave the ETag unchanged.
        return f"{round_:04d}-{i:04d}".encode() * size

    def attempt(round_: int, i: int, etag: str, barrier: threading.Barrier) -> bool:
        data = body(round_, i)
        barrier.wait()
        try:
            clients[i].put_object(Bucket=S3_BUCKET, Key=key, Body=data, IfMatch=etag)
        except botocore.exceptions.ClientError as exc:
            assert exc.response["Error"]["Code"] == "PreconditionFailed"
            return False
        return True

    winners_per_round = []
    with concurrent.futures.ThreadPoolExecutor(writers) as pool:
        for r in range(rounds):
            etag = clients[0].head_object(Bucket=S3_BUCKET, Key=key)["ETag"]
            barrier = threading.Barrier(writers)
            won = list(
                pool.map(lambda i, r=r, e=etag, b=barrier: attempt(r, i, e, b), range(writers))
            )
            winners_per_round.append(sum(won))
            if sum(won) == 1:
                stored = clients[0].get_object(Bucket=S3_BUCKET, Key=key)["Body"].read()
                assert stored == body(r, won.index(True))
    assert winners_per_round == [1] * rounds
