"""scribestore.storage.listing_cache: a flat local directory is listed again
only when its times moved, and never trusted while they are racy."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest

from scribestore.storage import listing_cache
from scribestore.storage.listing_cache import DirState
from scribestore.storage.local import LocalStorage


def _walks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record each directory tree LocalStorage walks."""
    walked: list[str] = []
    real = os.walk

    def counted(top: str, *args: object, **kwargs: object) -> object:
        walked.append(top)
        return real(top, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(os, "walk", counted)
    return walked


def _device(path: Path) -> int:
    device = path.stat().st_dev
    if not listing_cache.is_local(device):
        pytest.skip("the temp directory is not on a file system known to be local")
    return device


def _aged(path: Path) -> None:
    """Wait until the directory's last change is older than the racy window."""
    changed = max(path.stat().st_mtime_ns, path.stat().st_ctime_ns)
    time.sleep(max(0.0, (changed + listing_cache.RACY_NS - time.time_ns()) / 1e9) + 0.05)


def test_an_unchanged_directory_is_listed_once_and_any_change_is_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "packs").mkdir()
    (tmp_path / "packs" / "a").write_bytes(b"1")
    _device(tmp_path)
    _aged(tmp_path / "packs")
    walked = _walks(monkeypatch)
    storage = LocalStorage(tmp_path)
    assert list(storage.list("packs")) == ["packs/a"]
    assert list(LocalStorage(tmp_path).list("packs")) == ["packs/a"]  # another instance too
    assert len(walked) == 1
    # Created, then deleted, by anyone: the directory's times move, so it is listed again.
    (tmp_path / "packs" / "b").write_bytes(b"2")
    assert list(storage.list("packs")) == ["packs/a", "packs/b"]
    os.unlink(tmp_path / "packs" / "a")
    assert list(storage.list("packs")) == ["packs/b"]
    os.rename(tmp_path / "packs" / "b", tmp_path / "packs" / "c")
    assert list(storage.list("packs")) == ["packs/c"]
    assert len(walked) == 4


def test_a_recently_changed_directory_is_never_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clock that did not tick between two changes cannot hide the second."""
    (tmp_path / "packs").mkdir()
    (tmp_path / "packs" / "a").write_bytes(b"1")
    now = time.time_ns()
    frozen = DirState(_device(tmp_path), 2, now, now)  # the times stay put, as on a coarse clock
    monkeypatch.setattr(listing_cache, "state_of", lambda path: frozen)
    storage = LocalStorage(tmp_path)
    assert list(storage.list("packs")) == ["packs/a"]
    (tmp_path / "packs" / "b").write_bytes(b"2")
    assert list(storage.list("packs")) == ["packs/a", "packs/b"]


def test_unchanged_times_are_what_a_kept_listing_relies_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The converse of the test above, so that it can fail: times old enough
    and unchanged make the kept listing be used."""
    (tmp_path / "packs").mkdir()
    (tmp_path / "packs" / "a").write_bytes(b"1")
    old = time.time_ns() - 2 * listing_cache.RACY_NS
    state = DirState(_device(tmp_path), 2, old, old)
    monkeypatch.setattr(listing_cache, "state_of", lambda path: state)
    storage = LocalStorage(tmp_path)
    assert list(storage.list("packs")) == ["packs/a"]
    (tmp_path / "packs" / "b").write_bytes(b"2")
    assert list(storage.list("packs")) == ["packs/a"]


def test_a_directory_that_changes_while_it_is_read_is_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "packs").mkdir()
    old = time.time_ns() - 2 * listing_cache.RACY_NS
    device = _device(tmp_path)
    still = DirState(device, 2, old, old)
    states = iter([still, DirState(device, 2, old, old + 1)])  # moved while read
    monkeypatch.setattr(listing_cache, "state_of", lambda path: next(states, still))
    walked = _walks(monkeypatch)
    storage = LocalStorage(tmp_path)
    for _ in range(3):  # not kept, then kept once read unchanged
        assert list(storage.list("packs")) == []
    assert len(walked) == 2


def test_trees_and_the_switch_off_are_listed_every_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "objects" / "ab").mkdir(parents=True)
    (tmp_path / "objects" / "ab" / "x").write_bytes(b"1")
    (tmp_path / "packs").mkdir()
    _aged(tmp_path / "objects")
    _aged(tmp_path / "packs")
    walked = _walks(monkeypatch)
    storage = LocalStorage(tmp_path)
    for _ in range(2):
        # A file added in a subdirectory moves only that subdirectory's times.
        assert list(storage.list("objects")) == ["objects/ab/x"]
    monkeypatch.setenv("SCRIBESTORE_LISTING_CACHE", "off")
    for _ in range(2):
        assert list(storage.list("packs")) == []
    assert len(walked) == 4


def test_a_missing_directory_lists_nothing(tmp_path: Path) -> None:
    assert list(LocalStorage(tmp_path).list("packs")) == []


def test_a_directory_that_cannot_be_read_fails_the_listing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never an empty listing (which would read as every pack deleted), and never kept."""
    (tmp_path / "packs").mkdir()
    (tmp_path / "packs" / "a").write_bytes(b"1")
    _device(tmp_path)
    _aged(tmp_path / "packs")
    real = os.scandir

    def exhausted(path: object = ".") -> object:
        raise OSError(errno.EMFILE, "Too many open files", str(path))

    monkeypatch.setattr(os, "scandir", exhausted)
    storage = LocalStorage(tmp_path)
    with pytest.raises(OSError, match="Too many open files"):
        list(storage.list("packs"))
    monkeypatch.setattr(os, "scandir", real)
    assert list(storage.list("packs")) == ["packs/a"]


def test_nested_roots_listing_one_directory_each_get_their_own_names(tmp_path: Path) -> None:
    (tmp_path / "objects" / "locks").mkdir(parents=True)
    (tmp_path / "objects" / "locks" / "w").write_bytes(b"1")
    _device(tmp_path)
    _aged(tmp_path / "objects" / "locks")
    outer, inner = LocalStorage(tmp_path), LocalStorage(tmp_path / "objects")
    for _ in range(2):
        assert list(outer.list("objects/locks")) == ["objects/locks/w"]
        assert list(inner.list("locks")) == ["locks/w"]
    assert inner.exists("locks/w")


def test_listings_on_other_file_systems_are_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NFS, SMB and FUSE stamp times with another machine's clock."""
    (tmp_path / "packs").mkdir()
    _aged(tmp_path / "packs")
    monkeypatch.setattr(listing_cache, "is_local", lambda device: False)
    walked = _walks(monkeypatch)
    storage = LocalStorage(tmp_path)
    for _ in range(2):
        assert list(storage.list("packs")) == []
    assert len(walked) == 2


def test_a_device_that_is_not_mounted_is_not_local() -> None:
    assert not listing_cache.is_local(os.makedev(4095, 1048575))
