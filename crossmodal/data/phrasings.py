"""Questions about a number in many phrasings, from a grammar, and a split of the phrasings (notebook 11).

The seven kinds of questions.py (read, count, position, contains, largest, sum, backwards), each with the same exact
answer (`questions.answer`, the worked formats of contains and sum included), asked in two forms:

    "picture"  about the number in an image:        "What's the second digit?"           -> "0"
    "text"     about a number written in the text:  "What's the second digit of 2026?"   -> "0"

The grammar. Each kind has 12 templates (TEMPLATES), sentence frames with their own word order. In a template,
(a|b) is a choice of synonyms, [...] is said only in the text form ("[ of {number}]"), and the slots are {number},
{ordinal} and {digit}. A question is a template rendered, then written in a style:

    {number}   picture form: "the number", "this number", "the number in the picture" or "the number shown";
               text form: the digits "2026" (60%), "the number 2026" (30%) or quoted, "\"2026\"" (10%)
    {ordinal}  "first" … "fourth" or "last", as a word, or (25%) as "1st" … "4th" ("last" stays a word)
    {digit}    "7", or (25%) as a word, "seven" ("a eight" becomes "an eight")
    contraction   50%: "What is" -> "What's", "There is" -> "There's", "It is" -> "It's"
    politeness    30%: an opener ("Please, ", "Could you tell me: ", ...) or a closer (", please", ...)
    punctuation   the final mark as written (60%), left out (20%), doubled or "!" (10%), after a space (10%)
    typo          TYPO_PERCENT = 10% of questions: one letter of one word of 4 letters or more dropped, swapped with
                  the next or doubled; never in the number, the digit or the ordinal, which the answer depends on
    case          as written (75%), lower case (15%), upper case (5%), each word capitalised (5%)

The split is of templates, not of numbers: template k of a kind belongs to SPLIT_CYCLE[k % 4], so each kind has
6 templates in "picture" (trained with pictures, and seen in text), 3 in "text" (seen only in text) and 3 in
"held_out" (in no training at all). The styles are shared by all splits. E.g. for "position":

    picture   "What is the {ordinal} digit[ of {number}]?"     "In {number}, what is the {ordinal} digit?"
    text      "Which digit (comes|is) {ordinal}[ in {number}]?"
    held_out  "Tell me the {ordinal} digit[ of {number}]."

Everything is drawn from a seeded torch.Generator (numbers.Draws): the same seed gives the same questions on every
machine. A question's details (the ordinal, the digit) are drawn before its template, so the fixed test sets of the
three splits (`test_phrasings`) ask the same thing about the same numbers, in different words. `corpus` is the text
a language model reads first: text-form questions and answers of the "picture" and "text" splits as chats, mixed
with the number facts of facts.py.
"""

import re
from functools import lru_cache
from typing import NamedTuple

import torch

from .facts import corpus as fact_corpus
from .mnist import DIGIT_WORDS
from .numbers import Draws, test_numbers
from .questions import KINDS, ORDINALS, answer

TEMPLATES = {
    "read": ["What number is (written|shown)[ here: {number}]?", "(Read|Say) {number}.",
             "Which number is this[: {number}]?", "What does {number} say?",
             "Tell me (the number|which number it is)[: {number}].", "Can you read {number}?",
             "Write {number} in digits.", "(Copy|Repeat) {number}.",
             "What (digits|number) do you see[ in {number}]?", "{number} reads as what?",
             "Transcribe {number}.", "Which number (appears|is written) (here|there)[: {number}]?"],
    "count": ["How many digits are there[ in {number}]?", "How many digits does {number} have?",
              "Count the digits[ of {number}].", "How long is {number}?",
              "What is the (length|digit count) of {number}?", "How many (digits|figures) (make up|are in) {number}?",
              "Number of digits[ in {number}]?", "Tell me how many digits {number} has.",
              "{number} has how many digits?", "How many digits long is {number}?",
              "Give the digit count[ of {number}].", "Count how many digits (there are|appear)[ in {number}]."],
    "position": ["What is the {ordinal} digit[ of {number}]?", "(Read|Name) the {ordinal} digit[ of {number}].",
                 "Which digit (comes|is) {ordinal}[ in {number}]?", "Tell me the {ordinal} digit[ of {number}].",
                 "In {number}, what is the {ordinal} digit?",
                 "What digit is in the {ordinal} (place|position)[ of {number}]?",
                 "Give me the {ordinal} digit[ of {number}].", "The {ordinal} digit[ of {number}] is what?",
                 "Look at {number}: which digit is {ordinal}?", "{number}'s {ordinal} digit is?",
                 "Find the {ordinal} digit[ in {number}].",
                 "Which (figure|digit) stands in the {ordinal} (place|spot)[ of {number}]?"],
    "contains": ["Is there a {digit}[ in {number}]?", "Does {number} contain (a|the digit) {digit}?",
                 "Do you see a {digit}[ in {number}]?", "Is {digit} one of the digits[ of {number}]?",
                 "Does {number} have a {digit} (in it|anywhere)?", "Can you find a {digit}[ in {number}]?",
                 "Is the digit {digit} (in|part of) {number}?", "Any {digit}[ in {number}]?",
                 "Does a {digit} appear[ in {number}]?", "Check whether {number} contains a {digit}.",
                 "Is there any {digit}[ in {number}]?", "Look at {number}. Is there a {digit}?"],
    "largest": ["Which digit is the (largest|biggest)[ in {number}]?",
                "What is the (largest|highest) digit[ of {number}]?", "Name the biggest digit[ of {number}].",
                "Which digit is highest[ in {number}]?", "What is the maximum digit[ of {number}]?",
                "Find the largest digit[ in {number}].", "Tell me the (greatest|largest) digit[ of {number}].",
                "In {number}, which digit is (largest|biggest)?", "Of the digits[ of {number}], which is the largest?",
                "What is the max digit[ in {number}]?", "Which digit (of|in) {number} is the (largest|biggest)?",
                "Give the largest digit[ of {number}]."],
    "sum": ["What is the sum of the digits[ of {number}]?", "Add up the digits[ of {number}].",
            "What do the digits[ of {number}] add up to?", "Sum the digits[ of {number}].",
            "What is the digit sum of {number}?", "Add the digits[ of {number}] together.",
            "What (total|sum) do the digits[ of {number}] make?",
            "If you add the digits[ of {number}], what do you get?",
            "How much do the digits[ of {number}] add up to?", "Compute the sum of the digits[ in {number}].",
            "Total the digits[ of {number}].", "What are the digits[ of {number}] worth added together?"],
    "backwards": ["Read {number} backwards.", "What is {number} reversed?",
                  "Write the digits[ of {number}] in reverse(| order).", "Read {number} from right to left.",
                  "Reverse {number}.", "What is {number} written backwards?",
                  "Flip the order of the digits[ of {number}].", "Write {number} back to front.",
                  "What do you get if you reverse {number}?", "Give {number} in reverse.",
                  "Write {number} from the last digit to the first.",
                  "Read the digits[ of {number}] (backwards|in reverse order)."],
}
SPLITS = ("picture", "text", "held_out")  # trained with pictures; seen only in text; in no training
SPLIT_CYCLE = ("picture", "picture", "text", "held_out")  # template k of a kind is in SPLIT_CYCLE[k % 4]
FORMS = ("picture", "text")  # the number in an image, or written in the question
TEST_COUNT = 2_100  # the fixed test sets: 300 questions of each kind
TEST_SEED = 37

PICTURE_NUMBER = ("the number", "this number", "the number in the picture", "the number shown")
NUMERIC_ORDINALS = {"first": "1st", "second": "2nd", "third": "3rd", "fourth": "4th"}
CONTRACTIONS = (("What is", "What's"), ("what is", "what's"), ("There is", "There's"), ("there is", "there's"),
                ("It is", "It's"), ("it is", "it's"))
OPENERS = ("Please, ", "Could you tell me: ", "Can you tell me: ", "Quick question: ", "Hey, ", "I'd like to know: ")
CLOSERS = (", please", " please", ", thanks")
TYPO_PERCENT = 10  # share of questions with one small typo
PROTECTED = set(ORDINALS) | {"last"} | set(DIGIT_WORDS)  # words the answer depends on: never misspelt


class Phrased(NamedTuple):
    """A question and its exact answer (kind, text, answer first, as questions.Question), and how it was made."""

    kind: str  # one of KINDS
    text: str
    answer: str
    number: str  # the digit string asked about: in the picture, or written in the question
    form: str  # "picture" or "text"
    split: str  # the split of its template
    template: int  # its index in TEMPLATES[kind]
    ordinal: str | None = None  # position questions: "first" … "fourth" or "last"
    digit: str | None = None  # contains questions: the digit asked about


def split_of(template):
    """The split of a kind's template number `template`."""
    return SPLIT_CYCLE[template % len(SPLIT_CYCLE)]


def templates(kind, split):
    """[(index, template)] of a kind in a split (or in any of a tuple of splits), in TEMPLATES' order."""
    chosen = _check_splits(split)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return [(k, t) for k, t in enumerate(TEMPLATES[kind]) if split_of(k) in chosen]


def ask(number, kind, draw, split="picture", form="picture"):
    """One question of `kind` about `number` (a digit string) in a template of `split` (a split, or a tuple of
    splits), in `form`; its details, template and style drawn by `draw` (a numbers.Draws). Returns a Phrased."""
    if not (isinstance(number, str) and 1 <= len(number) <= len(ORDINALS) and number.isdigit()):
        raise ValueError(f"number must be a string of 1 to {len(ORDINALS)} digits, got {number!r}")
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    pool = templates(kind, split)
    ordinal = digit = None  # the details first: the same draws whichever the split, so test sets pair up
    if kind == "position":
        choices = ORDINALS[: len(number)] + ["last"]
        ordinal = choices[draw(0, len(choices) - 1)]
    elif kind == "contains":
        inside = draw(0, 1)  # yes and no equally often
        pool_digits = sorted(set(number)) if inside else sorted(set("0123456789") - set(number))
        digit = pool_digits[draw(0, len(pool_digits) - 1)]
    index, template = pool[draw(0, len(pool) - 1)]
    text = _style(_render(template, form, number, ordinal, digit, draw), draw)
    return Phrased(kind, text, answer(kind, number, ordinal, digit), number, form, split_of(index), index,
                   ordinal, digit)


def _render(template, form, number, ordinal, digit, draw):
    """A template with its text-only parts kept or dropped, its synonyms chosen and its slots filled."""
    text = re.sub(r"\[([^\]]*)\]", r"\1" if form == "text" else "", template)
    text = re.sub(r"\(([^()]*)\)", lambda m: _pick(m.group(1).split("|"), draw), text)
    text = re.sub(r"\{number\}", lambda m: _number(form, number, draw), text)
    if ordinal is not None:
        numeric = ordinal in NUMERIC_ORDINALS and draw(0, 99) < 25
        text = text.replace("{ordinal}", NUMERIC_ORDINALS[ordinal] if numeric else ordinal)
    if digit is not None:
        text = text.replace("{digit}", DIGIT_WORDS[int(digit)] if draw(0, 99) < 25 else digit)
        text = re.sub(r"\b([Aa])( eight)\b", r"\1n\2", text)  # "a eight" -> "an eight"
    return text[0].upper() + text[1:]


def _number(form, number, draw):
    if form == "picture":
        return _pick(PICTURE_NUMBER, draw)
    roll = draw(0, 99)
    return number if roll < 60 else f"the number {number}" if roll < 90 else f'"{number}"'


def _style(text, draw):
    """A rendered question written in a drawn style: contraction, politeness, final mark, typo, case."""
    if draw(0, 99) < 50:
        for full, short in CONTRACTIONS:
            text = re.sub(rf"\b{full}\b", short, text)  # whole words: "digit is" holds no "it is"
    body, mark = (text[:-1], text[-1]) if text[-1] in "?." else (text, "")
    if draw(0, 99) < 30:
        polite = _pick(OPENERS + CLOSERS, draw)
        if polite in OPENERS:
            lower = body[:2] not in ("I ", "I'") and not body[:1].isdigit()  # "Please, what is …", not "please, i"
            body = polite + (body[0].lower() + body[1:] if lower else body)
        else:
            body += polite
    if mark:
        roll = draw(0, 99)
        mark = mark if roll < 60 else "" if roll < 80 else ("??" if mark == "?" else "!") if roll < 90 else " " + mark
    text = body + mark
    if draw(0, 99) < TYPO_PERCENT:
        text = _typo(text, draw)
    roll = draw(0, 99)
    if roll < 75:
        return text
    if roll < 90:
        return text.lower()
    return text.upper() if roll < 95 else " ".join(w[:1].upper() + w[1:] for w in text.split(" "))


def _typo(text, draw):
    """One letter of one word (4 letters or more, not PROTECTED) dropped, swapped with the next, or doubled."""
    words = [m for m in re.finditer(r"[A-Za-z]{4,}", text) if m.group().lower() not in PROTECTED]
    if not words:
        return text
    word = words[draw(0, len(words) - 1)]
    w, i, how = word.group(), draw(0, len(word.group()) - 2), draw(0, 2)
    wrong = w[:i] + w[i + 1 :] if how == 0 else w[:i] + w[i + 1] + w[i] + w[i + 2 :] if how == 1 else \
        w[:i] + w[i] + w[i:]
    return text[: word.start()] + wrong + text[word.end() :]


def _pick(options, draw):
    return options[draw(0, len(options) - 1)]


def _check_splits(split):
    chosen = (split,) if isinstance(split, str) else tuple(split)
    if not chosen or any(s not in SPLITS for s in chosen):
        raise ValueError(f"split must be one of {SPLITS}, or a tuple of them, got {split!r}")
    return chosen


def random_number(draw):
    """A digit string of 1 to 4 digits, its length and digits uniform (leading zeros happen, as in numbers.py)."""
    return "".join(str(draw(0, 9)) for _ in range(draw(1, len(ORDINALS))))


def draw_question(generator, split="picture", form="text", number=None, kind=None):
    """One random question of `split` (a split or a tuple of them) from a seeded torch.Generator: its kind uniform
    unless given, about `number`, or in the text form about a random_number. Returns a Phrased."""
    draw = Draws(generator)
    kind = KINDS[draw(0, len(KINDS) - 1)] if kind is None else kind
    if number is None and form == "picture":
        raise ValueError("a picture question is about the number in the picture: pass it as number")
    return ask(random_number(draw) if number is None else number, kind, draw, split, form)


def ask_each(numbers, generator, split="picture", form="picture", kinds=KINDS):
    """One question per number (digit strings: numbers.Numbers.texts), the kinds taken in turn (balanced),
    details, templates and styles drawn from `generator`. Returns a list of Phrased."""
    return [ask(number, kinds[i % len(kinds)], Draws(generator), split, form) for i, number in enumerate(numbers)]


def text_questions(count, generator, split="picture", kinds=KINDS):
    """`count` text-form questions, the kinds in turn, each about a random_number drawn with it. A list of Phrased."""
    out = []
    for i in range(count):
        draw = Draws(generator)
        out.append(ask(random_number(draw), kinds[i % len(kinds)], draw, split, "text"))
    return out


class PhrasingSet(NamedTuple):
    """A fixed test set: numbers (numbers.Numbers, the pictures; None for the text form) and questions (Phrased)."""

    numbers: object
    questions: list


def test_phrasings(split, form="picture", count=TEST_COUNT):
    """The fixed test set of a split: `count` questions, the kinds in turn, seed TEST_SEED. The picture form asks
    about the first `count` numbers of numbers.test_numbers() (MNIST's test images); the text form about numbers
    drawn with the questions. The three splits ask the same kinds, ordinals and digits about the same numbers, in
    their own templates. Returns a PhrasingSet, the caller's own copy."""
    if split not in SPLITS or form not in FORMS:
        raise ValueError(f"split must be one of {SPLITS} and form one of {FORMS}, got {split!r} and {form!r}")
    numbers, questions = _test_phrasings(split, form, count)
    return PhrasingSet(None if numbers is None else numbers.clone(), list(questions))


@lru_cache(maxsize=6)
def _test_phrasings(split, form, count):
    generator = torch.Generator().manual_seed(TEST_SEED)
    if form == "text":
        return PhrasingSet(None, text_questions(count, generator, split))
    numbers = test_numbers()[:count]
    return PhrasingSet(numbers, ask_each(numbers.texts, generator, split, "picture"))


def corpus(n, generator, splits=("picture", "text"), fact_share=0.25, turns=1):
    """n passages for a language model to read from text alone: each a number fact of facts.py (a str; a share
    `fact_share` of them), or a chat (a list of messages, user then assistant, for a chat template) of 1 to
    `turns` text-form questions of `splits` (their templates drawn uniformly) with their answers.

    Never a held-out template: passing "held_out" in splits is refused. Deterministic for a seeded generator.
    """
    chosen = _check_splits(splits)
    if "held_out" in chosen:
        raise ValueError("the corpus is training text: held-out templates are in no training, leave them out")
    if not 0 <= fact_share <= 1 or not isinstance(turns, int) or turns < 1:
        raise ValueError(f"fact_share must be from 0 to 1 and turns a whole number ≥ 1, got {fact_share!r}, "
                         f"{turns!r}")
    is_fact = (torch.rand(n, generator=generator) < fact_share).tolist()
    facts = iter(fact_corpus(sum(is_fact), generator))
    passages = []
    for fact in is_fact:
        if fact:
            passages.append(next(facts))
            continue
        chat = []
        for _ in range(1 + int(torch.randint(turns, (1,), generator=generator)) if turns > 1 else 1):
            q = draw_question(generator, chosen, "text")
            chat += [{"role": "user", "content": q.text}, {"role": "assistant", "content": q.answer}]
        passages.append(chat)
    return passages


def texts_of(passages):
    """Every string of corpus passages (facts, and each message's content): what a byte-level BPE learns from."""
    texts = []
    for passage in passages:
        texts += [passage] if isinstance(passage, str) else [message["content"] for message in passage]
    return texts
