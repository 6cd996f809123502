"""The one contract between a task's data and the trainer: a stream of batches, and a test set.

A training stream has
    steps_per_epoch(batch_size) -> int
    batches(epoch, batch_size, seed, start=0) -> an iterator of Batch, from batch `start` of `epoch` on
and makes batch i of an epoch from (seed, epoch, i) alone, so a resumed run, or every process of a distributed
one, makes the same batches. A test set has
    evaluate(model) -> a JSON-ready dict with "exact_match" (and whatever else the task measures).
"""

from typing import NamedTuple

import torch

from ..nn.model import IGNORE_INDEX


class Batch(NamedTuple):
    """What a training step reads. tokens (B, T): the text the model reads; targets (B, T): the token each of
    those positions predicts (the next one), IGNORE_INDEX where the loss must not count (padding, a question's
    prompt). images: (B, C, H, W) in [0, 1], or None for text alone. keep: a task's own per-position mask (the
    eyes' "say what the language model says"), or None."""

    images: torch.Tensor | None
    tokens: torch.Tensor
    targets: torch.Tensor
    keep: torch.Tensor | None = None

    def to(self, device):
        return Batch(*(f.to(device, non_blocking=True) if isinstance(f, torch.Tensor) else f for f in self))


def next_token_batch(images, sequences, pad_id):
    """A Batch from whole sequences (B, L) (<bos> text <eos>, then <pad>): the model reads all but the last token,
    and each position predicts the next one; padding is not predicted."""
    targets = sequences[:, 1:]
    return Batch(images, sequences[:, :-1], targets.masked_fill(targets == pad_id, IGNORE_INDEX))
