"""How well a captioner reads: caption exact match over a test set, per digit, and under perturbations.

`evaluate` is what training reports after each epoch; `robustness` is the table the README and
notebook 05 show: the same test images drawn thicker, thinner and blurred (see augment.py), as a
user's pen differs from MNIST's.
"""

import torch

from .augment import PERTURBATIONS
from .data import caption_tokens


@torch.inference_mode()
def evaluate(model, images, labels, batch_size=1000):
    """Caption exact match of greedy decoding over the images, overall and per digit.

    Greedy decoding writes the reference caption exactly when, reading the reference so far, the
    model's most likely next character is the reference one at every position (by induction over
    the positions). So one teacher-forced pass gives the same verdict as writing the caption
    character by character (barring round-off at an exact tie), in a fraction of the time. The
    tests check both ways agree.
    """
    model.eval()
    reference = caption_tokens(model.tokenizer).to(model.device)  # (10, L): <bos> caption <eos>, then <pad>
    labels = labels.cpu()
    correct = torch.zeros(len(labels), dtype=torch.bool)
    for start in range(0, len(labels), batch_size):
        x, y = model.image_batch(images[start : start + batch_size]), labels[start : start + batch_size]
        tokens = reference[y.to(model.device)]  # (B, L)
        predicted = model(x, tokens[:, :-1]).argmax(dim=-1)  # (B, L - 1): greedy choice at each position
        target = tokens[:, 1:]
        match = ((predicted == target) | (target == model.config.pad_id)).all(dim=1)
        correct[start : start + len(y)] = match.cpu()
    per_digit = [correct[labels == d].float().mean().item() for d in range(10)]
    return {"exact_match": correct.float().mean().item(), "per_digit": per_digit, "correct": correct}


def robustness(model, images, labels, batch_size=1000):
    """{"clean": exact match, "thicker": ..., "thinner": ..., "blurred": ...} on the same test images."""
    results = {}
    for name, perturb in PERTURBATIONS.items():
        changed = torch.cat([perturb(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])
        results[name] = evaluate(model, changed, labels, batch_size)["exact_match"]
    return results
