"""What a language model learnt from text, used about a picture: the transfer measurements of notebook 10.

A Flamingo (flamingo.py) trained on captions only (eyes.py) is asked about an image at two levels:

    level 1  it captions the image, then goes on.  "This is the number seven." + " The number after it is"
             → " eight."  The fact was only ever read in text; the digit it is applied to came from the
             image, by way of the model's own caption (which names it).
    level 2  a prompt that never names the digit.  "The number after it is" → " eight."  Now the
             cross-attention must put the digit into the LM in a form its text knowledge can use.

Three questions at each level (KINDS): the number after it, the number before it (digits 1–9), odd or
even. Each is scored against the true digit of the image, and beside `chance`: the share of the commonest
right answer, what a model that ignores the image does at best.
"""

from collections import Counter

import torch

from ..data.facts import HELD_OUT_CAPTION_DIGITS, continuations, parity, word
from ..data.mnist import ALL_CAPTIONS, caption_for
from ..images import to_image_batch
from .text import encode

KINDS = {"after": " The number after it is", "before": " The number before it is", "parity": " It is"}


def right_answer(kind, digit):
    """The word that completes kind's question about digit: ("after", 7) -> "eight"; None for before zero."""
    if kind == "after":
        return word(digit + 1)
    if kind == "before":
        return word(digit - 1) if digit > 0 else None
    if kind == "parity":
        return parity(digit)
    raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")


@torch.inference_mode()
def continue_text(model, tokenizer, images, prompt, max_new_tokens=64, batch_size=500):
    """Each image's greedy continuation of bos + `prompt` (the same prompt for all), as text up to eos (or
    max_new_tokens, or the LM's last position)."""
    images = to_image_batch(images, model.image_size, model.in_chans)  # (28, 28) is one image, not 28 rows
    check_prompt(tokenizer, prompt)
    eos = tokenizer.eos_token_id
    texts = []
    for i in range(0, len(images), batch_size):
        chunk = images[i : i + batch_size]
        ids = encode(tokenizer, [prompt] * len(chunk), eos=False)[0]  # (B, T), no padding: one prompt
        for row in model.generate(chunk, ids, max_new_tokens, eos_id=eos).tolist():
            texts.append(tokenizer.decode(row[: row.index(eos)] if eos in row else row, skip_special_tokens=True))
    return texts


def check_prompt(tokenizer, prompt):
    """Refuse (ValueError) a prompt the LM cannot read as written: not a str, holding a special token's name
    ("<eos>", read as that token), or characters a character tokenizer does not know (read as <unk>)."""
    if not isinstance(prompt, str):
        raise TypeError(f"the prompt must be a str, got {type(prompt).__name__}")
    controls = [t for t in tokenizer.all_special_tokens if t in prompt]
    if controls:
        raise ValueError(f"the prompt contains {controls[0]!r}, which the tokenizer reads as a control token: "
                         "remove it")
    if tokenizer.unk_token_id is not None and tokenizer.unk_token_id in tokenizer(prompt, add_special_tokens=False)[
            "input_ids"]:
        vocab = tokenizer.get_vocab()
        unknown = sorted({c for c in prompt if c not in vocab})
        raise ValueError(f"the prompt has characters the language model never read: {unknown}")


def first_word(text):
    """" eight. It is even." -> "eight": the answer word that a continuation starts with."""
    return text.strip().split(".")[0].split(" ")[0]


def chance(kind, digits):
    """The share of images whose right answer is the commonest one: the best a guess that ignores the image
    does (about 11% for after and before: MNIST has most ones; about 51% for odd/even)."""
    answers = [right_answer(kind, d) for d in digits.tolist()]
    answers = [a for a in answers if a is not None]
    return Counter(answers).most_common(1)[0][1] / len(answers)


def _second_sentence(text):
    """"This is the number seven. It is odd. It is" -> "It is odd."."""
    parts = text.split(". ")
    return parts[1].split(".")[0] + "." if len(parts) > 1 else ""


def _score(kind, digits, texts):
    pairs = [(right_answer(kind, d), first_word(t)) for d, t in zip(digits.tolist(), texts)]
    pairs = [(want, got) for want, got in pairs if want is not None]
    return sum(want == got for want, got in pairs) / len(pairs)


def level_one(model, tokenizer, images, digits):
    """Caption, then a fact: {"caption": share of right captions, "goes_on": share whose free continuation is a
    true sentence about the image's digit, kind: share answered right after the model's own caption}."""
    written = continue_text(model, tokenizer, images, "")
    captions = [text.split(".")[0] + "." for text in written]
    truths = [caption_for(d) for d in digits.tolist()]
    results = {"caption": sum(c == t for c, t in zip(captions, truths)) / len(truths)}
    goes_on = [text.startswith(t + " ") and _second_sentence(text) in continuations(d).values()
               for text, t, d in zip(written, truths, digits.tolist())]
    results["goes_on"] = sum(goes_on) / len(goes_on)
    for kind, question in KINDS.items():
        texts = [""] * len(images)
        for caption in sorted(set(captions) & set(ALL_CAPTIONS)):  # a garbled caption counts as wrong, unasked
            # one batch per caption: every prompt in it has the same length
            rows = [i for i, c in enumerate(captions) if c == caption]
            for i, text in zip(rows, continue_text(model, tokenizer, images[rows], caption + question, 8)):
                texts[i] = text
        results[kind] = _score(kind, digits, texts)
    return results


def level_two(model, tokenizer, images, digits):
    """The same questions with no caption: {kind: share right}, the prompt " The number after it is" alone."""
    return {kind: _score(kind, digits, continue_text(model, tokenizer, images, question.strip(), 8))
            for kind, question in KINDS.items()}


def measure_transfer(model, tokenizer, images, digits):
    """Both levels and chance, as a dict of shares (JSON-ready), apart for two groups of images:

    "read": the digits whose caption sentences the LM read ("This is the number seven. It is odd."), and
    "held_out": facts.HELD_OUT_CAPTION_DIGITS, whose caption sentences it never read: for them a right
    answer after the caption would need the LM to combine two things it read (the caption, and "the number
    after three is four."), which a model that learns by heart does not do.
    """
    results = {}
    for group, keep in (("read", lambda d: d not in HELD_OUT_CAPTION_DIGITS),
                        ("held_out", lambda d: d in HELD_OUT_CAPTION_DIGITS)):
        rows = [i for i, d in enumerate(digits.tolist()) if keep(d)]
        x, d = images[rows], digits[rows]
        results[group] = {"images": len(rows), "level_one": level_one(model, tokenizer, x, d),
                          "level_two": level_two(model, tokenizer, x, d), "chance": {k: chance(k, d) for k in KINDS}}
    return results
