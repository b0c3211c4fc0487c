"""scribestore.store.layout: every on-disk name is made and parsed in one place."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scribestore import InvalidDigestError
from scribestore.store.layout import (
    condemned_path,
    index_path,
    merged_index_path,
    object_path,
    orphan_packs,
    pack_names,
    pack_path,
    parse_pack_name,
)

PACK = "0123456789abcdef0123456789abcdef"
DIGEST = "ab" * 32


def test_object_path_validates_the_digest_first() -> None:
    assert object_path(DIGEST) == f"ab/{DIGEST}"
    for bad in ("", "AB" * 32, "ab" * 31, "../" + "a" * 61, DIGEST + "\n", 42):
        with pytest.raises(InvalidDigestError):
            object_path(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("make", [pack_path, index_path, condemned_path])
def test_pack_names_validate_the_id(make) -> None:  # type: ignore[no-untyped-def]
    assert make(PACK).startswith(f"packs/{PACK}.")
    for bad in ("", "../x", PACK.upper(), PACK + "0", "x" * 32):
        with pytest.raises(ValueError):
            make(bad)


@pytest.mark.parametrize(
    ("make", "kind"), [(pack_path, "pack"), (index_path, "idx"), (condemned_path, "condemned")]
)
def test_parse_pack_name_reads_what_the_names_make(make, kind: str) -> None:  # type: ignore[no-untyped-def]
    found = parse_pack_name(make(PACK))
    assert found is not None and (found.pack_id, found.kind) == (PACK, kind)


@given(st.text(max_size=80))
def test_parse_pack_name_recognises_only_well_formed_names(name: str) -> None:
    found = parse_pack_name(name)
    if found is not None:
        # Anything recognised maps back to exactly one name of the layout.
        assert _MAKE[found.kind](found.pack_id).rsplit("/", 1)[-1] == name.rsplit("/", 1)[-1]


_MAKE = {
    "pack": pack_path,
    "idx": index_path,
    "condemned": condemned_path,
    "midx": merged_index_path,
}
_IDS = st.text("0123456789abcdefA", min_size=31, max_size=33)
_NAMES = st.one_of(
    st.text(max_size=60),
    st.builds(lambda i, k: f"packs/{i}.{k}", _IDS, st.sampled_from([*_MAKE, "tmp", "idx.tmp"])),
)


@given(st.lists(_NAMES, max_size=20))
def test_pack_names_groups_a_listing_as_parse_pack_name_reads_each(names: list[str]) -> None:
    expected: dict[str, set[str]] = {kind: set() for kind in _MAKE}
    for found in filter(None, map(parse_pack_name, names)):
        expected[found.kind].add(found.pack_id)
    assert pack_names(tuple(names))._asdict() == expected


def test_pack_names_reads_every_kind_the_layout_makes() -> None:
    names = [make(PACK) for make in _MAKE.values()]
    assert pack_names(tuple(names))._asdict() == {kind: {PACK} for kind in _MAKE}


@pytest.mark.parametrize(
    "name",
    [
        f"packs/.tmp-{PACK}.pack",
        f"packs/{PACK}.pack.tmp",
        f"packs/{PACK}",
        "packs/x.idx",
        f"packs/{PACK.upper()}.idx",
        f"packs/{PACK}.lock",
    ],
)
def test_temp_and_stray_names_are_not_packs(name: str) -> None:
    assert parse_pack_name(name) is None


def test_orphan_packs_are_packs_or_markers_without_an_index() -> None:
    other = "f" * 32
    names = [
        pack_path(PACK),
        index_path(PACK),
        pack_path(other),
        condemned_path(other),
        f"packs/.tmp-{other}.idx",
        "packs/junk",
    ]
    assert orphan_packs(names) == [other]
