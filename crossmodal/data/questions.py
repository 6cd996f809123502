"""Questions about a written number, each with one exact answer: the data of visual question answering.

The image is a number of 1 to 4 handwritten digits (numbers.py); the question is drawn from seven
types, each asked in four phrasings, and the answer is computed from the digit string:

    read       "What number is written?"            -> "2026"
    count      "How many digits are there?"         -> "4"
    position   "What is the second digit?"          -> "0"     (first, second, third, fourth or last)
    contains   "Is there a 7?"                      -> "2026 has 7: no"   (yes and no equally often)
    largest    "Which digit is the largest?"        -> "6"
    sum        "What is the sum of the digits?"     -> "2+0=2, 2+2=4, 4+6=10"
    backwards  "Read it backwards."                 -> "6202"

Two kinds show their working before the conclusion (a scratchpad, Nye et al. 2021): the answerer writes
the digits it reads, then says yes or no; or it adds the digits one at a time, a running total. Asked for
the bare "no", a model of this size must find the asked digit among the image's patches in one step, and it
does not learn to: trained 6 epochs, and then 500 steps on "Is there a ...?" alone, it answered 51% right and
its loss never moved from ln 2 (measured with the draft's runs, see issue #11's note). Written out, each step
is one it has already learnt (read the number; compare two characters it wrote; add one digit to a number it
wrote). Adding four digits at once, after writing them out ("2+0+2+6=10"), it summed 51% of the test numbers
right after 9 epochs in all; with the running total and 3 epochs more, 85% (the shipped record).
`final_answer` takes the conclusion, which is what is graded, as GSM8K graders take the number after the
rationale.

What is held out of training, to test generalisation (split="held_out"):
- the fourth phrasing of every type (HELD_OUT_PHRASING): the model never reads it in training;
- "the third digit" of a three-digit number, where the third digit is also the last: training asks
  "third" only of four-digit numbers, so the model must have learnt what "third" means, not where it is.
Training (split="train") draws from the rest; the test split "seen" asks what training could ask.
Some types can be answered well without looking (count, contains: a blind model learns the priors, as
VQA v2 found); the notebook measures a blind baseline for each type.
"""

import re
from functools import lru_cache
from typing import NamedTuple

import torch

from .numbers import Draws, test_numbers

BLOCK_SIZE = 60  # <bos><|user|>, a question of up to 30 characters, <|assistant|>, an answer of up to 24, <eos>
TEST_COUNT = 7_000  # the published test sets: 1,000 questions of each kind

PHRASINGS = {
    "read": ["What number is written?", "Read the number.", "Which number is this?", "What does it say?"],
    "count": ["How many digits are there?", "How many digits does it have?", "Count the digits.",
              "How long is the number?"],
    "position": ["What is the {ordinal} digit?", "Read the {ordinal} digit.", "Which digit comes {ordinal}?",
                 "Tell me the {ordinal} digit."],
    "contains": ["Is there a {digit}?", "Does it contain a {digit}?", "Do you see a {digit}?",
                 "Is {digit} one of the digits?"],
    "largest": ["Which digit is the largest?", "What is the largest digit?", "Name the biggest digit.",
                "Which digit is highest?"],
    "sum": ["What is the sum of the digits?", "Add up the digits.", "What do the digits add up to?",
            "Sum the digits."],
    "backwards": ["Read it backwards.", "What is the number reversed?", "Write the digits in reverse.",
                  "Read it from right to left."],
}
KINDS = tuple(PHRASINGS)
SO = ": "  # between a contains answer's working and its conclusion; a sum's is its last "="
HELD_OUT_PHRASING = 3  # the fourth phrasing of every type is never asked in training
ORDINALS = ["first", "second", "third", "fourth"]
SPLITS = ("train", "seen", "held_out")


class Question(NamedTuple):
    kind: str  # one of KINDS
    text: str
    answer: str


def answer(kind, number, ordinal=None, digit=None):
    """The exact answer to a question of `kind` about the digit string `number` (ordinal: "first" ... "last")."""
    if kind == "read":
        return number
    if kind == "count":
        return str(len(number))
    if kind == "position":
        return number[-1] if ordinal == "last" else number[ORDINALS.index(ordinal)]
    if kind == "contains":  # the working, then the conclusion (see the module's docstring)
        return f"{number} has {digit}{SO}{'yes' if digit in number else 'no'}"
    if kind == "largest":
        return max(number)
    if kind == "sum":  # a running total, one digit added per step: "2+0=2, 2+2=4, 4+6=10"; one digit: "4=4"
        steps, total = [], int(number[0])
        for digit in number[1:]:
            steps.append(f"{total}+{digit}={total + int(digit)}")
            total += int(digit)
        return ", ".join(steps) if steps else f"{number}={number}"
    if kind == "backwards":
        return number[::-1]
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def ask(number, kind, draw, split="train"):
    """One question of `kind` about `number` (a digit string), its phrasing and details drawn by `draw` (a Draws).

    split: "train" and "seen" use the first three phrasings and never ask "third" of a three-digit number;
    "held_out" asks a position question about a three-digit number as "third" (in a seen phrasing), and
    every other question in the fourth phrasing (see the module's docstring).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not (isinstance(number, str) and 1 <= len(number) <= len(ORDINALS) and number.isdigit()):
        raise ValueError(f"number must be a string of 1 to {len(ORDINALS)} digits, got {number!r}")
    third_of_three = kind == "position" and len(number) == 3
    held_out_phrasing = split == "held_out" and not third_of_three
    phrasing = HELD_OUT_PHRASING if held_out_phrasing else draw(0, HELD_OUT_PHRASING - 1)
    ordinal = digit = None
    if kind == "position":
        if split == "held_out" and third_of_three:
            ordinal = "third"  # in a seen phrasing: only asking "third" of three digits is new
        else:
            choices = ORDINALS[: len(number)] + ["last"]
            if third_of_three:
                choices.remove("third")  # never in training: the held-out split asks it
            ordinal = choices[draw(0, len(choices) - 1)]
    elif kind == "contains":
        inside = draw(0, 1)  # yes and no equally often
        pool = sorted(set(number)) if inside else sorted(set("0123456789") - set(number))
        digit = pool[draw(0, len(pool) - 1)]
    text = PHRASINGS[kind][phrasing].format(ordinal=ordinal, digit=digit)
    return Question(kind, text, answer(kind, number, ordinal, digit))


def ask_each(numbers, generator, split="train", kinds=KINDS):
    """One question per number, the kinds taken in turn (balanced), details drawn from `generator`.

    numbers: digit strings (numbers.Numbers.texts). Returns a list of Question.
    """
    return [ask(number, kinds[i % len(kinds)], Draws(generator), split) for i, number in enumerate(numbers)]


def vocabulary():
    """Every character a question or an answer can hold: the questions' tokenizer is built from it."""
    texts = [p.format(ordinal=o, digit=d) for ps in PHRASINGS.values() for p in ps
             for o in ORDINALS + ["last"] for d in "0123456789"]
    return "".join(sorted(set("".join(texts) + "0123456789" + SO + "yesno+=, ")))


def final_answer(text):
    """The conclusion of an answer, what is graded: "2026 has 7: no" -> "no", "2+0=2, 2+2=4, 4+6=10" -> "10",
    "6202" -> "6202"."""
    for separator in (SO, "="):
        if separator in text:
            return text.rsplit(separator, 1)[1]
    return text


class QuestionSet(NamedTuple):
    """A fixed set of questions, one per number: numbers (numbers.Numbers) and questions (a list of Question)."""

    numbers: object
    questions: list


def test_questions(split="seen", count=TEST_COUNT):
    """The published test set: the first `count` numbers of numbers.test_numbers(), one question each (kinds in
    turn, seed 11). split "seen" asks what training could ask; "held_out" what it never asks, about the same
    numbers. Returns a QuestionSet, the caller's own copy."""
    numbers, questions = _test_questions(split, count)
    return QuestionSet(numbers.clone(), list(questions))


@lru_cache(maxsize=2)
def _test_questions(split, count):
    numbers = test_numbers()[:count]
    return QuestionSet(numbers, ask_each(numbers.texts, torch.Generator().manual_seed(11), split))


def accuracy_by_kind(questions, answers):
    """{kind: share of exact answers (their conclusions, final_answer)} for the kinds present, and "all"."""
    result = {}
    for kind in KINDS + ("all",):
        pairs = [(final_answer(q.answer), final_answer(a)) for q, a in zip(questions, answers)
                 if kind in ("all", q.kind)]
        if pairs:
            result[kind] = sum(t == a for t, a in pairs) / len(pairs)
    return result


def question_kind(text):
    """The kind of `text` if it is a question of this grammar, word for word as the answerer was taught (any of the
    four phrasings, any ordinal or digit); else a ValueError saying what it can be asked. The answerer writes
    something for any text, so a question outside the grammar ("7", "the tenth digit") would get a made-up answer."""
    if not isinstance(text, str):
        raise ValueError(f"a question is a str, e.g. {PHRASINGS['read'][0]!r}; got {type(text).__name__} {text!r}")
    for kind, phrasings in PHRASINGS.items():
        for phrasing in phrasings:
            pattern = re.escape(phrasing).replace(r"\{ordinal\}", "(first|second|third|fourth|last)")
            if re.fullmatch(pattern.replace(r"\{digit\}", "[0-9]"), text):
                return kind
    examples = "; ".join(f"{PHRASINGS[k][0].format(ordinal='second', digit='7')!r}" for k in KINDS)
    raise ValueError(f"{text[:40]!r} is not a question the answerer was taught, so its answer would be made up: ask "
                     f"one of its seven kinds, e.g. {examples} (four phrasings of each, ordinals first to fourth "
                     "and last)")


def asked_ordinal(question):
    """The digit a question names by its ordinal word (0 = "first"): None for "last", or for a question naming none."""
    words = question.lower().replace("?", " ").replace(".", " ").split()
    if "last" in words:
        return None
    return next((ORDINALS.index(w) for w in words if w in ORDINALS), None)


def asked_digit(number, question):
    """Which digit of `number` a position question asks about (0 = the first), from its ordinal word."""
    k = asked_ordinal(question)
    if k is None and "last" not in question.lower():
        raise ValueError(f"{question!r} asks about no digit by position")
    return len(number) - 1 if k is None else k
