"""Helpers shared by tests: child processes that use a store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

SRC = str(Path(__file__).resolve().parents[2] / "src")


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, env.get("PYTHONPATH", "")) if p)
    return env


def python_child(code: str, *args: Any, **popen: Any) -> subprocess.Popen[str]:
    """Start ``code`` in a fresh interpreter; ``sys.argv[1:]`` are JSON-encoded ``args``."""
    argv = [sys.executable, "-c", textwrap.dedent(code), *(json.dumps(a) for a in args)]
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen(argv, env=child_env(), text=True, **popen)


def run_child(code: str, *args: Any, timeout: float = 300) -> str:
    """Run ``code`` to completion; return its stdout; fail with its stderr."""
    proc = python_child(code, *args)
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"child failed ({proc.returncode}):\n{err}")
    return out


#: Child-process code defining ``peak_rss()``: the process's peak resident set in
#: KiB from /proc (VmHWM). Unlike ``ru_maxrss``, it is not inherited from the
#: parent across fork+exec, so it measures the child alone.
PEAK_RSS = """
def peak_rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")
"""


def seal(doc: dict[str, Any]) -> bytes:
    """A hand-edited manifest document with its checksum made valid again.

    What a tool (or an attacker) that edits a manifest on purpose writes:
    tests of what readers do with crafted content use it, so the checksum
    (FORMAT 5) does not hide the check under test. Documents that do not
    match the schema, or of another format version, are returned as they are.
    """
    import blake3
    import msgspec

    from scribestore.manifest.schema import REPOSITORY_FORMAT, ProjectManifest, RepositoryManifest

    raw = json.dumps(doc).encode()
    kind = RepositoryManifest if doc.get("format") == REPOSITORY_FORMAT else ProjectManifest
    try:
        manifest = msgspec.json.decode(raw, type=kind)
    except msgspec.MsgspecError:
        return raw
    if manifest.format_version < 2 or manifest.format_version > kind().format_version:
        return raw
    # FORMAT 5: BLAKE3 of the compact encoding with the checksum empty.
    unsealed = msgspec.json.encode(msgspec.structs.replace(manifest, checksum=""))
    resealed = dict(doc)
    resealed["checksum"] = blake3.blake3(unsealed).hexdigest()
    return json.dumps(resealed).encode()


def spoil_pack_table(storage: Any, pack_id: str) -> None:
    """Damage the copy of its index that a pack keeps at its end (one byte of its magic).

    The pack's blobs stay intact: only the fallback a damaged index would use is lost.
    """
    path = f"packs/{pack_id}.pack"
    data = bytearray(storage.read_bytes(path))
    data[-48] ^= 0xFF  # first byte of the footer's magic
    storage.delete(path)
    storage.write_new(path, [bytes(data)])
