"""The one loss convention: next-token cross-entropy, summed over the positions whose target is not IGNORE_INDEX
(-100, as in PyTorch and transformers), and how many they are.

A task's loss returns (sum, count) rather than a mean, so that the trainer can divide by the count over every
process (distributed.py): the mean of a global batch, however its rows are split.
"""

import torch.nn.functional as F

from ..nn.model import IGNORE_INDEX


def next_token_loss(logits, targets, label_smoothing=0.0):
    """logits (B, T, vocab), targets (B, T) -> (summed cross-entropy, number of counted positions)."""
    total = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE_INDEX,
                            reduction="sum", label_smoothing=label_smoothing)
    return total, (targets != IGNORE_INDEX).sum()


def vision_language_loss(model, batch, cfg):
    """The loss of a VisionLanguageModel (captions, numbers, questions): it reads the images and the tokens."""
    return next_token_loss(model(batch.images, batch.tokens), batch.targets, cfg.label_smoothing)
