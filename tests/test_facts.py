"""The grammar of number facts (crossmodal/facts.py): every sentence true, checked by arithmetic done here;
the corpus deterministic and free of held-out facts."""

import re
from collections import Counter

import pytest
import torch

from crossmodal.data import caption_for
from crossmodal.data.facts import (
    FAMILIES,
    all_facts,
    completions,
    continuations,
    corpus,
    family_facts,
    held_out_facts,
    word,
)

# our own reading of the words, independent of the module's table
VALUE = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen".split())}
N = r"([a-z]+)"
PATTERNS = {
    "after": re.compile(rf"the number after {N} is {N}\."),
    "before": re.compile(rf"the number before {N} is {N}\."),
    "plus": re.compile(rf"{N} plus {N} is {N}\."),
    "parity": re.compile(rf"{N} is (odd|even)\."),
    "caption": re.compile(rf"This is the number {N}\. (?:The number (after|before) it is {N}|It is (odd|even))\."),
}


def is_true(family, m):
    if family == "after":
        return VALUE[m[2]] == VALUE[m[1]] + 1
    if family == "before":
        return VALUE[m[2]] == VALUE[m[1]] - 1
    if family == "plus":
        return VALUE[m[1]] <= 9 and VALUE[m[2]] <= 9 and VALUE[m[3]] == VALUE[m[1]] + VALUE[m[2]]
    if family == "parity":
        return m[2] == ("odd" if VALUE[m[1]] % 2 else "even")
    d = VALUE[m[1]]  # caption
    if m[4]:
        return d <= 9 and m[4] == ("odd" if d % 2 else "even")
    return d <= 9 and VALUE[m[3]] == (d + 1 if m[2] == "after" else d - 1)


def test_every_fact_is_true_and_in_exactly_one_family():
    facts = all_facts()
    assert len(facts) == len(set(facts)) == 18 + 18 + 100 + 19 + 29
    for family in FAMILIES:
        for fact in family_facts(family):
            matches = [f for f, p in PATTERNS.items() if p.fullmatch(fact)]
            assert matches == [family], fact
            assert is_true(family, PATTERNS[family].fullmatch(fact)), fact
    sums = {(VALUE[m[1]], VALUE[m[2]]) for m in map(PATTERNS["plus"].fullmatch, family_facts("plus"))}
    assert sums == {(a, b) for a in range(10) for b in range(10)}  # every sum of two digits, each once


def test_the_caption_family_starts_with_the_captioners_own_caption():
    for d in range(10):
        sentences = completions(caption_for(d))
        assert len(sentences) == (2 if d == 0 else 3)  # nothing before zero
        assert all(s.startswith(caption_for(d) + " ") for s in sentences)
    assert continuations(7) == {"after": "The number after it is eight.", "before": "The number before it is six.",
                                "parity": "It is odd."}
    assert continuations(9)["after"] == "The number after it is ten."


def test_completions_list_the_true_endings():
    assert completions("seven plus one is") == ["seven plus one is eight."]
    assert completions("nine plus nine is") == ["nine plus nine is eighteen."]
    assert completions("the number after seventeen is") == ["the number after seventeen is eighteen."]
    assert completions("the number after eighteen is") == []  # the grammar stops at eighteen
    assert set(completions("seven is")) == {"seven is odd."}


def test_the_corpus_is_deterministic_for_a_seed_and_never_holds_a_held_out_fact():
    a, b = corpus(3000, torch.Generator().manual_seed(0)), corpus(3000, torch.Generator().manual_seed(0))
    assert a == b and a != corpus(3000, torch.Generator().manual_seed(1))
    held = set(held_out_facts())
    assert len(held) == 8 + 6 and held <= set(all_facts())
    assert not held & set(a)
    assert set(a) == set(all_facts()) - held  # 3,000 draws reach every other fact
    families = Counter(next(f for f, p in PATTERNS.items() if p.fullmatch(s)) for s in a)
    assert all(abs(n / len(a) - 1 / len(FAMILIES)) < 0.03 for n in families.values())  # families drawn evenly


def test_the_held_out_facts_are_of_two_kinds():
    held = held_out_facts()
    assert sum(bool(PATTERNS["plus"].fullmatch(s)) for s in held) == 8
    captioned = {VALUE[m[1]] for s in held if (m := PATTERNS["caption"].fullmatch(s))}
    assert captioned == {3, 8}


def test_bad_numbers_are_refused():
    with pytest.raises(ValueError, match="0 … 18"):
        word(19)
    with pytest.raises(ValueError, match="digit"):
        continuations(10)
    with pytest.raises(ValueError, match="family must be one of"):
        family_facts("minus")
