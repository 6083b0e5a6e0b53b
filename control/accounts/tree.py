"""The agent tree: who is whose parent. Structure only; the records live in the directory.

A parent map plus a children index, so Direct is a lookup and All is a walk of the subtree
only. Every change is checked before it is made: the tree is never left with a missing
parent or a cycle, even for a moment, so readers on other threads never loop.
"""
from __future__ import annotations

from typing import Iterable

from .errors import AccountError
from .model import Category


class AccountTree:
    def __init__(self) -> None:
        self._parent: dict[str, str | None] = {}
        self._children: dict[str, set[str]] = {}

    @classmethod
    def build(cls, pairs: Iterable[tuple[str, str | None]]) -> AccountTree:
        """A tree from (account, parent) pairs in any order, as the store reads them."""
        tree = cls()
        parent = dict(pairs)
        for node, up in parent.items():
            if up is not None and up not in parent:
                raise AccountError("agent_id", f"account {node!r}: agent {up!r} does not exist")
        for node in parent:
            seen = {node}
            up = parent[node]
            while up is not None:
                if up in seen:
                    raise AccountError("agent_id", f"account {node!r} is in a cycle of agents")
                seen.add(up)
                up = parent[up]
        tree._parent = parent
        tree._children = {node: set() for node in parent}
        for node, up in parent.items():
            if up is not None:
                tree._children[up].add(node)
        return tree

    def __contains__(self, node: object) -> bool:
        return node in self._parent

    def __len__(self) -> int:
        return len(self._parent)

    def nodes(self) -> list[str]:
        return sorted(self._parent)

    def parent(self, node: str) -> str | None:
        return self._parent[node]

    def children(self, node: str) -> list[str]:
        return sorted(self._children[node])

    def descendants(self, node: str) -> list[str]:
        """The whole subtree below ``node`` (not ``node`` itself), parents before children."""
        found: list[str] = []
        level = [node]
        while level:
            level = [child for up in level for child in sorted(self._children[up])]
            found.extend(level)
        return found

    def chain(self, node: str) -> list[str]:
        """``node`` then its agent, its agent's agent, ... up to a root."""
        chain = [node]
        up = self._parent[node]
        while up is not None:
            chain.append(up)
            up = self._parent[up]
        return chain

    def is_within(self, node: str, root: str) -> bool:
        """True when ``node`` is ``root`` or lies anywhere below it."""
        return node in self._parent and root in self.chain(node)

    def category(self, node: str) -> Category:
        return Category.AGENT if self._children[node] else Category.ACCOUNT

    def check_parent(self, node: str, parent: str | None) -> None:
        """Refuse a parent that does not exist or that would close a cycle."""
        if parent is None:
            return
        if parent not in self._parent:
            raise AccountError("agent_id", f"agent {parent!r} does not exist")
        if node in self._parent and node in self.chain(parent):
            raise AccountError("agent_id", f"{parent!r} is {node!r} or one of its sub-accounts; "
                                           "the agent tree would have a cycle")

    def add(self, node: str, parent: str | None) -> None:
        if node in self._parent:
            raise AccountError("id", f"account {node!r} already exists")
        self.check_parent(node, parent)
        self._children[node] = set()
        if parent is not None:
            self._children[parent].add(node)
        self._parent[node] = parent

    def move(self, node: str, parent: str | None) -> None:
        self.check_parent(node, parent)
        old = self._parent[node]
        if old == parent:
            return
        # The children index first: the parent map (what chain() reads) changes last, in one step.
        if parent is not None:
            self._children[parent].add(node)
        if old is not None:
            self._children[old].discard(node)
        self._parent[node] = parent

    def remove(self, node: str) -> None:
        if self._children[node]:
            raise AccountError("id", f"account {node!r} has sub-accounts; "
                                     "move or delete them first")
        up = self._parent.pop(node)
        del self._children[node]
        if up is not None:
            self._children[up].discard(node)
