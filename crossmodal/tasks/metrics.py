"""Measures of what a model wrote and where it looked, shared by the tasks that read numbers.

- `edit_distance`, `character_error_rate`: the usual OCR measures;
- `alignment`: for each character written correctly, does the peak of its map fall inside the box of the
  thing it names (a digit)? Chance is what a peak at a random patch would score: the share of the patches the
  box covers.
"""

import torch

from ..nn.layers import pair


def edit_distance(a, b):
    """Levenshtein distance: the fewest insertions, deletions and substitutions that turn a into b."""
    previous = list(range(len(b) + 1))  # distances from a[:0] to each prefix of b
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def character_error_rate(predictions, references):
    """Σ edit distance / Σ reference length over a whole set (long strings weigh more, as in OCR benchmarks)."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    total = sum(len(r) for r in references)
    if total == 0:
        raise ValueError("the references are empty: the character error rate divides by their length")
    return sum(edit_distance(p, r) for p, r in zip(predictions, references)) / total


def box_patches(box, patch_size):
    """A pixel box (top, left, bottom, right) -> the patches it touches, (row0, col0, row1, col1), ends exclusive."""
    (ph, pw), (top, left, bottom, right) = pair(patch_size), box
    return top // ph, left // pw, -(-bottom // ph), -(-right // pw)


def alignment(maps, predictions, references, boxes, patch_size):
    """For each digit written correctly, whether the peak of its map lies inside that digit's box.

    maps: (B, T, L, H, grid_h, grid_w) as `read` gives; boxes: (B, D, 4) pixel boxes (see numbers.Numbers);
    digit i of a prediction is correct when it equals digit i of the reference.
    Returns per_layer (L,) for the head-averaged maps, per_head (L, H), chance (the mean share of
    patches the boxes cover) and count (the digits scored).
    """
    B, _, L, H, gh, gw = maps.shape
    chosen, inside = [], []
    for b, (p, r) in enumerate(zip(predictions, references)):
        for i in range(min(len(p), len(r))):
            if p[i] == r[i]:
                r0, c0, r1, c1 = box_patches(boxes[b][i].tolist(), patch_size)
                mask = torch.zeros(gh, gw, dtype=torch.bool)
                mask[r0:r1, c0:c1] = True
                chosen.append((b, i))
                inside.append(mask.flatten())
    if not chosen:
        return {"per_layer": [0.0] * L, "per_head": [[0.0] * H for _ in range(L)], "chance": 0.0, "count": 0}
    index = torch.tensor(chosen)  # (K, 2)
    inside = torch.stack(inside)  # (K, N)
    selected = maps[index[:, 0], index[:, 1]].flatten(-2)  # (K, L, H, N)
    per_head = inside.gather(1, selected.argmax(-1).flatten(1)).view(-1, L, H).float().mean(0)  # (L, H)
    per_layer = inside.gather(1, selected.mean(2).argmax(-1)).float().mean(0)  # (L,): peak of the head mean
    return {"per_layer": per_layer.tolist(), "per_head": per_head.tolist(),
            "chance": inside.float().mean().item(), "count": len(chosen)}
