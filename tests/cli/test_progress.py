"""scribestore.progress, and how the CLI decides to show bars."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest

import scribestore.cli.app as app
from scribestore import Repository
from scribestore.progress import (
    NullProgress,
    Progress,
    ProgressReader,
    TqdmProgress,
    copy_stream,
    null,
    terminal_progress,
)
from support.cli import invoke, make_repo
from support.progress import Recorder


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_protocol_and_null() -> None:
    assert isinstance(null, NullProgress)
    assert isinstance(null, Progress)
    assert isinstance(Recorder(), Progress)
    null.start(10, "x")
    null.advance(5)
    null.close()


def test_tqdm_progress_draws_and_closes() -> None:
    out = io.StringIO()
    bar = TqdmProgress(out, leave=True, mininterval=0)
    bar.start(1000, "hashing")
    bar.advance(500)
    bar.advance(500)
    bar.close()
    bar.close()  # twice is fine
    text = out.getvalue()
    assert "hashing" in text and "100%" in text
    bar.start(None, "again")  # reusable after close
    bar.advance(3)
    bar.close()


def test_tqdm_progress_counts_other_units_plainly() -> None:
    out = io.StringIO()
    bar = TqdmProgress(out, leave=True, mininterval=0, unit="file")
    bar.start(2048, "gc: surveying")
    bar.advance(2048)
    bar.close()
    text = out.getvalue()
    assert "2048/2048" in text and " file" in text and "KiB" not in text and "B/s" not in text


def test_terminal_progress_only_for_terminals() -> None:
    assert terminal_progress(enabled=True, stream=io.StringIO()) is null
    assert terminal_progress(enabled=False, stream=FakeTTY()) is null
    assert isinstance(terminal_progress(enabled=True, stream=FakeTTY()), TqdmProgress)
    closed = io.StringIO()
    closed.close()
    assert terminal_progress(enabled=True, stream=closed) is null


def test_progress_reader_counts_and_passes_through() -> None:
    rec = Recorder()
    raw = io.BytesIO(b"x" * 10_000)
    raw.verified = True  # type: ignore[attr-defined]
    with ProgressReader(raw, rec) as reader:
        assert reader.read(4000) == b"x" * 4000
        assert reader.read() == b"x" * 6000
        assert reader.read() == b""
        assert reader.verified is True
    assert rec.advanced == 10_000
    assert raw.closed


def test_copy_stream_reports_and_always_closes() -> None:
    rec = Recorder()
    out = io.BytesIO()
    assert copy_stream(io.BytesIO(b"abc" * 1000), out, rec, total=3000, desc="copy") == 3000
    assert out.getvalue() == b"abc" * 1000
    assert rec.calls[0] == ("start", (3000, "copy")) and rec.calls[-1] == ("close", None)
    assert rec.advanced == 3000

    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: object) -> int:
            raise OSError("disk gone")

    rec = Recorder()
    with pytest.raises(OSError, match="disk gone"):
        copy_stream(Broken(), io.BytesIO(), rec)
    assert rec.calls[-1] == ("close", None)


def test_cli_progress_is_off_for_json_and_quiet(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    manifest = make_repo(tmp_path / "s")
    asked: list[bool] = []
    recorders: list[Recorder] = []

    def fake(enabled: bool = True, stream: object = None, unit: str = "B") -> Progress:
        asked.append(enabled)
        if not enabled:
            return null
        recorders.append(Recorder())
        return recorders[-1]

    monkeypatch.setattr(app, "terminal_progress", fake)
    size = Repository(manifest, mode="r").get_artifact_metadata("model")["size"]
    assert invoke("get", manifest, "model", tmp_path / "a.bin").exit_code == 0
    assert invoke("get", manifest, "model", tmp_path / "b.bin", "--json").exit_code == 0
    assert invoke("get", manifest, "model", tmp_path / "c.bin", "--quiet").exit_code == 0
    assert asked == [True, False, False]
    assert recorders[0].advanced == size
    assert invoke("verify", manifest).exit_code == 0
    src = tmp_path / "new.bin"
    src.write_bytes(b"n" * 5000)
    assert invoke("log", manifest, "new", src).exit_code == 0
    assert recorders[-1].advanced == 5000  # log's per-file bar


@pytest.mark.skipif(sys.platform != "linux", reason="pseudo-terminals of Linux")
def test_bars_advance_in_a_terminal(tmp_path: Path) -> None:
    """Driven in a pseudo-terminal, each long command's bar moves, with a rate."""
    from support.terminal import run_in_terminal

    big = tmp_path / "weights.bin"
    with big.open("wb") as f:
        for _ in range(12):
            f.write(os.urandom(16 << 20))  # 192 MiB
    manifest = tmp_path / "s" / "repository.json"
    for args in (
        ("log", manifest, "weights", big),
        ("verify", manifest),
        ("get", manifest, "weights", tmp_path / "out.bin"),
        ("push", manifest, tmp_path / "remote" / "repository.json"),
    ):
        code, out, percents = run_in_terminal(*args)
        assert code == 0, out
        moving = sorted(set(percents))
        assert len(moving) >= 3 and moving[0] < 50 < moving[-1], (args[0], percents)
        assert percents == sorted(percents), (args[0], percents)  # forward only
        assert "B/s" in out, args[0]
    code, out, percents = run_in_terminal("get", manifest, "weights", tmp_path / "o2", columns=0)
    assert code == 0 and len(set(percents)) >= 3, percents  # a terminal without a size
    code, out, percents = run_in_terminal("gc", manifest, "--grace", "0")
    assert code == 0, out
    assert "gc: surveying" in out and "gc: deleting" in out and " file" in out
    assert percents and percents[-1] == 100
    code, out, percents = run_in_terminal("verify", manifest, "--json")
    assert code == 0 and percents == []
    assert json.loads(out)["results"][0]["status"] == "ok"  # nothing but the JSON
