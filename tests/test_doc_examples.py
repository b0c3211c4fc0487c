"""Every Python and shell example in the README and the docs runs, as written.

Each document's examples run in order, in one fresh working directory, the
Python blocks in one namespace (a later block uses what an earlier one
made) and the shell blocks with the installed ``scribestore`` on PATH.
What a guide says its reader already has (a model file, a lazyscribe
store) is made first, by :data:`READER_HAS`; documents that use ``s3://``
URLs run against the test S3 server through the standard AWS environment
variables, with their buckets created. Nothing in a block is rewritten.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from support.safetensors_file import write_safetensors

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
#: Shell lines that install the project: how the suite itself gets run
#: (``make test``), and the demo (``make demo``) runs in tests/test_demo.py.
NOT_RUN = ("make ", "pip install ")


def _model(path: str) -> Callable[[Path], None]:
    def make(cwd: Path) -> None:
        target = cwd / path
        target.parent.mkdir(parents=True, exist_ok=True)
        write_safetensors(target, {"embed.weight": (256, 64), "lm_head.weight": (64, 256)})

    return make


def _lazyscribe_stores(cwd: Path) -> None:
    import lazyscribe

    old = cwd / "old"
    old.mkdir()
    repo = lazyscribe.Repository(old / "repository.json", mode="w")
    repo.log_artifact("features", [1, 2, 3], handler="json")
    repo.save()
    project = lazyscribe.Project(old / "project.json", mode="w", author="me")
    with project.log("baseline") as exp:
        exp.log_metric("auc", 0.8)
    project.save()


def _experiments(cwd: Path) -> None:
    from scribestore import Project

    project = Project(cwd / "store" / "project.json", author="me")
    for name, auc in (("baseline", 0.85), ("wider-network", 0.91), ("deeper-network", 0.88)):
        with project.log(name) as exp:
            exp.log_metric("auc", auc)
            exp.log_artifact("config", {"hidden_units": 1024}, handler="json")
    project.save()


#: What a document says its reader already has, made before its examples run.
READER_HAS: dict[str, list[Callable[[Path], None]]] = {
    "cli.md": [_model("checkpoints/model.bin")],
    "index.md": [_model("weights.bin")],
    "large-files.md": [_model("checkpoints/model.safetensors")],
    "remote-stores.md": [_model("checkpoints/model.safetensors")],
    "migration.md": [_lazyscribe_stores],
    "promotion.md": [_experiments],
}


def _examples(path: Path) -> list[tuple[str, str]]:
    return [
        (lang, code)
        for lang, code in _FENCE.findall(path.read_text())
        if lang in ("python", "sh", "bash")
    ]


def _s3_environment(request: pytest.FixtureRequest, text: str) -> dict[str, str]:
    server = request.getfixturevalue("s3_server")
    options = server.storage_options()
    for bucket in sorted(set(re.findall(r"s3://([a-z0-9][a-z0-9.-]+)/", text))):
        with contextlib.suppress(FileExistsError):  # made for an earlier document
            server.create_bucket(bucket)
    return {
        "AWS_ENDPOINT_URL": options["endpoint_url"],
        "AWS_ACCESS_KEY_ID": options["key"],
        "AWS_SECRET_ACCESS_KEY": options["secret"],
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def _run_shell(code: str, cwd: Path, env: dict[str, str], where: str) -> None:
    lines = [line for line in code.splitlines() if not line.startswith(NOT_RUN)]
    script = "\n".join(lines)
    if not script.strip() or all(line.startswith("#") for line in lines if line.strip()):
        return
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"{where}:\n{script}\n{proc.stdout}\n{proc.stderr}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_example_runs(
    document: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    examples = _examples(document)
    if not examples:
        pytest.skip(f"{document.name} has no Python or shell examples")
    cwd = tmp_path / "work"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    text = document.read_text()
    extra = _s3_environment(request, text) if "s3://" in text else {}
    for name, value in extra.items():
        monkeypatch.setenv(name, value)
    for make in READER_HAS.get(document.name, []):
        make(cwd)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    namespace: dict[str, object] = {"__name__": "__main__"}
    for number, (lang, code) in enumerate(examples, start=1):
        where = f"{document.name}, example {number}"
        if lang == "python":
            exec(compile(code, where, "exec"), namespace)
        else:
            _run_shell(code, cwd, env, where)
