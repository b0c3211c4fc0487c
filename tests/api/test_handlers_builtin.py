"""The built-in artifact handlers: round trips, parameters, environments, files."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from scribestore import (
    IntegrityError,
    ObjectStore,
    ScribeStoreError,
)
from scribestore.artifacts import get_handler
from scribestore.storage.base import BLOCK_SIZE
from scribestore.store.hashing import hash_file
from scribestore.store.loose import HEADER_SIZE
from support.helpers import PEAK_RSS, run_child


def round_trip(alias: str, value, write_params=None, read_params=None):
    handler = get_handler(alias)
    buf = io.BytesIO()
    handler.write(value, buf, **(write_params or {}))
    data = buf.getvalue()
    return data, handler.read(io.BytesIO(data), **(read_params or {}))


# --- json / text / bytes / pickle ----------------------------------------------


def test_json_round_trip_is_utf8_text() -> None:
    value = {"name": "café", "scores": [1, 2.5, None], "ok": True}
    data, back = round_trip("json", value)
    assert back == value
    assert json.loads(data.decode("utf-8")) == value
    assert get_handler("json").binary is False
    assert get_handler("json").suffix == "json"


def test_json_params_pass_through() -> None:
    plain, _ = round_trip("json", {"b": 1, "a": 2})
    indented, back = round_trip("json", {"b": 1, "a": 2}, {"indent": 4, "sort_keys": True})
    assert plain != indented
    assert indented == b'{\n    "a": 2,\n    "b": 1\n}'
    assert back == {"a": 2, "b": 1}
    _, floats = round_trip("json", {"x": 1.5}, read_params={"parse_float": str})
    assert floats == {"x": "1.5"}


def test_json_unserializable_raises_type_error() -> None:
    with pytest.raises(TypeError):
        get_handler("json").write({1, 2}, io.BytesIO())


def test_text_round_trip() -> None:
    data, back = round_trip("text", "héllo\nwörld")
    assert back == "héllo\nwörld"
    assert data == "héllo\nwörld".encode()
    assert get_handler("text").suffix == "txt"
    assert get_handler("text").binary is False


@pytest.mark.parametrize("value", [b"bytes", 42, None, ["a"]])
def test_text_refuses_non_str(value) -> None:
    with pytest.raises(TypeError, match="str"):
        get_handler("text").write(value, io.BytesIO())


def test_text_refuses_params() -> None:
    with pytest.raises(TypeError, match="encoding"):
        get_handler("text").write("x", io.BytesIO(), encoding="latin-1")


@pytest.mark.parametrize(
    "value",
    [b"\x00\xffraw", bytearray(b"abc"), memoryview(b"abcdef"), memoryview(b"abcdef")[::2], b""],
)
def test_bytes_round_trip(value) -> None:
    data, back = round_trip("bytes", value)
    assert type(back) is bytes
    assert back == data == bytes(value)
    assert get_handler("bytes").suffix == "bin"


def test_bytes_refuses_str() -> None:
    with pytest.raises(TypeError, match="bytes"):
        get_handler("bytes").write("text", io.BytesIO())


def test_pickle_round_trip_and_protocol() -> None:
    value = {"t": (1, 2), "s": {3}, "c": complex(1, 2)}
    data, back = round_trip("pickle", value, {"protocol": 2})
    assert back == value
    assert data[:2] == b"\x80\x02"  # protocol 2 header
    assert get_handler("pickle").suffix == "pkl"


def test_pickle_docstring_warns_about_code_execution() -> None:
    doc = type(get_handler("pickle")).__doc__ or ""
    assert "arbitrary code" in doc


def test_pickle_environment_and_mismatch() -> None:
    handler = get_handler("pickle")
    expected = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert handler.environment() == {"python_version": expected}
    assert handler.check_environment(handler.environment()) is None
    message = handler.check_environment({"python_version": "2.7"})
    assert message is not None
    assert "python_version=2.7" in message
    assert f"python_version={expected}" in message


# --- numpy ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "array",
    [
        np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7,
        # bfloat16 weights are commonly carried as their raw uint16 bit patterns.
        (
            np.random.default_rng(0).standard_normal((5, 7)).astype(np.float32).view(np.uint32)
            >> 16
        ).astype(np.uint16),
        np.asfortranarray(np.arange(12, dtype=">f8").reshape(3, 4)),
        np.zeros((0, 3), dtype=np.int64),
        np.array(3.5, dtype=np.float16),
    ],
    ids=["float32", "bf16-as-uint16", "fortran-bigendian", "empty", "scalar"],
)
def test_numpy_round_trip_keeps_dtype_and_shape(array: np.ndarray) -> None:
    data, back = round_trip("numpy", array)
    assert data.startswith(b"\x93NUMPY")
    assert back.dtype == array.dtype
    assert back.shape == array.shape
    assert back.flags.f_contiguous == array.flags.f_contiguous
    np.testing.assert_array_equal(back, array)


def test_numpy_refuses_object_arrays() -> None:
    with pytest.raises(ValueError, match="allow_pickle"):
        get_handler("numpy").write(np.array([{"a": 1}, None], dtype=object), io.BytesIO())


def test_numpy_refuses_allow_pickle_param() -> None:
    with pytest.raises(TypeError, match="never pickles"):
        get_handler("numpy").write(np.zeros(2), io.BytesIO(), allow_pickle=True)
    with pytest.raises(TypeError, match="never pickles"):
        get_handler("numpy").read(io.BytesIO(b""), allow_pickle=True)


def test_numpy_read_refuses_pickled_npy() -> None:
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):
        get_handler("numpy").read(io.BytesIO(buf.getvalue()))


def test_numpy_environment_and_mismatch() -> None:
    handler = get_handler("numpy")
    major = np.__version__.split(".")[0]
    assert handler.environment() == {"numpy_version": major}
    assert handler.check_environment({"numpy_version": major}) is None
    other = "1" if major != "1" else "2"
    message = handler.check_environment({"numpy_version": other})
    assert message is not None
    assert f"numpy_version={other}" in message


# --- file: source_path, write, read ---------------------------------------------


def test_file_source_path_returns_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "model.bin").write_bytes(b"w")
    monkeypatch.chdir(tmp_path)
    handler = get_handler("file")
    assert handler.streams_path is True
    assert handler.source_path("model.bin") == str(tmp_path / "model.bin")
    assert handler.source_path(Path("model.bin")) == str(tmp_path / "model.bin")


def test_file_source_path_errors(tmp_path: Path) -> None:
    handler = get_handler("file")
    missing = tmp_path / "nope.bin"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        handler.source_path(missing)
    with pytest.raises(FileNotFoundError, match="directory"):
        handler.source_path(tmp_path)
    with pytest.raises(FileNotFoundError, match="only local files"):
        handler.source_path("s3://bucket/model.bin")
    for bad in (42, None, b"/tmp/x", ["a"]):
        with pytest.raises(TypeError, match="path"):
            handler.source_path(bad)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_file_source_path_refuses_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(FileNotFoundError, match="not a regular file"):
        get_handler("file").source_path(fifo)


def test_file_write_read_round_trip(tmp_path: Path) -> None:
    content = os.urandom(BLOCK_SIZE + 1234)  # more than one block
    src = tmp_path / "src.bin"
    src.write_bytes(content)
    data, back = round_trip("file", src)
    assert data == back == content


# --- file: load_stream -----------------------------------------------------------


def stored(tmp_path: Path, content: bytes) -> tuple[ObjectStore, str]:
    store = ObjectStore(tmp_path / "objects")
    return store, store.put(content)


def tamper(store: ObjectStore, digest: str) -> None:
    """Flip one payload byte of a raw (incompressible) object on disk: of the
    loose object file, or of its pack when the object is chunked."""
    packs = sorted((Path(store.url) / "packs").glob("*.pack"))
    path = packs[0] if packs else Path(store.url) / digest[:2] / digest
    raw = bytearray(path.read_bytes())
    raw[HEADER_SIZE + (len(raw) - HEADER_SIZE) // 2] ^= 0x01
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    path.write_bytes(bytes(raw))


def leftovers(directory: Path, *keep: str) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


def test_load_stream_without_dest_returns_the_stream(tmp_path: Path) -> None:
    store, digest = stored(tmp_path, b"abc" * 100)
    with store.open(digest) as reader:
        # fname (always passed by the repository) means nothing without dest.
        assert get_handler("file").load_stream(reader, fname="m.bin") is reader
        assert reader.read() == b"abc" * 100
    assert leftovers(tmp_path, "objects") == []


def test_load_stream_file_dest_wins_over_fname(tmp_path: Path) -> None:
    store, digest = stored(tmp_path, b"payload")
    dest = tmp_path / "out.bin"
    with store.open(digest) as reader:
        assert get_handler("file").load_stream(reader, dest=dest, fname="m.bin") == dest
    assert dest.read_bytes() == b"payload"
    assert leftovers(tmp_path, "objects") == ["out.bin"]


def test_load_stream_to_dest_writes_exact_bytes(tmp_path: Path) -> None:
    content = os.urandom(2 * BLOCK_SIZE + 777)
    store, digest = stored(tmp_path, content)
    out = tmp_path / "out"
    out.mkdir()
    dest = out / "model.bin"
    with store.open(digest) as reader:
        result = get_handler("file").load_stream(reader, dest=dest)
    assert result == dest
    assert isinstance(result, Path)
    assert dest.read_bytes() == content
    assert leftovers(out) == ["model.bin"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize(
    ("before", "after"), [(0o640, 0o640), (0o4755, 0o755)], ids=["mode", "no-setuid"]
)
def test_load_stream_replaces_existing_dest_keeping_mode(
    tmp_path: Path, before: int, after: int
) -> None:
    """The new file keeps the permission bits of the one it replaces, never its
    setuid, setgid or sticky bit: the content is new."""
    store, digest = stored(tmp_path, b"new content")
    dest = tmp_path / "model.bin"
    dest.write_bytes(b"old")
    dest.chmod(before)
    with store.open(digest) as reader:
        get_handler("file").load_stream(reader, str(dest))
    assert dest.read_bytes() == b"new content"
    assert stat.S_IMODE(dest.stat().st_mode) == after


def test_load_stream_into_directory_needs_fname(tmp_path: Path) -> None:
    store, digest = stored(tmp_path, b"payload")
    out = tmp_path / "out"
    out.mkdir()
    handler = get_handler("file")
    with store.open(digest) as reader, pytest.raises(IsADirectoryError, match="fname"):
        handler.load_stream(reader, dest=out)
    for bad in ("../escape.bin", "a/../../b.bin", "/abs.bin", "a//b", "a\\b", "..", ""):
        with store.open(digest) as reader, pytest.raises(ValueError, match="relative file name"):
            handler.load_stream(reader, dest=out, fname=bad)
    with store.open(digest) as reader:
        assert handler.load_stream(reader, dest=out, fname="w.bin") == out / "w.bin"
    assert (out / "w.bin").read_bytes() == b"payload"
    assert leftovers(out) == ["w.bin"]
    # A logged name with a subfolder (lazyscribe 2.2.1 allows one) is restored under it.
    with store.open(digest) as reader:
        assert handler.load_stream(reader, dest=out, fname="sub/x.bin") == out / "sub" / "x.bin"
    assert (out / "sub" / "x.bin").read_bytes() == b"payload"


def test_a_stored_name_never_leads_through_a_symlink_in_dest(tmp_path: Path) -> None:
    """``cfg/x.bin`` from a manifest is refused when ``dest/cfg`` is a symlink: the
    write would land outside ``dest``. A symlink as the file itself is replaced."""
    store, digest = stored(tmp_path, b"payload")
    handler = get_handler("file")
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / "cfg").symlink_to(outside)
    with store.open(digest) as reader, pytest.raises(ValueError, match="symlink"):
        handler.load_stream(reader, dest=out, fname="cfg/x.bin")
    (out / "a").mkdir()
    (out / "a" / "b").symlink_to(outside)
    with store.open(digest) as reader, pytest.raises(ValueError, match="symlink"):
        handler.load_stream(reader, dest=out, fname="a/b/c/x.bin")
    assert list(outside.iterdir()) == []
    (out / "link.bin").symlink_to(outside / "target.bin")
    with store.open(digest) as reader:
        handler.load_stream(reader, dest=out, fname="link.bin")
    assert not (out / "link.bin").is_symlink() and (out / "link.bin").read_bytes() == b"payload"
    assert list(outside.iterdir()) == []


def test_load_stream_argument_errors(tmp_path: Path) -> None:
    store, digest = stored(tmp_path, b"payload")
    handler = get_handler("file")
    with store.open(digest) as reader:
        with pytest.raises(TypeError, match="dest"):
            handler.load_stream(reader, dest=42)
        with pytest.raises(TypeError, match="bogus"):
            handler.load_stream(reader, dest=tmp_path / "x.bin", bogus=1)
        with pytest.raises(FileNotFoundError, match="does not exist"):
            handler.load_stream(reader, dest=tmp_path / "missing" / "x.bin")
    assert not (tmp_path / "x.bin").exists()


@pytest.mark.parametrize("existing", [False, True])
def test_load_stream_integrity_error_leaves_dest_untouched(tmp_path: Path, existing: bool) -> None:
    content = os.urandom(2 * BLOCK_SIZE + 99)  # random: stored raw, header + payload
    store, digest = stored(tmp_path, content)
    tamper(store, digest)
    out = tmp_path / "out"
    out.mkdir()
    dest = out / "model.bin"
    if existing:
        dest.write_bytes(b"previous version")
    with store.open(digest) as reader, pytest.raises(IntegrityError) as info:
        get_handler("file").load_stream(reader, dest=dest)
    assert isinstance(info.value, ScribeStoreError)
    assert info.value.expected == digest
    if existing:
        assert dest.read_bytes() == b"previous version"
        assert leftovers(out) == ["model.bin"]
    else:
        assert not dest.exists()
        assert leftovers(out) == []


def test_load_stream_other_error_removes_temp_file(tmp_path: Path) -> None:
    class Failing(io.RawIOBase):
        def __init__(self) -> None:
            self.calls = 0

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:
            self.calls += 1
            if self.calls > 2:
                raise OSError("network gone")
            b[:3] = b"abc"
            return 3

    with pytest.raises(OSError, match="network gone"):
        get_handler("file").load_stream(Failing(), dest=tmp_path / "model.bin")
    assert leftovers(tmp_path) == []


# --- memory bound -----------------------------------------------------------------

_RSS_CHILD = (
    PEAK_RSS
    + """
import json, os, resource, sys
from scribestore import ObjectStore
from scribestore.artifacts import get_handler
root, digest, dest = (json.loads(a) for a in sys.argv[1:])
store = ObjectStore(root)
handler = get_handler("file")
base = peak_rss()
with store.open(digest) as reader:
    path = handler.load_stream(reader, dest=dest)
after = peak_rss()
print(json.dumps({"base": base, "after": after, "path": str(path)}))
"""
)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="peak RSS comes from Linux /proc")
def test_load_stream_1gib_keeps_rss_bounded(tmp_path: Path) -> None:
    size = 1 << 30
    src = tmp_path / "big.bin"
    block = os.urandom(1 << 20)
    with open(src, "wb") as f:
        for i in range(size >> 20):
            f.write(block[i % 256 :] + block[: i % 256])
    store = ObjectStore(tmp_path / "objects")
    digest = store.put(src)
    src.unlink()
    dest = tmp_path / "restored.bin"
    result = json.loads(run_child(_RSS_CHILD, store.url, digest, str(dest), timeout=600))
    grew = (result["after"] - result["base"]) * 1024
    assert grew < 100 << 20, f"load_stream grew peak RSS by {grew >> 20} MiB"
    assert result["path"] == str(dest)
    assert hash_file(dest) == (digest, size)
