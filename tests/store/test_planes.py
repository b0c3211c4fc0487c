"""Byte planes: the C accelerator and the numpy fallback give the same bytes."""

from __future__ import annotations

import shutil
import sysconfig

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scribestore.store import planes


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=4096), k=st.sampled_from([2, 4]))
def test_split_merge_round_trip_and_layout(data: bytes, k: int) -> None:
    src = memoryview(data[: len(data) - len(data) % k])
    n = len(src) // k
    top, rest = planes.split(src, k)
    cells = np.frombuffer(src, dtype=np.uint8).reshape(n, k)
    # The documented layout (FORMAT 3.4), spelled out independently.
    assert bytes(top) == cells[:, k - 1].tobytes()
    expected_rest = (
        cells[:, :2].tobytes() + cells[:, 2].tobytes() if k == 4 else cells[:, 0].tobytes()
    )
    assert bytes(rest) == expected_rest
    out = bytearray(len(src))
    planes.merge(memoryview(out), k, top, rest)
    assert out == src


@pytest.mark.skipif(not planes.NATIVE, reason="the C accelerator is not built here")
@settings(max_examples=100, deadline=None)
@given(data=st.binary(min_size=0, max_size=2048), k=st.sampled_from([2, 4]))
def test_native_and_numpy_agree(data: bytes, k: int) -> None:
    src = memoryview(data[: len(data) - len(data) % k])
    n = len(src) // k
    top_c, rest_c = np.empty(n, np.uint8), np.empty((k - 1) * n, np.uint8)
    top_np, rest_np = np.empty(n, np.uint8), np.empty((k - 1) * n, np.uint8)
    assert planes.native is not None
    planes.native.split(src, k, top_c, rest_c)
    planes.split_numpy(src, k, top_np, rest_np)
    assert top_c.tobytes() == top_np.tobytes() and rest_c.tobytes() == rest_np.tobytes()
    out_c, out_np = bytearray(len(src)), bytearray(len(src))
    planes.native.merge(out_c, k, top_c, rest_c)
    planes.merge_numpy(memoryview(out_np), k, top_np.data, rest_np.data)
    assert out_c == out_np == src


def test_native_is_built_where_a_compiler_is() -> None:
    # make test installs with a C compiler present: a silently missing
    # accelerator would only show up as a slow benchmark.
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if not shutil.which(compiler):
        pytest.skip("no C compiler on this machine")
    assert planes.NATIVE


@pytest.mark.parametrize("k", [2, 4])
def test_bad_lengths_raise_value_error(k: int) -> None:
    with pytest.raises(ValueError):
        planes.split(memoryview(b"abc"), 4)
    with pytest.raises(ValueError):
        planes.split(memoryview(b"abcd"), 3)
    top, rest = planes.split(memoryview(bytes(8)), k)
    with pytest.raises(ValueError):
        planes.merge(memoryview(bytearray(8)), k, top[:-1], rest)
    with pytest.raises(ValueError):
        planes.merge(memoryview(bytearray(8)), k, top, rest[1:])
    if planes.native is not None:
        with pytest.raises(ValueError):
            planes.native.merge(bytearray(8), k, bytes(1), bytes(1))
        with pytest.raises(ValueError):
            planes.native.split(bytes(8), 3, bytearray(2), bytearray(6))


# --- packed top planes (blob codec 4) ----------------------------------------------

top_planes = st.one_of(
    st.binary(max_size=3000),  # any bytes: many escapes
    st.lists(st.sampled_from([0x3C, 0xBC, 0x3B, 0xBB, 0x3D, 0x00]), max_size=3000).map(bytes),
)


@settings(max_examples=200, deadline=None)
@given(top=top_planes)
def test_pack_top_round_trips(top: bytes) -> None:
    table, codes, escapes = planes.pack_top(memoryview(top))
    assert len(table) == planes.TABLE and len(codes) == (len(top) + 1) // 2
    assert len(escapes) == sum(1 for b in top if b not in bytes(table))
    out = bytearray(len(top))
    planes.unpack_top(memoryview(out), table, codes, escapes)
    assert out == top


@pytest.mark.skipif(not planes.NATIVE, reason="the C accelerator is not built here")
@settings(max_examples=200, deadline=None)
@given(top=top_planes)
def test_pack_top_native_and_numpy_agree(top: bytes) -> None:
    n = len(top)
    native = planes.pack_top(memoryview(top))
    table, codes, esc = (
        np.empty(15, np.uint8),
        np.empty((n + 1) // 2, np.uint8),
        np.empty(n, np.uint8),
    )
    count = planes.pack_numpy(np.frombuffer(top, dtype=np.uint8), table, codes, esc)
    assert [bytes(x) for x in native] == [table.tobytes(), codes.tobytes(), esc[:count].tobytes()]
    out = bytearray(n)
    planes.unpack_numpy(memoryview(out), *native)
    assert out == top


@pytest.mark.parametrize("unpack", ["native", "numpy"])
def test_unpack_refuses_codes_and_escapes_that_disagree(unpack: str) -> None:
    if unpack == "native" and not planes.NATIVE:
        pytest.skip("the C accelerator is not built here")
    fn = planes.unpack_top if unpack == "native" else planes.unpack_numpy
    top = bytes([1, 2, 3, 200, 201])  # all five are in the table: no escapes
    table, codes, escapes = planes.pack_top(memoryview(top))
    out = memoryview(bytearray(5))
    with pytest.raises(ValueError):
        fn(out, table, codes, memoryview(b"\x07"))  # an escape no code asks for
    bad = bytearray(codes)
    bad[0] |= 0x0F  # element 0 now asks for an escape that is not there
    with pytest.raises(ValueError):
        fn(out, table, memoryview(bytes(bad)), escapes)
    bad = bytearray(codes)
    bad[-1] |= 0xF0  # the unused high nibble of an odd count must be zero
    with pytest.raises(ValueError):
        fn(out, table, memoryview(bytes(bad)), escapes)


@pytest.mark.parametrize("native", [True, False], ids=["native", "numpy"])
def test_copy(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    if native and not planes.NATIVE:
        pytest.skip("the C accelerator is not built here")
    if not native:
        monkeypatch.setattr(planes, "native", None)
    dst = bytearray(10)
    planes.copy(memoryview(dst)[2:7], memoryview(b"abcde"))
    assert dst == b"\0\0abcde\0\0\0"
    with pytest.raises(ValueError):
        planes.copy(memoryview(dst), memoryview(b"abc"))
