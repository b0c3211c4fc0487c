"""The CLI on memory:// (in-process) and on S3 with --storage-option."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from scribestore import Repository
from support.cli import error_line, invoke, invoke_json
from support.locations import S3_BUCKET


def test_memory_store_round_trip(tmp_path: Path) -> None:
    manifest = f"memory://cli-{uuid.uuid4().hex}/repository.json"
    data = os.urandom(30_000)
    src = tmp_path / "w.bin"
    src.write_bytes(data)
    assert invoke("log", manifest, "w", src).exit_code == 0
    rows = invoke_json("ls", manifest)
    assert [(r["name"], r["size"]) for r in rows] == [("w", len(data))]
    dest = tmp_path / "out.bin"
    assert invoke("get", manifest, "w@0", dest).exit_code == 0
    assert dest.read_bytes() == data
    assert invoke("cat", manifest, "w").stdout_bytes == data
    assert invoke_json("verify", manifest)["ok"] == 1
    assert invoke_json("du", manifest)["logical_bytes"] == len(data)


def test_memory_store_with_separate_objects(tmp_path: Path) -> None:
    base = f"memory://cli-{uuid.uuid4().hex}"
    src = tmp_path / "w.bin"
    src.write_bytes(b"separate objects")
    args = ("--objects", f"{base}/shared-objects")
    assert invoke("log", f"{base}/m/repository.json", "w", src, *args).exit_code == 0
    repo = Repository(f"{base}/m/repository.json", mode="r", objects=f"{base}/shared-objects")
    assert repo.objects.has(repo.get_artifact_metadata("w")["hash"])
    shown = invoke_json("show", f"{base}/m/repository.json", "w", *args)
    assert shown["stored_size"] is not None
    without = invoke_json("show", f"{base}/m/repository.json", "w")
    assert without["stored_size"] is None  # objects are not beside the manifest


def test_bad_storage_option(tmp_path: Path) -> None:
    result = invoke("ls", tmp_path / "repository.json", "-o", "novalue")
    assert result.exit_code == 2
    assert "KEY=VALUE" in error_line(result)
    result = invoke("ls", tmp_path / "repository.json", "-o", "fsync=false", "-o", "bogus=1")
    assert result.exit_code == 2
    error_line(result)


def test_s3_with_storage_options(s3_server, tmp_path: Path) -> None:
    options: list[str] = []
    for key, value in s3_server.storage_options().items():
        text = value if isinstance(value, str) else json.dumps(value)
        options += ["-o", f"{key}={text}"]
    manifest = f"s3://{S3_BUCKET}/cli-{uuid.uuid4().hex}/repository.json"
    data = os.urandom(20_000)
    src = tmp_path / "w.bin"
    src.write_bytes(data)
    result = invoke("log", manifest, "w", src, *options)
    assert result.exit_code == 0, result.stderr
    assert invoke("log", manifest, "w", src, *options).exit_code == 0
    history = invoke_json("history", manifest, "w", *options)
    assert [v["version"] for v in history] == [0, 1]
    dest = tmp_path / "out.bin"
    assert invoke("get", manifest, "w@1", dest, *options).exit_code == 0
    assert dest.read_bytes() == data
    du = invoke_json("du", manifest, *options)
    assert du["versions"] == 2 and du["distinct_contents"] == 1
    assert invoke_json("verify", manifest, *options)["ok"] == 2
