"""The subject trie that routes every message, with a cache of recent matches.

Subscriptions are stored by the tokens of their pattern; ``*`` and ``>`` nodes
are kept apart from literal children so that matching a subject walks at most
three branches per token. Matching results are cached per subject: publishers
mostly reuse a few subjects, so the common case is one dict lookup.
"""

from __future__ import annotations

from typing import Generic, NamedTuple, TypeVar

from minga.broker._subjects import tokens_match

__all__ = ["Match", "SubjectTrie"]

T = TypeVar("T")

_STAR = b"*"
_FULL = b">"


class Match(NamedTuple, Generic[T]):
    """What a subject matches: every plain subscription, and each queue group's members."""

    plain: tuple[T, ...]
    groups: tuple[tuple[T, ...], ...]


class _Node(Generic[T]):
    __slots__ = ("children", "full", "plain", "queues", "star")

    def __init__(self) -> None:
        self.children: dict[bytes, _Node[T]] = {}
        self.star: _Node[T] | None = None
        self.full: _Node[T] | None = None
        # dicts used as insertion-ordered sets
        self.plain: dict[T, None] = {}
        self.queues: dict[bytes, dict[T, None]] = {}

    def empty(self) -> bool:
        return not (self.children or self.star or self.full or self.plain or self.queues)


class SubjectTrie(Generic[T]):
    """Subscriptions indexed by subject pattern (``bytes``), matched against literal subjects.

    Items must be hashable; the same item may be inserted under several patterns.
    ``cache_size`` bounds the number of cached match results.
    """

    def __init__(self, cache_size: int = 4096) -> None:
        self._root: _Node[T] = _Node()
        self._cache: dict[bytes, Match[T]] = {}
        self._cache_size = cache_size
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def insert(self, pattern: bytes, item: T, queue: bytes | None = None) -> None:
        node = self._root
        for token in pattern.split(b"."):
            if token == _STAR:
                if node.star is None:
                    node.star = _Node()
                node = node.star
            elif token == _FULL:
                if node.full is None:
                    node.full = _Node()
                node = node.full
            else:
                child = node.children.get(token)
                if child is None:
                    child = node.children[token] = _Node()
                node = child
        if queue is None:
            if item in node.plain:
                return
            node.plain[item] = None
        else:
            members = node.queues.setdefault(queue, {})
            if item in members:
                return
            members[item] = None
        self._count += 1
        self._invalidate(pattern)

    def remove(self, pattern: bytes, item: T, queue: bytes | None = None) -> bool:
        """Remove ``item`` from ``pattern``; False when it was not there."""
        path: list[tuple[_Node[T], bytes]] = []
        node: _Node[T] | None = self._root
        for token in pattern.split(b"."):
            assert node is not None
            path.append((node, token))
            if token == _STAR:
                node = node.star
            elif token == _FULL:
                node = node.full
            else:
                node = node.children.get(token)
            if node is None:
                return False
        assert node is not None
        if queue is None:
            if node.plain.pop(item, _MISSING) is _MISSING:
                return False
        else:
            members = node.queues.get(queue)
            if members is None or members.pop(item, _MISSING) is _MISSING:
                return False
            if not members:
                del node.queues[queue]
        self._count -= 1
        # prune the branch that became empty, from the leaf up
        for parent, token in reversed(path):
            if not node.empty():
                break
            if token == _STAR:
                parent.star = None
            elif token == _FULL:
                parent.full = None
            else:
                del parent.children[token]
            node = parent
        self._invalidate(pattern)
        return True

    def match(self, subject: bytes) -> Match[T]:
        """Every subscription whose pattern matches the literal ``subject``."""
        hit = self._cache.get(subject)
        if hit is not None:
            return hit
        plain: list[T] = []
        groups: dict[bytes, list[T]] = {}
        _collect(self._root, subject.split(b"."), 0, plain, groups)
        result: Match[T] = Match(tuple(plain), tuple(tuple(m) for m in groups.values()))
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[subject] = result
        return result

    def _invalidate(self, pattern: bytes) -> None:
        cache = self._cache
        if not cache:
            return
        tokens = pattern.split(b".")
        if _STAR not in tokens and _FULL not in tokens:
            cache.pop(pattern, None)
        elif len(cache) <= 256:
            for subject in [s for s in cache if tokens_match(tokens, s.split(b"."))]:
                del cache[subject]
        else:
            cache.clear()


_MISSING = object()


def _collect(node: _Node[T], tokens: list[bytes], i: int, plain: list[T], groups: dict[bytes, list[T]]) -> None:
    if i == len(tokens):
        _add(node, plain, groups)
        return
    if node.full is not None:
        _add(node.full, plain, groups)
    if node.star is not None:
        _collect(node.star, tokens, i + 1, plain, groups)
    child = node.children.get(tokens[i])
    if child is not None:
        _collect(child, tokens, i + 1, plain, groups)


def _add(node: _Node[T], plain: list[T], groups: dict[bytes, list[T]]) -> None:
    if node.plain:
        plain.extend(node.plain)
    for name, members in node.queues.items():
        groups.setdefault(name, []).extend(members)
