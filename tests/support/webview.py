"""A store with something to show, and the web view served from a thread."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from scribestore import Project, Repository
from scribestore.cli.ui import bind
from scribestore.ui.app import create_app
from scribestore.ui.catalog import Catalog

#: The model's size: large enough to be chunked, so a fine-tune shares chunks.
MODEL_BYTES = 12 * 1024 * 1024
#: (accuracy, lr) of the sample project's three experiments, in the order logged.
RUNS = ((0.71, 0.1), (0.93, 0.01), (0.85, 0.05))
#: Where the chromium the browser tests drive is (Debian's package).
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def sample_store(root: Path) -> Path:
    """A store in ``root`` with a repository (a JSON config in two versions
    with an alias, a chunked model and a fine-tune of it) and a project of
    three experiments with metrics, parameters, tags, a test and artifacts."""
    model = root / "model.bin"
    data = os.urandom(MODEL_BYTES)
    model.write_bytes(data)
    repo = Repository(root / "repository.json", mode="w")
    repo.log_artifact("config", {"lr": 0.1, "layers": [64, 64]}, handler="json")
    repo.log_artifact("model", model, handler="file")
    repo.save()
    tuned = bytearray(data)
    tuned[1_000_000:1_000_100] = os.urandom(100)
    model.write_bytes(bytes(tuned))
    repo = Repository(root / "repository.json", mode="a")
    repo.log_artifact("config", {"lr": 0.01, "layers": [64, 64, 32]}, handler="json")
    repo.log_artifact("model", model, handler="file")
    repo.save()
    repo.set_alias("model", "production", version=0)
    project = Project(root / "project.json", mode="w")
    for i, (accuracy, lr) in enumerate(RUNS):
        with project.log(f"run-{i}") as exp:
            exp.log_metric("accuracy", accuracy)
            exp.log_metric("loss", round(1 - accuracy, 4))
            exp.log_parameter("lr", lr)
            exp.tag("baseline" if i == 0 else "tuned")
            exp.log_artifact("notes", f"notes of run {i}", handler="text")
            with exp.log_test("holdout", "a held-out split") as test:
                test.log_metric("accuracy", round(accuracy - 0.05, 4))
    project.save()
    return root


@contextlib.contextmanager
def serving(catalog: Catalog) -> Iterator[str]:
    """The web view of ``catalog`` served on 127.0.0.1 from a thread; yields its base URL."""
    sock = bind(0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(catalog), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the web view did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
