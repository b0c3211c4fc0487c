"""scribestore alias set|rm|ls|history, and NAME@ALIAS wherever a version is taken."""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest

from scribestore import Repository
from support.cli import error_line, invoke, invoke_json, make_repo


@pytest.fixture
def repo_path(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "store")


def test_set_move_list_and_use_an_alias(repo_path: Path, tmp_path: Path) -> None:
    info = invoke_json("alias", "set", repo_path, "model", "production", "0")
    assert (info["version"], info["moved_by"]) == (0, getpass.getuser())
    assert invoke_json("show", repo_path, "model@production")["version"] == 0
    dest = tmp_path / "out.bin"
    assert invoke("get", repo_path, "model@production", dest).exit_code == 0
    with Repository(repo_path, mode="r").open_artifact("model", version=0) as stream:
        assert dest.read_bytes() == stream.read()
    invoke_json("alias", "set", repo_path, "model", "production")  # the newest
    listed = invoke_json("alias", "ls", repo_path)
    assert [(a["name"], a["alias"], a["version"]) for a in listed] == [("model", "production", 1)]
    moves = invoke_json("alias", "history", repo_path, "model", "production")
    assert [m["target"]["version"] for m in moves] == [0, 1]
    text = invoke("alias", "ls", repo_path, "model").stdout
    assert "production" in text and "VERSION" in text


def test_remove_an_alias(repo_path: Path) -> None:
    invoke_json("alias", "set", repo_path, "features", "candidate")
    assert invoke("alias", "rm", repo_path, "features", "candidate").exit_code == 0
    assert invoke_json("alias", "ls", repo_path) == []
    result = invoke("show", repo_path, "features@candidate")
    assert result.exit_code == 3
    assert "no alias 'candidate'" in error_line(result)


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("set", "model", "bad alias!"), 2),
        (("set", "model", "production", "9"), 3),
        (("set", "nope", "production"), 3),
        (("rm", "model", "never"), 3),
    ],
)
def test_alias_errors(repo_path: Path, args: tuple[str, ...], code: int) -> None:
    before = repo_path.read_bytes()
    result = invoke("alias", args[0], repo_path, *args[1:])
    assert result.exit_code == code
    error_line(result)
    assert repo_path.read_bytes() == before
