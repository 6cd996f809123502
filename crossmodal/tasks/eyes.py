"""Eyes: give the text LM eyes — train a Flamingo (nn/flamingo.py) on image captions only (notebook 10).

    python -m crossmodal.train --task eyes --out runs/eyes                    # gated layers in the frozen text LM
    python -m crossmodal.train --task eyes --from-scratch --out runs/scratch  # the control: the LM learnt from zero

The language model is the shipped text LM (checkpoints/text-lm, the text task's) or any LM folder (--lm). The
eyes are the shipped captioner's ViT encoder (notebook 05), frozen as Flamingo froze its NFNet: only the
projector and the gated layers learn. They learn from "This is the number seven." and nothing else, written
without an eos, so the LM's own sentence can go on after the caption (transfer.py measures what it then says).

The control (`from_scratch`) is what a captioner trained from scratch is: the same encoder, projector and
layers, but its GPT-2 starts random and learns from the captions too, with plain residuals (no gates: there is
nothing to protect). It never read a fact.
"""

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import GPT2LMHeadModel

from ..data.facts import training_facts
from ..data.mnist import ALL_CAPTIONS, caption_for, load_mnist
from ..nn import IGNORE_INDEX, Flamingo
from ..nn.auto import named_loss
from ..pretrained import load_captioner, load_text_lm
from ..training.config import TrainConfig
from ..training.distributed import unwrap
from ..training.loss import next_token_loss
from ..training.streams import Batch
from .task import Task
from .text import encode
from .transfer import measure_transfer

UNRELATED_FAMILIES = ("after", "before", "plus", "parity")
POSITIONS = 64  # the text LM's: a caption and the sentence after it must fit
# what fits in them: bos, the longest caption, a space, the sentence, eos
MAX_FOLLOWING = POSITIONS - 1 - max(len(c) for c in ALL_CAPTIONS) - 1 - 1


def build_eyes(lm, encoder, from_scratch=False, cross_attention_every=2, seed=0):
    """The gated Flamingo around the frozen `lm` with the frozen `encoder`; or, from_scratch, the control: a
    random GPT-2 of lm's config that trains with the new (ungated) layers. New weights from `seed`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if from_scratch:
            lm = named_loss(GPT2LMHeadModel(copy.deepcopy(lm.config)))
        return Flamingo(lm, encoder, cross_attention_every, gated=not from_scratch, freeze_encoder=True,
                        freeze_lm=not from_scratch)


def caption_batch(tokenizer, digits, followed_by=None):
    """(ids, labels), each (B, T): bos + caption of each digit, no eos: the sentence may go on.

    followed_by: one sentence per caption to write after it (then an eos), e.g. `unrelated_sentences`."""
    captions = [caption_for(d) for d in digits.tolist()]
    if followed_by is None:
        return encode(tokenizer, captions, eos=False)
    return encode(tokenizer, [f"{c} {s}" for c, s in zip(captions, followed_by)])


def unrelated_sentences(n, generator, room=MAX_FOLLOWING):
    """n sentences the LM has read that say nothing about "it" (facts.py's after, before, plus and parity
    families, at most `room` characters), drawn uniformly with `generator`."""
    pool = [s for family in UNRELATED_FAMILIES for s in training_facts(family) if len(s) <= room]
    return [pool[i] for i in torch.randint(len(pool), (n,), generator=generator).tolist()]


class CaptionSentences:
    """The eyes' training stream: MNIST training digits drawn at random, each with its caption (no eos).

    keep_text: each caption is followed by an unrelated sentence the LM has read (`unrelated_sentences`: drawn
    apart from the image, it says nothing about the digit), marked in the Batch's `keep`: on it the model learns to
    predict what the LM alone predicts (`eyes_loss`). Trained on captions alone, the new layers never see a position
    after a caption, and what they add there garbles the LM's next sentence (measured: README, notebook 10).
    Trained to copy those sentences instead (cross-entropy), they learn that a caption is followed by a random
    sentence, and garble that. Keeping the LM's own predictions teaches them one thing only: where the image has
    nothing to add, add nothing.
    """

    def __init__(self, images, digits, tokenizer, keep_text=True, examples_per_epoch=600 * 64):
        self.images, self.digits, self.tokenizer = images, digits, tokenizer
        self.keep_text, self.examples_per_epoch = keep_text, examples_per_epoch
        lengths = [len(tokenizer(caption_for(d), add_special_tokens=False)["input_ids"]) for d in range(10)]
        self.caption_lengths = torch.tensor(lengths)  # (10,): each digit's caption in tokens

    def steps_per_epoch(self, batch_size):
        return math.ceil(self.examples_per_epoch / batch_size)

    def batches(self, epoch, batch_size, seed, start=0):
        for i in range(start, self.steps_per_epoch(batch_size)):
            generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch * 10_007 + i)
            pick = torch.randint(len(self.digits), (batch_size,), generator=generator)
            digits = self.digits[pick]
            following = unrelated_sentences(batch_size, generator) if self.keep_text else None
            ids, labels = caption_batch(self.tokenizer, digits, following)
            targets = labels[:, 1:]  # (B, T - 1): position t predicts token t + 1
            on_caption = torch.arange(targets.size(1))[None] < self.caption_lengths[digits][:, None]
            keep = ~on_caption & (targets != IGNORE_INDEX) if self.keep_text else None
            yield Batch(self.images[pick], ids[:, :-1], targets.masked_fill(~on_caption, IGNORE_INDEX), keep)


def eyes_loss(model, batch, cfg):
    """Cross-entropy on each caption's tokens, plus, on every position marked `keep` (the sentence after the
    caption), KL(the LM alone ‖ the model): the model is asked to predict there exactly what the frozen LM predicts
    without the image. Summed over both kinds of position, and their count (training/loss.py's convention)."""
    logits = model(batch.images, batch.tokens)  # (B, T, vocab)
    total, count = next_token_loss(logits, batch.targets, cfg.label_smoothing)
    if batch.keep is None:
        return total, count
    with torch.no_grad():
        alone = unwrap(model).lm(input_ids=batch.tokens).logits  # no image: every FlamingoLayer lets the text through
    keep = F.kl_div(logits[batch.keep].float().log_softmax(-1), alone[batch.keep].float().log_softmax(-1),
                    log_target=True, reduction="sum")
    return total + keep, count + batch.keep.sum()


class TransferTest:
    """What the eyes carry from text to pictures (transfer.measure_transfer), on MNIST test digits: every
    `test_every`-th one. Its "exact_match" is the share of right captions of the digits the LM read."""

    def __init__(self, tokenizer, test_every=1):
        images, digits = load_mnist(train=False)
        self.tokenizer, self.images, self.digits = tokenizer, images[::test_every], digits[::test_every]

    def evaluate(self, model):
        transfer = measure_transfer(model, self.tokenizer, self.images, self.digits)
        return {"exact_match": transfer["read"]["level_one"]["caption"], "transfer": transfer}


@dataclass
class EyesOptions:
    lm: str = ""  # the language model to give eyes: a folder the text task saved ("": the shipped text LM)
    from_scratch: bool = False  # the control: a random LM of the same shape that learns the captions, no gates
    cross_attention_every: int = 2  # a gated layer before every k-th block of the LM
    captions_only: bool = False  # train on the captions alone, with no unrelated sentence after each
    test_every: int = 1  # measure the transfer on every n-th MNIST test image

    def check(self):
        if not 1 <= self.test_every <= 10_000:
            raise ValueError(f"--test-every must be from 1 to 10,000 (it measures every n-th of the 10,000 test "
                             f"images), got {self.test_every}")
        if self.cross_attention_every < 1:
            raise ValueError(f"--cross-attention-every must be 1 or more, got {self.cross_attention_every}")


def _new_model(config, options):
    lm, tokenizer = load_text_lm(folder=options.lm or None)
    if lm.config.n_positions < POSITIONS:
        raise ValueError(f"--lm {options.lm}: its language model reads {lm.config.n_positions} positions, and a "
                         f"caption with the sentence after it takes up to {POSITIONS}: give an LM of {POSITIONS} "
                         "positions or more")
    if options.cross_attention_every > lm.config.n_layer:
        raise ValueError(f"--cross-attention-every {options.cross_attention_every} is more than the LM's "
                         f"{lm.config.n_layer} blocks")
    model = build_eyes(lm, load_captioner().encoder, options.from_scratch, options.cross_attention_every)
    return model, tokenizer


def _data(model, tokenizer, cfg, options, device):
    images, digits = load_mnist(train=True)
    return CaptionSentences(images, digits, tokenizer, keep_text=not options.captions_only), \
        TransferTest(tokenizer, options.test_every)


def _gates(model):
    def record(step, loss):  # how far each gated layer is open, every step (notebook 10's plot)
        gates = model.gates()
        return {"gates": [[round(g, 4) for g in pair] for pair in gates.tolist()]} if gates is not None else None
    return [record]


TASK = Task("eyes", "give the text LM eyes: Flamingo's gated cross-attention, trained on captions only",
            lambda: None, _new_model, _data,
            TrainConfig(epochs=1, batch_size=64, lr=2e-3, weight_decay=0.01, warmup_steps=30, min_lr_ratio=0.1,
                        augment=False, augment_strokes=False),
            EyesOptions, eyes_loss, _gates, architecture="Flamingo",
            model_options=("lm", "from_scratch", "cross_attention_every"))
