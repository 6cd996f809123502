"""Questions: a handwritten number and a question about it in, the exact answer out (notebook 08).

The model: a VisionLanguageModel with the reader's design, room for a question and four decoder layers
(`answerer_config`), and a character tokenizer with a chat template (`new_answerer`): it reads
<bos><|user|>question<|assistant|> and writes the answer. Its training stream: numbers as the reader's, one
question about each from data/questions.py's grammar, the loss counted on the answer only (`chat_batch`,
`QuestionBatches`). Its test set: 7,000 questions about the fixed test numbers, scored by exact answer, by kind
(`QuestionTest`). `answer_questions` answers many; `answer_with_maps` one, with the maps of its characters.
"""

from dataclasses import dataclass

import torch

from ..data.mnist import load_mnist
from ..data.questions import (
    BLOCK_SIZE,
    KINDS,
    accuracy_by_kind,
    ask_each,
    asked_digit,
    question_kind,
    test_questions,
    vocabulary,
)
from ..nn import IGNORE_INDEX, VisionLanguageModel, build_chat_tokenizer
from ..training.config import TrainConfig
from ..training.streams import Batch
from .metrics import alignment
from .numbers import NumberBatches, reader_config
from .task import Task


def answerer_config():
    """The reader's design (numbers.reader_config) with room for a question (block_size BLOCK_SIZE) and four decoder
    layers instead of two: with two, "Is there a 7?" stayed at chance even with its working written out
    (tests/benchmarks/question_plateau.py; data/questions.py's docstring)."""
    config = reader_config()
    config.decoder.block_size = BLOCK_SIZE
    config.decoder.depth = 4
    return config


def new_answerer(config=None):
    """A fresh model that answers questions about numbers (default config: `answerer_config()`), with the
    chat tokenizer (nn.tokenizer.build_chat_tokenizer) over data.questions.vocabulary()."""
    return VisionLanguageModel.for_tokenizer(build_chat_tokenizer(vocabulary()), config or answerer_config())


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


class QuestionBatches(NumberBatches):
    """The training stream of a question answerer: numbers written as NumberBatches writes them, one question
    about each (`kinds` in turn; a repeated kind is asked more often), the loss counted on the answers only."""

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
            yield Batch(images, tokens[:, :-1], targets)


class QuestionTest:
    """A fixed set of questions about numbers (default: data.questions.test_questions(split)), and how well a model
    answers them: exact answers (their conclusions), over all and by kind."""

    def __init__(self, question_set=None, split="seen"):
        self.numbers, self.questions = question_set if question_set is not None else test_questions(split)

    def evaluate(self, model):
        answers = answer_questions(model, self.numbers.images.float() / 255, [q.text for q in self.questions])
        accuracy = accuracy_by_kind(self.questions, answers)
        return {"exact_match": accuracy.pop("all"), "by_kind": accuracy}


def answer_questions(model, images, questions, batch_size=500):
    """The model's answers (strings) to one question per image; images (N, 1, 28, W) in [0, 1], questions: strings
    of the questions' grammar (`asked`)."""
    if isinstance(questions, str) or not hasattr(questions, "__iter__"):
        raise ValueError(f"questions must be a list of strings, one per image; got {type(questions).__name__} "
                         f"{questions!r:.40} (answer_with_maps answers one)")
    texts = [asked(model, q) for q in questions]
    return [g.text for g in model.generate_text(images, texts, with_maps=False, batch_size=batch_size)]


def answer_with_maps(model, image, question):
    """One image's answer and where each of its characters looked: a Generation whose text is the answer,
    attention (characters, layers, heads, grid_h, grid_w). image: (1, 28, W) or (28, W) in [0, 1]; question: a str
    of the questions' grammar (`asked`)."""
    written = model.generate_text(image, asked(model, question))
    if len(written) != 1:
        raise ValueError(f"answer_with_maps answers one image; got a batch of {len(written)} (use answer_questions)")
    return written[0]


def asked(model, question):
    """`question` as the answerer reads it: one of data/questions.py's questions, the spaces around it dropped. A text
    the model cannot read gets its sentence (model.prompt_ids: a character outside its vocabulary, too long), and a
    text outside the grammar ("7", "the tenth digit", None) the grammar's (data.questions.question_kind), rather than
    an answer made up."""
    if not isinstance(question, str):
        question_kind(question)  # its sentence: a question is a str
    text = question.strip()
    if text == "":
        raise ValueError("the question is empty or holds only spaces: write a question")
    model.prompt_ids(text)
    question_kind(text)
    return text


def position_alignment(model, test, batch_size=500):
    """Where the answer to "What is the second digit?" looked: for each position question of `test` (a
    QuestionTest) answered right, whether its map's peak lies inside the asked digit's box (metrics.alignment,
    per layer and per head, with chance: the share of patches such boxes cover). Also returns the accuracy."""
    picked = [i for i, q in enumerate(test.questions) if q.kind == "position"]
    texts = [test.questions[i].text for i in picked]
    written = model.generate_text(test.numbers.images[picked].float() / 255, texts, batch_size=batch_size)
    answers = [w.text for w in written]
    first = torch.stack([w.attention[:1] if w.text else torch.zeros_like(written[0].attention[:1])
                         for w in written])  # (B, 1, L, H, gh, gw): the first character's maps
    numbers = [test.numbers.texts[i] for i in picked]
    asked = [asked_digit(n, t) for n, t in zip(numbers, texts)]
    boxes = torch.stack([test.numbers.boxes[i][k] for i, k in zip(picked, asked)])[:, None]  # (B, 1, 4)
    truths = [n[k] for n, k in zip(numbers, asked)]
    result = alignment(first, [a[:1] for a in answers], truths, boxes, model.config.vision.patch_size)
    result["accuracy"] = sum(a == t for a, t in zip(answers, truths)) / len(truths)
    return result


@dataclass
class QuestionOptions:
    question_kinds: str = ""  # kinds asked in turn, e.g. contains,contains,read (a repeat asks it more; "": each once)

    def kinds(self):
        kinds = tuple(k.strip() for k in self.question_kinds.split(",")) if self.question_kinds.strip() else KINDS
        unknown = sorted(set(kinds) - set(KINDS))
        if unknown:
            raise ValueError(f"--question-kinds must be a comma-separated list of {', '.join(KINDS)}; "
                             f"{', '.join(map(repr, unknown))} is not one of them")
        return kinds

    def check(self):
        self.kinds()


def _new_model(config, options):
    model = new_answerer(config)
    return model, model.tokenizer


def _data(model, tokenizer, cfg, options, device):
    images, labels = load_mnist(train=True)
    stream = QuestionBatches(images, labels, tokenizer, kinds=options.kinds(), augment=cfg.augment,
                             strokes=cfg.augment and cfg.augment_strokes, elastic=cfg.augment_elastic)
    return stream, QuestionTest()


TASK = Task("questions", "answer questions about handwritten numbers: 'Add up the digits.' -> '10'",
            answerer_config, _new_model, _data,
            TrainConfig(epochs=4, batch_size=64, lr=1e-3, warmup_steps=100, label_smoothing=0.1, ema=0.999),
            QuestionOptions)
