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

from functools import lru_cache
from typing import NamedTuple

import torch

from .numbers import Draws, NumberBatches, reader_config
from .tokenizer import build_chat_tokenizer, check_text

IGNORE_INDEX = -100  # targets the loss skips (PyTorch's and LLaVA's convention): the prompt's tokens
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


def answerer_config():
    """The reader's design (numbers.reader_config) with room for a question (block_size BLOCK_SIZE) and four decoder
    layers instead of two: with two, "Is there a 7?" stayed at chance even with its working written out
    (tests/benchmarks/question_plateau.py; the module's docstring)."""
    config = reader_config()
    config.decoder.block_size = BLOCK_SIZE
    config.decoder.depth = 4
    return config


def question_answerer(config=None):
    """A fresh model that answers questions about numbers (default config: `answerer_config()`), with the
    chat tokenizer (tokenizer.build_chat_tokenizer) over `vocabulary()`."""
    from .model import Captioner

    return Captioner._with_tokenizer(build_chat_tokenizer(vocabulary()), config or answerer_config())


def chat_batch(tokenizer, questions):
    """Token ids (B, L) of each <bos><|user|>question<|assistant|>answer<eos>, then <pad>; and the targets
    (B, L - 1): the next token where it is part of the answer (its <eos> included), IGNORE_INDEX elsewhere,
    so the loss counts the answers only, as LLaVA's instruction tuning does."""
    rows, targets = [], []
    for q in questions:
        chat = [{"role": "user", "content": q.text}, {"role": "assistant", "content": q.answer}]
        out = tokenizer.apply_chat_template(chat, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
        ids, learnt = out["input_ids"], out["assistant_masks"]
        rows.append(ids)
        targets.append([t if m else IGNORE_INDEX for t, m in zip(ids[1:], learnt[1:])])
    L = max(map(len, rows))
    tokens = torch.tensor([r + [tokenizer.pad_token_id] * (L - len(r)) for r in rows])  # (B, L)
    return tokens, torch.tensor([t + [IGNORE_INDEX] * (L - 1 - len(t)) for t in targets])  # (B, L - 1)


def prompt_ids(model, question):
    """The token ids a model reads before it answers `question` (a str), <bos> left out (generate adds it).

    Raises ValueError for an empty question, characters outside the vocabulary, or one too long to answer.
    """
    tokenizer = model._tokenizer()
    check_text(tokenizer, question)
    chat = [{"role": "user", "content": question}]
    ids = tokenizer.apply_chat_template(chat, tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"]
    room = model.config.decoder.block_size - len(ids) - 1  # an answer needs a digit and <eos> at least
    if room < 1:
        longest = len(question) + room - 1
        raise ValueError(f"the question is {len(question)} characters long; this model reads at most {longest}")
    return ids[1:]


@torch.inference_mode()
def answer_questions(model, images, questions, batch_size=500):
    """The model's answers (strings) to one question per image; images (N, 1, 28, W), questions: strings."""
    if len(images) != len(questions):
        raise ValueError(f"one question per image: got {len(images)} images and {len(questions)} questions")
    prompts = [prompt_ids(model, q) for q in questions]
    answers = []
    for i in range(0, len(prompts), batch_size):
        generated = model.generate(images[i : i + batch_size], prompt=prompts[i : i + batch_size])
        answers += model.decode(generated)
    return answers


@torch.inference_mode()
def answer_with_maps(model, image, question):
    """One image's answer and where each of its characters looked: a model.Caption whose text is the answer,
    attention (characters, layers, heads, grid_h, grid_w). image: (1, 28, W) or (28, W) in [0, 1]."""
    from .model import Caption

    x = model.image_batch(image)
    if len(x) != 1:
        raise ValueError(f"answer_with_maps answers one image; got a batch of {len(x)} (use answer_questions)")
    generated, maps = model.generate(x, prompt=[prompt_ids(model, question)], return_attention=True)
    text = model.decode(generated)[0]
    attention = maps[0, : len(text)].unflatten(-1, model.encoder.grid_size)  # (chars, L, H, N) -> (.., gh, gw)
    return Caption(text, attention.cpu(), x[0].cpu())


def asked_digit(number, question):
    """Which digit of `number` a position question asks about (0 = the first), from its ordinal word."""
    words = question.lower().replace("?", " ").replace(".", " ").split()
    if "last" in words:
        return len(number) - 1
    return next(ORDINALS.index(w) for w in words if w in ORDINALS)


@torch.inference_mode()
def position_alignment(model, test, batch_size=500):
    """Where the answer to "What is the second digit?" looked: for each position question of `test` (a
    QuestionTest) answered right, whether its map's peak lies inside the asked digit's box (reading.alignment,
    per layer and per head, with chance: the share of patches such boxes cover). Also returns the accuracy."""
    from .reading import alignment

    picked = [i for i, q in enumerate(test.questions) if q.kind == "position"]
    images = test.numbers.images[picked].float() / 255
    texts = [test.questions[i].text for i in picked]
    answers, maps = [], []
    for start in range(0, len(picked), batch_size):
        prompts = [prompt_ids(model, t) for t in texts[start : start + batch_size]]
        generated, attention = model.generate(images[start : start + batch_size], prompt=prompts,
                                              return_attention=True)
        answers += model.decode(generated)
        maps.append(attention[:, :1].unflatten(-1, model.encoder.grid_size).cpu())  # (b, 1, L, H, gh, gw)
    numbers = [test.numbers.texts[i] for i in picked]
    asked = [asked_digit(n, t) for n, t in zip(numbers, texts)]
    boxes = torch.stack([test.numbers.boxes[i][k] for i, k in zip(picked, asked)])[:, None]  # (B, 1, 4)
    truths = [n[k] for n, k in zip(numbers, asked)]
    result = alignment(torch.cat(maps), [a[:1] for a in answers], truths, boxes, model.config.vision.patch_size)
    result["accuracy"] = sum(a == t for a, t in zip(answers, truths)) / len(truths)
    return result


class QuestionBatches(NumberBatches):
    """The training stream of a question answerer: numbers written as NumberBatches writes them, one question
    about each (`kinds` in turn; a repeated kind is asked more often), as (images, tokens (B, L), targets (B, L - 1))
    with the prompt masked."""

    def __init__(self, images, labels, tokenizer, split="train", kinds=KINDS, **kwargs):
        super().__init__(images, labels, tokenizer, **kwargs)
        unknown = set(kinds) - set(KINDS)
        if not kinds or unknown:
            raise ValueError(f"kinds must name some of {KINDS}, got {kinds!r}")
        self.split, self.kinds = split, tuple(kinds)

    def batches(self, epoch, batch_size, seed, start=0):
        for i in range(start, self.steps_per_epoch(batch_size)):
            images, texts, generator = self.written(epoch, i, batch_size, seed)
            tokens, targets = chat_batch(self.tokenizer, ask_each(texts, generator, self.split, self.kinds))
            yield images, tokens, targets


class QuestionTest(NamedTuple):
    """A fixed set of questions, one per number: numbers (numbers.Numbers) and questions (a list of Question)."""

    numbers: object
    questions: list

    def evaluate(self, model):
        """Exact answers, over all and by kind (the train loop's evaluation: JSON-ready numbers only)."""
        answers = answer_questions(model, self.numbers.images.float() / 255, [q.text for q in self.questions])
        accuracy = accuracy_by_kind(self.questions, answers)
        return {"exact_match": accuracy.pop("all"), "by_kind": accuracy}


@lru_cache(maxsize=2)
def test_questions(split="seen", count=TEST_COUNT):
    """The published test set: the first `count` numbers of numbers.test_set(), one question each (kinds in
    turn, seed 11). split "seen" asks what training could ask; "held_out" what it never asks, about the same
    numbers. Returns a QuestionTest. Cached: do not modify."""
    from .numbers import test_set

    numbers = test_set()
    numbers = type(numbers)(numbers.images[:count], numbers.texts[:count], numbers.boxes[:count])
    return QuestionTest(numbers, ask_each(numbers.texts, torch.Generator().manual_seed(11), split))


def accuracy_by_kind(questions, answers):
    """{kind: share of exact answers (their conclusions, final_answer)} for the kinds present, and "all"."""
    result = {}
    for kind in KINDS + ("all",):
        pairs = [(final_answer(q.answer), final_answer(a)) for q, a in zip(questions, answers)
                 if kind in ("all", q.kind)]
        if pairs:
            result[kind] = sum(t == a for t, a in pairs) / len(pairs)
    return result
