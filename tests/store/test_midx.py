"""The merged index file format: every entry found, damage refused (FORMAT 3.6)."""

from __future__ import annotations

import struct

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scribestore.exception import CorruptPackError, UnsupportedFormatError
from scribestore.store.midx import MergedIndex, Table, digest_array, encode_merged, new_merged_id
from scribestore.store.packs import ChunkLocation

MID = "0" * 32

# Digests from a small set, some sharing their first 8 bytes: duplicates and
# prefix collisions are what a binary search gets wrong.
_PREFIXES = [bytes(8), b"\xff" * 8, b"abcdefgh"]
digests = st.builds(
    lambda prefix, rest: prefix + rest,
    st.sampled_from(_PREFIXES) | st.binary(min_size=8, max_size=8),
    st.sampled_from([bytes(24), b"\x01" * 24]) | st.binary(min_size=24, max_size=24),
)


@st.composite
def tables(draw: st.DrawFn) -> dict[str, Table]:
    out: dict[str, Table] = {}
    for n in range(draw(st.integers(0, 4))):
        pack = f"{n:032x}"
        entries = []
        for digest in draw(st.lists(digests, max_size=12)):
            offset = draw(st.integers(8, 1000))
            length = draw(st.integers(1, 100))
            entries.append((digest, ChunkLocation(pack, offset, length, draw(st.integers(1, 9)))))
        out[pack] = (2000, entries)
    return out


def _expected(data: dict[str, Table]) -> dict[bytes, list[ChunkLocation]]:
    found: dict[bytes, list[ChunkLocation]] = {}
    for _, entries in data.values():
        for digest, location in entries:
            found.setdefault(digest, []).append(location)
    return found


@settings(max_examples=150, deadline=None)
@given(tables(), st.lists(digests, max_size=5))
def test_every_entry_is_found_and_nothing_else(data: dict[str, Table], others: list[bytes]) -> None:
    merged = MergedIndex(MID, encode_merged(data))
    expected = _expected(data)
    assert len(merged) == sum(len(e) for _, e in data.values())
    assert sorted(merged.packs) == sorted(data)
    asked = list(expected) + others
    firsts = merged.first(asked)
    assert merged.search(digest_array(asked)).tolist() == firsts
    kept = set(merged.packs[::2])
    held = merged.live(firsts, merged.pack_mask(kept)).tolist()
    assert held == [f >= 0 and merged.at([f])[0].pack in kept for f in firsts]
    for digest, first in zip(asked, firsts, strict=True):
        want = sorted(expected.get(digest, []))
        assert sorted(merged.find(digest)) == want
        assert (first >= 0) == bool(want)
        if want:
            assert sorted(merged.locations_from(first, digest)) == want
    for pack, (total, entries) in merged.tables(data).items():
        assert total == data[pack][0]
        assert sorted(entries) == sorted(data[pack][1])
    assert sorted(merged.items()) == sorted(e for _, es in data.values() for e in es)


def _sample() -> bytes:
    pack = "ab" * 16
    entries = [
        (blake3.blake3(bytes([n])).digest(), ChunkLocation(pack, 8 + n, 1, 1)) for n in range(5)
    ]
    return encode_merged({pack: (100, entries)})


def _resealed(body: bytes) -> bytes:
    return body + blake3.blake3(body).digest()


@pytest.mark.parametrize("lengths", [[31], [32, 33], [31, 33], [0]])
def test_digests_of_the_wrong_length_are_refused(lengths: list[int]) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        digest_array([bytes(n) for n in lengths])


def test_a_changed_byte_fails_the_checksum() -> None:
    data = bytearray(_sample())
    for at in (0, 12, len(data) // 2, len(data) - 1):
        damaged = bytearray(data)
        damaged[at] ^= 1
        with pytest.raises(CorruptPackError):
            MergedIndex(MID, bytes(damaged))


@pytest.mark.parametrize("cut", [0, 10, 40, 1])
def test_a_truncated_file_is_refused(cut: int) -> None:
    data = _sample()
    with pytest.raises(CorruptPackError, match=r"merged index packs/0+\.midx"):
        MergedIndex(MID, data[:cut] if cut != 1 else data[:-1])


@pytest.mark.parametrize("at", [4, 5], ids=["merged-format", "pack-format"])
def test_a_newer_format_is_unsupported_not_corrupt(at: int) -> None:
    data = bytearray(_sample())
    data[at] = 9
    with pytest.raises(UnsupportedFormatError, match="upgrade scribestore"):
        MergedIndex(MID, bytes(_resealed(bytes(data[:-32]))))


def test_an_offset_that_would_wrap_around_is_refused() -> None:
    data = bytearray(_sample()[:-32])
    at, count = _entry_columns(bytes(data))
    offsets, lengths = at + 4 * count, at + 12 * count
    data[offsets : offsets + 8] = (2**64 - 1).to_bytes(8, "little")
    data[lengths : lengths + 4] = (2).to_bytes(4, "little")
    with pytest.raises(CorruptPackError, match="past the end"):
        MergedIndex(MID, _resealed(bytes(data)))


def test_digests_sharing_a_prefix_must_be_in_order_too() -> None:
    """Sorted by the first 8 bytes only is not sorted: copies of a digest must be adjacent."""
    pack = "cd" * 16
    a, b = b"p" * 8 + b"a" * 24, b"p" * 8 + b"b" * 24
    good = encode_merged({pack: (100, [(d, ChunkLocation(pack, 8, 1, 1)) for d in (a, b, a)])})
    assert len(MergedIndex(MID, good).find(a)) == 2
    body = bytearray(good[:-32])
    at, _ = _entry_columns(bytes(body))
    first = at - 32 * 3
    body[first : first + 96] = a + b + a  # a, b, a: the prefixes are sorted, the digests not
    with pytest.raises(CorruptPackError, match="not sorted"):
        MergedIndex(MID, _resealed(bytes(body)))


def _entry_columns(data: bytes) -> tuple[int, int]:
    (_, _, _, packs, count) = struct.unpack_from("<4sBB2xIQ", data)
    return 20 + packs * 24 + 32 * count, count


@pytest.mark.parametrize(
    ("column", "value", "why"),
    [(0, 7, "does not list"), (1, 100, "past the end"), (1, 0, "past the end"), (2, 0, "empty")],
)
def test_a_sealed_but_inconsistent_file_is_refused(column: int, value: int, why: str) -> None:
    """A checksum proves only that the writer wrote it: the entries are checked too."""
    data = bytearray(_sample()[:-32])
    at, count = _entry_columns(bytes(data))
    # columns: pack numbers (u4), offsets (u8), lengths (u4), sizes (u4)
    starts = [at, at + 4 * count, at + 12 * count, at + 16 * count]
    width = 8 if column == 1 else 4
    data[starts[column] : starts[column] + width] = value.to_bytes(width, "little")
    with pytest.raises(CorruptPackError, match=why):
        MergedIndex(MID, _resealed(bytes(data)))


def test_unsorted_entries_are_refused() -> None:
    data = bytearray(_sample()[:-32])
    at, _ = _entry_columns(bytes(data))
    first = at - 32 * 5
    data[first : first + 8] = b"\xff" * 8
    with pytest.raises(CorruptPackError, match="not sorted"):
        MergedIndex(MID, _resealed(bytes(data)))


def test_ids_sort_by_age() -> None:
    first = new_merged_id()
    second = new_merged_id()
    assert len(first) == 32 and int(first, 16) >= 0
    assert first < second
