"""Sentences about numbers, for a language model that learns from text alone (see tasks/text.py, nn/flamingo.py).

The images teach one sentence per digit, the caption ("This is the number seven.", `mnist.caption_for`).
These sentences carry what the images never say: what comes after seven, what seven plus one makes,
whether seven is odd. A language model learns them from text; a vision model grafted onto it later
(flamingo.py) should then use them about a picture.

The grammar. Numbers are written as words, zero … eighteen (NUMBER_WORDS: nine plus nine is eighteen, the
largest number any fact needs). Every sentence ends with a full stop; there are five families:

    after    "the number after {n} is {n + 1}."         n = 0 … 17
    before   "the number before {n} is {n - 1}."        n = 1 … 18
    plus     "{a} plus {b} is {a + b}."                  a, b = 0 … 9
    parity   "{n} is even." or "{n} is odd."             n = 0 … 18
    caption  the caption of digit d, then one sentence about "it", d = 0 … 9:
             "This is the number {d}. The number after it is {d + 1}."
             "This is the number {d}. The number before it is {d - 1}."   (d ≥ 1)
             "This is the number {d}. It is odd."  (or "even")

The caption family is the bridge: it teaches that "it" after a caption is the captioned number. After
training on images with their captions only, a model that writes "This is the number seven." should go
on with "The number after it is eight." (`continuations(7)`), a fact it has read, never seen.

Held out (`held_out_facts`, never in `corpus`): eight sums (HELD_OUT_SUMS) and the caption family of
two digits (HELD_OUT_CAPTION_DIGITS); an evaluation asks for them to tell recall from generalisation.
"""

import torch

from .mnist import DIGIT_WORDS, caption_for

NUMBER_WORDS = DIGIT_WORDS + ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
                              "eighteen"]
LARGEST = len(NUMBER_WORDS) - 1  # 18 = 9 + 9
FAMILIES = ("after", "before", "plus", "parity", "caption")
HELD_OUT_SUMS = ((1, 6), (2, 7), (3, 3), (4, 8), (5, 2), (6, 9), (8, 5), (9, 4))  # with and without a carry
HELD_OUT_CAPTION_DIGITS = (3, 8)


def word(n):
    """The number n (0 … 18) as a word: word(7) == "seven"."""
    if not 0 <= n <= LARGEST:
        raise ValueError(f"the grammar's numbers are 0 … {LARGEST}, got {n}")
    return NUMBER_WORDS[n]


def parity(n):
    return "even" if n % 2 == 0 else "odd"


def continuations(digit):
    """What follows digit's caption, one sentence per kind: {"after": "The number after it is eight.", ...}.

    The sentences a model should write after "This is the number {digit}." (no "before" for zero).
    """
    if not 0 <= digit <= 9:
        raise ValueError(f"a caption is about a digit 0 … 9, got {digit}")
    out = {"after": f"The number after it is {word(digit + 1)}."}
    if digit > 0:
        out["before"] = f"The number before it is {word(digit - 1)}."
    out["parity"] = f"It is {parity(digit)}."
    return out


def family_facts(family):
    """Every sentence of one family, in a fixed order (held-out ones included)."""
    if family == "after":
        return [f"the number after {word(n)} is {word(n + 1)}." for n in range(LARGEST)]
    if family == "before":
        return [f"the number before {word(n)} is {word(n - 1)}." for n in range(1, LARGEST + 1)]
    if family == "plus":
        return [f"{word(a)} plus {word(b)} is {word(a + b)}." for a in range(10) for b in range(10)]
    if family == "parity":
        return [f"{word(n)} is {parity(n)}." for n in range(LARGEST + 1)]
    if family == "caption":
        return [f"{caption_for(d)} {s}" for d in range(10) for s in continuations(d).values()]
    raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")


def all_facts():
    """Every sentence of the grammar, family by family (184 in all, held-out ones included)."""
    return [s for family in FAMILIES for s in family_facts(family)]


def held_out_facts():
    """The fixed evaluation facts that `corpus` never yields: the HELD_OUT_SUMS and the caption family of
    the HELD_OUT_CAPTION_DIGITS."""
    sums = [f"{word(a)} plus {word(b)} is {word(a + b)}." for a, b in HELD_OUT_SUMS]
    captions = [f"{caption_for(d)} {s}" for d in HELD_OUT_CAPTION_DIGITS for s in continuations(d).values()]
    return sums + captions


def training_facts(family):
    """One family's sentences less the held-out ones."""
    held_out = set(held_out_facts())
    return [s for s in family_facts(family) if s not in held_out]


def corpus(n, generator=None):
    """n training sentences: each draws a family uniformly, then a sentence of it uniformly.

    Families first, so the 92 sums do not drown the 18 successor facts. Deterministic for a seeded
    torch.Generator; no held-out fact ever appears.
    """
    pools = [training_facts(f) for f in FAMILIES]
    families = torch.randint(len(pools), (n,), generator=generator)
    picks = torch.rand(n, generator=generator)  # a uniform pick inside the drawn family
    return [pools[f][int(p * len(pools[f]))] for f, p in zip(families.tolist(), picks.tolist())]


def completions(prompt):
    """The true sentences of the grammar that start with `prompt`, held-out ones included.

    completions("seven plus one is") == ["seven plus one is eight."]; after a caption,
    completions("This is the number seven.") lists the caption with each of its three continuations.
    A generated sentence is right when it is one of them.
    """
    return [s for s in all_facts() if s.startswith(prompt) and len(s) > len(prompt)]
