"""How well a reader reads numbers, and whether it looks where it reads.

- `edit_distance`, `character_error_rate`: the usual OCR measures;
- `read`: greedy reading of a batch, with each character's cross-attention maps; `read_number`: one picture;
- `alignment`: for each digit written correctly, does the peak of its map fall on that digit?
- `evaluate_reading`: all of it over a `numbers.Numbers` set, as one report.

The alignment score asks one plain question of a map: of all patches, the one the character
looked at most, is it inside the digit's box? Chance is what a peak at a random patch would score:
the share of the patches the box covers.
"""

import numpy as np
import torch

from .inputs import check_not_a_dot, find_ink, preprocess_number
from .layers import pair


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


@torch.inference_mode()
def read(model, images, batch_size=500):
    """Greedy reading: (texts, maps), maps (B, T, layers, heads, grid_h, grid_w) with T = block_size.

    maps[b, i] is where character i of texts[b] looked (zeros past the end of the text).
    """
    texts, maps = [], []
    T, grid = model.config.decoder.block_size, model.encoder.grid_size
    for start in range(0, len(images), batch_size):
        generated, attention = model.generate(images[start : start + batch_size], return_attention=True)
        texts += model.decode(generated)
        attention = attention.unflatten(-1, grid).cpu()  # (B, t, L, H, N) -> (B, t, L, H, grid_h, grid_w)
        maps.append(torch.cat([attention, attention.new_zeros(attention.size(0), T - attention.size(1),
                                                              *attention.shape[2:])], dim=1))
    return texts, torch.cat(maps)


def read_number(model, picture):
    """The number in one picture, as text: a picture of the reader's canvas size is read as it is, any other
    (a drawing, someone else's composition) is first placed on the canvas by inputs.preprocess_number.

    A reader writes at most block_size - 2 digits (4 for the shipped one). A picture holding more
    separate pieces of ink side by side than that is refused with a ValueError rather than read as
    a shorter number; digits that touch make one piece, so such a number can still come back short.
    """
    height, width = pair(model.config.vision.image_size)
    x = torch.as_tensor(np.asarray(picture)) if not isinstance(picture, torch.Tensor) else picture
    if tuple(x.shape[-2:]) != (height, width) or x.dim() > 3:
        x = preprocess_number(picture, canvas=(height, width))
    image = x.float().reshape(height, width) / (255 if x.dtype == torch.uint8 else 1)
    ink = find_ink(image)[1]
    if ink.any():  # preprocess_number's rule for pictures of other sizes
        check_not_a_dot(int(ink.any(1).sum()), int(ink.any(0).sum()))
    check_digit_count(model, image)
    return model.caption(x).text


def check_digit_count(model, image):
    """Refuse (ValueError) an (H, W) image on the reader's canvas, in [0, 1], that holds more separate pieces
    of ink side by side than the reader writes digits (block_size - 2: 4 for the shipped one)."""
    most = model.config.decoder.block_size - 2  # <bos> digits <eos>
    pieces = ink_pieces(image)
    if pieces > most:
        raise ValueError(f"the picture holds {pieces} separate pieces of ink side by side, more than {most} digits: "
                         f"this reader reads numbers of 1 to {most} digits; write or crop fewer")


def ink_pieces(image, min_width=3, min_height=0.6):
    """How many runs of columns with ink an (H, W) image holds, left to right: the separate pieces of a
    written number (a digit is one run, as its strokes overlap in x; touching digits make one together).
    A run counts when it is at least min_width pixels wide and its ink at least min_height × as tall as
    the tallest run's: specks and the loose end of a broken stroke are not digits. Measured: 1 of the
    10,000 numbers of numbers.test_set() counts as 5 pieces; 496 of 500 five-digit numbers of plain tiles do."""
    _, ink = find_ink(image)
    columns = ink.any(0).int()  # (W,): 1 where a column holds ink
    edges = torch.diff(torch.cat([columns.new_zeros(1), columns, columns.new_zeros(1)]))
    starts, ends = (edges == 1).nonzero().flatten().tolist(), (edges == -1).nonzero().flatten().tolist()
    heights = []
    for start, end in zip(starts, ends):
        rows = ink[:, start:end].any(1).nonzero().flatten()
        heights.append((end - start, int(rows[-1] - rows[0]) + 1))
    tallest = max((h for _, h in heights), default=0)
    return sum(w >= min_width and h >= min_height * tallest for w, h in heights)


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


def evaluate_reading(model, numbers, batch_size=500):
    """Read a `numbers.Numbers` set greedily: exact match, character error rate, accuracy by length, alignment.

    Returns a dict: exact_match, cer, by_length {"1": ..., ...}, alignment (see `alignment`), and
    correct (bool per number) and predictions (the texts written) for a failure gallery.
    """
    model.eval()
    predictions, maps = read(model, numbers.images, batch_size)
    correct = torch.tensor([p == r for p, r in zip(predictions, numbers.texts)])
    lengths = torch.tensor([len(r) for r in numbers.texts])
    by_length = {str(n): correct[lengths == n].float().mean().item() for n in sorted(set(lengths.tolist()))}
    patch = model.config.vision.patch_size
    return {"exact_match": correct.float().mean().item(),
            "cer": character_error_rate(predictions, numbers.texts), "by_length": by_length,
            "alignment": alignment(maps, predictions, numbers.texts, numbers.boxes, patch),
            "correct": correct, "predictions": predictions}
