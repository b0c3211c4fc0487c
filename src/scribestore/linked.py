"""lazyscribe's sorted linked list (``Node``, ``LinkedList``, ``merge``), under its module name.

Kept for code that imports it; scribestore's own merges do not use it.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["LinkedList", "Node", "merge"]


@attrs.define
class Node:
    """One node: its ``data`` and the ``next`` node (None at the end)."""

    data: Any = None
    next: Node | None = None

    def to_list(self) -> list[Any]:
        """The data of this node and every node after it, in order."""
        out: list[Any] = []
        node: Node | None = self
        while node is not None:
            out.append(node.data)
            node = node.next
        return out


@attrs.define
class LinkedList:
    """A singly linked list starting at ``head`` (None: empty)."""

    head: Node | None = None

    def append(self, data: Any) -> None:
        """Add ``data`` in a new node at the end."""
        node = Node(data=data)
        if self.head is None:
            self.head = node
            return
        last = self.head
        while last.next is not None:
            last = last.next
        last.next = node

    @staticmethod
    def from_list(data: list[Any]) -> LinkedList:
        """A linked list of ``data``, sorted."""
        out = LinkedList()
        for value in sorted(data):
            out.append(value)
        return out


def merge(list1: Node | None, list2: Node | None) -> Node | None:
    """Merge two sorted chains into one sorted chain (relinking their nodes);
    of equal data, the node of ``list2`` comes first."""
    start = Node()
    tail = start
    while list1 is not None and list2 is not None:
        if list1.data < list2.data:
            tail.next, list1 = list1, list1.next
        else:
            tail.next, list2 = list2, list2.next
        tail = tail.next
    tail.next = list1 if list1 is not None else list2
    return start.next
