"""Subject validation, matching and the routing trie."""

from __future__ import annotations

import itertools

import pytest

from minga.broker import SubjectTrie, is_literal_subject, is_valid_subject, subject_matches


@pytest.mark.parametrize(
    ("subject", "valid", "literal"),
    [
        ("foo", True, True),
        ("foo.bar.baz", True, True),
        ("foo.*", True, False),
        ("foo.>", True, False),
        (">", True, False),
        ("*.*", True, False),
        ("foo*", True, True),
        ("foo.>.bar", False, False),
        ("", False, False),
        ("foo..bar", False, False),
        (".foo", False, False),
        ("foo.", False, False),
        ("foo bar", False, False),
        ("foo.\t", False, False),
        ("foo\nbar", False, False),
    ],
)
def test_validation(subject: str, valid: bool, literal: bool) -> None:
    assert is_valid_subject(subject) is valid
    assert is_literal_subject(subject) is literal


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        ("foo", "foo", True),
        ("foo", "foo.bar", False),
        ("foo.*", "foo.bar", True),
        ("foo.*", "foo", False),
        ("foo.*", "foo.bar.baz", False),
        ("foo.>", "foo.bar.baz", True),
        ("foo.>", "foo", False),
        (">", "anything.at.all", True),
        ("*.b.*", "a.b.c", True),
        ("*.b.*", "a.x.c", False),
        ("a.*.>", "a.b", False),
        ("a.*.>", "a.b.c.d", True),
    ],
)
def test_subject_matches(pattern: str, subject: str, expected: bool) -> None:
    assert subject_matches(pattern, subject) is expected


PATTERNS = ["a", "a.b", "a.*", "a.>", "*.b", ">", "*", "a.b.c", "a.*.c", "*.*.*", "a.b.>", "x.y"]
SUBJECTS = ["a", "b", "a.b", "a.c", "b.b", "a.b.c", "a.x.c", "a.b.c.d", "x.y", "x.y.z"]


def test_trie_agrees_with_subject_matches() -> None:
    trie: SubjectTrie[str] = SubjectTrie()
    for pattern in PATTERNS:
        trie.insert(pattern.encode(), pattern)
    assert len(trie) == len(PATTERNS)
    for subject in SUBJECTS:
        expected = sorted(p for p in PATTERNS if subject_matches(p, subject))
        assert sorted(trie.match(subject.encode()).plain) == expected, subject


def test_cache_stays_correct_across_inserts_and_removes() -> None:
    trie: SubjectTrie[str] = SubjectTrie()
    live: set[str] = set()
    for step, pattern in enumerate(itertools.chain(PATTERNS, reversed(PATTERNS), PATTERNS[::2])):
        for subject in SUBJECTS:  # fill the cache before every change
            trie.match(subject.encode())
        if pattern in live and step % 3:
            assert trie.remove(pattern.encode(), pattern)
            live.discard(pattern)
        else:
            trie.insert(pattern.encode(), pattern)
            live.add(pattern)
        for subject in SUBJECTS:
            expected = sorted(p for p in live if subject_matches(p, subject))
            assert sorted(trie.match(subject.encode()).plain) == expected, (step, pattern, subject)


def test_queue_groups_are_grouped_by_name() -> None:
    trie: SubjectTrie[str] = SubjectTrie()
    trie.insert(b"work.*", "w1", b"workers")
    trie.insert(b"work.>", "w2", b"workers")
    trie.insert(b"work.a", "a1", b"auditors")
    trie.insert(b"work.a", "plain")
    match = trie.match(b"work.a")
    assert match.plain == ("plain",)
    assert sorted(sorted(g) for g in match.groups) == [["a1"], ["w1", "w2"]]
    assert trie.remove(b"work.*", "w1", b"workers")
    assert not trie.remove(b"work.*", "w1", b"workers")
    assert sorted(sorted(g) for g in trie.match(b"work.a").groups) == [["a1"], ["w2"]]


def test_removing_prunes_and_empties() -> None:
    trie: SubjectTrie[int] = SubjectTrie()
    trie.insert(b"a.b.c", 1)
    trie.insert(b"a.*.c", 2)
    trie.insert(b"a.>", 3)
    assert not trie.remove(b"a.b", 1)
    assert trie.remove(b"a.b.c", 1) and trie.remove(b"a.*.c", 2) and trie.remove(b"a.>", 3)
    assert len(trie) == 0
    assert trie.match(b"a.b.c") == ((), ())
    assert trie._root.empty()


def test_cache_is_bounded() -> None:
    trie: SubjectTrie[int] = SubjectTrie(cache_size=8)
    trie.insert(b">", 1)
    for i in range(100):
        assert trie.match(b"s.%d" % i).plain == (1,)
    assert len(trie._cache) <= 8
