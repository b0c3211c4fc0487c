"""lazyscribe's sorted linked list, under ``scribestore.linked``."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from scribestore.linked import LinkedList, Node, merge


def test_append_and_to_list() -> None:
    chain = LinkedList()
    assert chain.head is None
    for value in (3, 1, 2):
        chain.append(value)
    assert chain.head is not None and chain.head.to_list() == [3, 1, 2]
    assert Node(data=5).to_list() == [5]


@given(st.lists(st.integers()), st.lists(st.integers()))
def test_merge_of_sorted_lists_is_sorted(first: list[int], second: list[int]) -> None:
    a = LinkedList.from_list(first).head
    b = LinkedList.from_list(second).head
    merged = merge(a, b)
    assert (merged.to_list() if merged is not None else []) == sorted(first + second)
