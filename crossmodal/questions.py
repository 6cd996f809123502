"""Questions about a written number, each with one exact answer: the data of visual question answering.

The image is a number of 1 to 4 handwritten digits (numbers.py); the question is drawn from seven
types, each asked in four phrasings, and the answer is computed from the digit string:

    read       "What number is written?"            -> "2026"
    count      "How many digits are there?"         -> "4"
    position   "What is the second digit?"          -> "0"     (first, second, third, fourth or last)
    contains   "Is there a 7?"                      -> "no"    (yes and no equally often)
    largest    "Which digit is the largest?"        -> "6"
    sum        "What is the sum of the digits?"     -> "10"
    backwards  "Read it backwards."                 -> "6202"

What is held out of training, to test generalisation (split="held_out"):
- the fourth phrasing of every type (HELD_OUT_PHRASING): the model never reads it in training;
- "the third digit" of a three-digit number, where the third digit is also the last: training asks
  "third" only of four-digit numbers, so the model must have learnt what "third" means, not where it is.
Training (split="train") draws from the rest; the test split "seen" asks what training could ask.
Some types can be answered well without looking (count, contains: a blind model learns the priors, as
VQA v2 found); the notebook measures a blind baseline for each type.
"""

from typing import NamedTuple

from .numbers import Draws

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
    if kind == "contains":
        return "yes" if digit in number else "no"
    if kind == "largest":
        return max(number)
    if kind == "sum":
        return str(sum(int(d) for d in number))
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
    return "".join(sorted(set("".join(texts) + "0123456789" + "yesno")))
