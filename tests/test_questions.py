"""Questions about numbers (questions.py): exact answers, balanced kinds and yes/no, and splits that hold out what
they say they hold out."""

from collections import Counter

import pytest
import torch

from crossmodal.numbers import Draws
from crossmodal.questions import (
    HELD_OUT_PHRASING,
    KINDS,
    PHRASINGS,
    answer,
    ask,
    ask_each,
    vocabulary,
)


def many_numbers(count, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 5, (count,), generator=g).tolist()
    return ["".join(str(d) for d in torch.randint(0, 10, (n,), generator=g).tolist()) for n in lengths]


@pytest.mark.parametrize("kind, number, detail, expected", [
    ("read", "2026", {}, "2026"), ("count", "2026", {}, "4"), ("count", "7", {}, "1"),
    ("position", "2026", {"ordinal": "second"}, "0"), ("position", "2026", {"ordinal": "last"}, "6"),
    ("position", "5", {"ordinal": "first"}, "5"), ("contains", "2026", {"digit": "7"}, "no"),
    ("contains", "2026", {"digit": "2"}, "yes"), ("largest", "2026", {}, "6"), ("sum", "2026", {}, "10"),
    ("sum", "99", {}, "18"), ("backwards", "2026", {}, "6202"), ("backwards", "0", {}, "0"),
])
def test_answers_are_exact(kind, number, detail, expected):
    assert answer(kind, number, **detail) == expected


def test_kinds_are_balanced_and_repeat_with_the_seed():
    numbers = many_numbers(700)
    questions = ask_each(numbers, torch.Generator().manual_seed(1))
    assert Counter(q.kind for q in questions) == {kind: 100 for kind in KINDS}
    assert questions == ask_each(numbers, torch.Generator().manual_seed(1))
    assert questions != ask_each(numbers, torch.Generator().manual_seed(2))


def test_yes_and_no_equally_often():
    questions = ask_each(many_numbers(2000), torch.Generator().manual_seed(3), kinds=("contains",))
    share = sum(q.answer == "yes" for q in questions) / len(questions)
    assert 0.45 < share < 0.55, share


def test_each_answer_is_what_the_question_asks():
    numbers = many_numbers(1400, seed=4)
    for number, q in zip(numbers, ask_each(numbers, torch.Generator().manual_seed(4))):
        if q.kind == "position":
            ordinal = next(o for o in ("first", "second", "third", "fourth", "last") if o in q.text)
            assert q.answer == answer("position", number, ordinal=ordinal)
            assert ordinal == "last" or ["first", "second", "third", "fourth"].index(ordinal) < len(number)
        elif q.kind == "contains":
            digit = next(c for c in q.text if c.isdigit())
            assert q.answer == ("yes" if digit in number else "no")
        else:
            assert q.answer == answer(q.kind, number)


def test_training_never_sees_what_is_held_out():
    numbers = many_numbers(3500, seed=5)
    held_out_texts = {p for ps in PHRASINGS.values() for p in [ps[HELD_OUT_PHRASING]]}
    for split in ("train", "seen"):
        for number, q in zip(numbers, ask_each(numbers, torch.Generator().manual_seed(5), split)):
            template = next(p for p in PHRASINGS[q.kind] if _fits(p, q.text))
            assert template not in held_out_texts, q
            assert not (q.kind == "position" and len(number) == 3 and "third" in q.text), (number, q)


def test_the_held_out_split_asks_only_what_is_held_out():
    numbers = many_numbers(3500, seed=6)
    thirds = 0
    for number, q in zip(numbers, ask_each(numbers, torch.Generator().manual_seed(6), "held_out")):
        template = next(p for p in PHRASINGS[q.kind] if _fits(p, q.text))
        if q.kind == "position" and len(number) == 3:
            assert "third" in q.text and template != PHRASINGS["position"][HELD_OUT_PHRASING]
            assert q.answer == number[2]
            thirds += 1
        else:
            assert template == PHRASINGS[q.kind][HELD_OUT_PHRASING], q
    assert thirds > 50


def test_vocabulary_covers_every_question_and_answer():
    numbers = many_numbers(1400, seed=7)
    known = set(vocabulary())
    for split in ("train", "held_out"):
        for q in ask_each(numbers, torch.Generator().manual_seed(7), split):
            assert set(q.text + q.answer) <= known, q


@pytest.mark.parametrize("number, kind, split, message", [
    ("12345", "read", "train", "1 to 4 digits"), ("", "read", "train", "1 to 4 digits"),
    ("12a", "read", "train", "1 to 4 digits"), (1234, "read", "train", "1 to 4 digits"),
    ("12", "colour", "train", "kind must be one of"), ("12", "read", "test", "split must be one of"),
])
def test_bad_requests_are_refused(number, kind, split, message):
    with pytest.raises(ValueError, match=message):
        ask(number, kind, Draws(torch.Generator().manual_seed(0)), split)


def _fits(template, text):
    """Whether `text` is `template` with its {ordinal} or {digit} filled in."""
    head, _, tail = template.partition("{")
    tail = tail.partition("}")[2] if _ else ""
    return text == template if not _ else text.startswith(head) and text.endswith(tail)
