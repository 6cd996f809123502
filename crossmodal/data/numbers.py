"""Handwritten numbers: MNIST digits written left to right on one wide canvas, each with its box.

A number of 1 to max_digits digits lies on a canvas 28 high and 28 × max_digits wide (28 × 112 for
4 digits: the reader cuts it into a 4 × 16 grid of 7 × 7 patches). The digits do not sit in fixed
slots: each is cropped to its ink, scaled, given a random gap (or a small overlap) from its
neighbour and a little vertical jitter, and the whole number is placed anywhere, centred, or
written as plain 28 × 28 MNIST tiles side by side. Were the slots fixed, a reader could read
"the digit in slot 2" by position alone and its attention would have nothing to find.

Every pixel is made by integer arithmetic on MNIST's bytes, every choice by a seeded
torch.Generator: the same seed gives the same bytes on every machine (floating-point sums round
differently from one processor to the next). Training numbers use MNIST's training images only,
test numbers its test images only. `test_numbers()` is the fixed, published test set.
"""

from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch

from .augment import augment
from .mnist import load_mnist

DIGIT_SIZE = 28  # MNIST's frame; the canvas is this high and this wide per digit
TEST_SEED = 10  # the published test set (issue #10)
TEST_COUNT = 10_000
STYLES = {"loose": 50, "centred": 25, "tiles": 25}  # how numbers are laid out, in percent of the strings


class Numbers(NamedTuple):
    """A set of written numbers.

    images: (N, 1, 28, W) uint8; texts: the digit strings; boxes: (N, max_digits, 4) pixel boxes
    (top, left, bottom, right), bottom and right exclusive, one per digit in reading order, -1 after
    the last digit. A box is the tightest one around its digit's ink (pixels above 0).
    """

    images: torch.Tensor
    texts: list
    boxes: torch.Tensor

    def __getitem__(self, index):
        """numbers[i] is a field, as in any tuple; numbers[a:b] or numbers[[i, j]] a smaller set of numbers."""
        if isinstance(index, int):
            return tuple.__getitem__(self, index)
        rows = range(len(self.texts))[index] if isinstance(index, slice) else list(index)
        return Numbers(self.images[rows], [self.texts[i] for i in rows], self.boxes[rows])

    def clone(self):
        """A copy whose tensors a caller may change without changing the original."""
        return Numbers(self.images.clone(), list(self.texts), self.boxes.clone())


def canvas_size(max_digits=4):
    """(height, width) of the canvas for numbers of up to max_digits digits."""
    return DIGIT_SIZE, DIGIT_SIZE * max_digits


def as_bytes(images):
    """MNIST's float images in [0, 1] (as load_mnist gives them) back to their uint8 bytes, exactly."""
    if images.dtype == torch.uint8:
        return images
    return (images * 255).round().to(torch.uint8)  # k / 255 × 255 rounds back to k: one multiply, no sums


def ink_box(image):
    """(top, left, bottom, right) of the pixels above 0 in an (H, W) array; bottom and right exclusive."""
    rows, cols = np.flatnonzero(image.any(1)), np.flatnonzero(image.any(0))
    if len(rows) == 0:
        raise ValueError("the digit image is blank: it has no pixel above 0")
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def resize(image, height, width):
    """(h, w) uint8 -> (height, width) uint8, bilinear (pixel centres aligned), in integer arithmetic.

    The weights are fractions over 2 × the output size, so nothing is rounded but the final
    division: the same bytes on every machine. Numpy, as a number is dozens of tiny operations.
    """
    x = np.asarray(image, dtype=np.int64)
    r0, r1, fr = _taps(x.shape[0], height)
    c0, c1, fc = _taps(x.shape[1], width)
    dy, dx = 2 * height, 2 * width
    rows = x[r0] * (dy - fr)[:, None] + x[r1] * fr[:, None]  # (height, w) × dy
    out = rows[:, c0] * (dx - fc) + rows[:, c1] * fc  # (height, width) × dy·dx
    return ((out + dy * dx // 2) // (dy * dx)).astype(np.uint8)


def _taps(src, dst):
    """For each output pixel: the two source pixels it lies between and the weight of the second (of 2·dst)."""
    pos = np.maximum((2 * np.arange(dst) + 1) * src - dst, 0)  # source position × 2·dst: (i + ½)·src/dst − ½
    lo = np.minimum(pos // (2 * dst), src - 1)
    frac = np.where(lo >= src - 1, 0, pos % (2 * dst))  # past the last pixel: that pixel alone
    return lo, np.minimum(lo + 1, src - 1), frac


class Draws:
    """Random whole numbers for one string, all drawn at once from a torch.Generator (one call, not dozens)."""

    COUNT = 64  # more than any string needs

    def __init__(self, generator):
        self.values = torch.randint(0, 1 << 30, (self.COUNT,), generator=generator).tolist()

    def __call__(self, low, high):
        """A whole number from low to high, both included (bias of the modulo: under 1e-4 for ranges to 60,000)."""
        return low + self.values.pop() % (high - low + 1)


def compose(digits, width, draw, style=None):
    """Write one number: digits, a list of (28, 28) uint8 arrays (MNIST images), left to right.

    Returns the canvas (28, width) uint8 and the digits' ink boxes, a list of (top, left, bottom, right).
    draw: a `Draws`. style: "loose" (scaled digits, random gaps and jitter, anywhere on the
    canvas), "centred" (the same, centred) or "tiles" (the 28 × 28 images as they are, side by
    side); None picks one at random (see STYLES).
    """
    n = len(digits)
    if not 1 <= n <= width // DIGIT_SIZE:
        raise ValueError(f"a canvas {width} wide holds 1 to {width // DIGIT_SIZE} digits, got {n}")
    if style is None:
        roll, style = draw(0, 99), "loose"
        for name, percent in STYLES.items():
            if roll < percent:
                style = name
                break
            roll -= percent
    if style == "tiles":
        pieces, left = list(digits), draw(0, width - DIGIT_SIZE * n)
        places = [(0, left + DIGIT_SIZE * i) for i in range(n)]
    elif style in ("loose", "centred"):
        pieces, places = _loose(digits, width, draw, centred=style == "centred")
    else:
        raise ValueError(f"style must be one of {sorted(STYLES)} or None, got {style!r}")

    canvas = np.zeros((DIGIT_SIZE, width), dtype=np.uint8)
    boxes = []
    for piece, (top, left) in zip(pieces, places):
        h, w = piece.shape
        region = canvas[top : top + h, left : left + w]
        np.maximum(region, piece, out=region)  # where digits overlap, the stronger stroke wins
        ink_top, ink_left, ink_bottom, ink_right = ink_box(piece)
        boxes.append((top + ink_top, left + ink_left, top + ink_bottom, left + ink_right))
    return canvas, boxes


def _loose(digits, width, draw, centred):
    """Each digit cropped to its ink and scaled; random gaps, overlaps and jitter. -> (pieces, (top, left) each)."""
    crops = [d[top:bottom, left:right] for d in digits for top, left, bottom, right in [ink_box(d)]]
    size = draw(14, 26)  # this writer's digit height (MNIST's: 20 of 28; with jitter up to the full 28)
    heights = [min(max(size + draw(-2, 2), 8), DIGIT_SIZE) for _ in crops]
    spacing = draw(0, 10)  # this writer's widest gap: some write tightly
    gaps = [draw(-2, spacing) for _ in crops[1:]]  # below 0: the digits overlap a little
    line = (DIGIT_SIZE - size) // 2 + draw(-3, 3)  # this number's top line
    jitter = [draw(-2, 2) for _ in crops]

    def widths():  # scaled to its height, each digit keeps its aspect
        return [max(1, (c.shape[1] * h + c.shape[0] // 2) // c.shape[0]) for c, h in zip(crops, heights)]

    while sum(widths()) + sum(max(g, 0) for g in gaps) > width - 2:  # too wide for the canvas: write smaller
        heights = [max(h - 1, 4) for h in heights]
    ws = widths()
    gaps = [max(g, -(min(a, b) // 4)) for g, a, b in zip(gaps, ws, ws[1:])]  # overlap at most a quarter digit
    total = sum(ws) + sum(gaps)
    x = (width - total) // 2 if centred else draw(0, width - total)
    pieces, places = [], []
    for i, (crop, h, w) in enumerate(zip(crops, heights, ws)):
        top = min(max(line + (size - h) // 2 + jitter[i], 0), DIGIT_SIZE - h)
        pieces.append(resize(crop, h, w))
        places.append((top, x))
        x += w + (gaps[i] if i < len(gaps) else 0)
    return pieces, places


def make_numbers(images, labels, count, generator, max_digits=4, lengths=None, style=None, transform=None):
    """`count` numbers written with digits drawn at random from (images, labels).

    images: (N, 1, 28, 28), uint8 or load_mnist's floats; labels: (N,). lengths: each number's
    digit count (default: uniform from 1 to max_digits). Leading zeros happen: it is reading,
    not arithmetic. transform: called once as transform(digits, generator) on the digits of all
    the numbers, (n, 28, 28) uint8 -> the same, before they are written (training's `pose_digits`;
    one call for the batch rather than one per number, which took a third of a reader's step).
    Returns `Numbers`.
    """
    pool, labels = as_bytes(images)[:, 0].numpy(), labels.tolist()  # (N, 28, 28)
    if lengths is not None and (len(lengths) != count or not all(1 <= n <= max_digits for n in lengths)):
        raise ValueError(f"lengths must be {count} digit counts from 1 to {max_digits}")
    width = canvas_size(max_digits)[1]
    canvases = np.zeros((count, 1, DIGIT_SIZE, width), dtype=np.uint8)
    boxes = torch.full((count, max_digits, 4), -1, dtype=torch.long)
    draws, picked = [], []
    for i in range(count):  # every number's draws first, then its digits posed all at once, then written
        draw = Draws(generator)
        n = lengths[i] if lengths is not None else draw(1, max_digits)
        draws.append(draw)
        picked.append([draw(0, len(pool) - 1) for _ in range(n)])
    every = [p for picks in picked for p in picks]
    digits = pool[every] if transform is None else transform(pool[every], generator)  # (all digits, 28, 28)
    texts, start = [], 0
    for i, (draw, picks) in enumerate(zip(draws, picked)):
        n = len(picks)
        canvases[i, 0], placed = compose(list(digits[start : start + n]), width, draw, style)
        boxes[i, :n] = torch.tensor(placed)
        texts.append("".join(str(labels[p]) for p in picks))
        start += n
    return Numbers(torch.from_numpy(canvases), texts, boxes)


def test_numbers(max_digits=4, count=TEST_COUNT):
    """The fixed test set: `count` numbers from MNIST's test images, as many of each length, seed TEST_SEED.

    The same bytes on every machine (tests/test_numbers.py checks their SHA-256). Made once per process; each
    call hands out its own copy, so changing it changes nothing for the next caller.
    """
    return _test_numbers(max_digits, count).clone()


@lru_cache(maxsize=2)
def _test_numbers(max_digits, count):
    images, labels = load_mnist(train=False)
    lengths = [i % max_digits + 1 for i in range(count)]  # 1, 2, 3, 4, 1, 2, ...: balanced
    return make_numbers(images, labels, count, torch.Generator().manual_seed(TEST_SEED), max_digits, lengths)


def pose_digits(digits, generator, elastic=0.0):
    """Each digit of (n, 28, 28) uint8 turned, scaled and shifted a little at random (augment.augment), as bytes;
    elastic > 0: also warped smoothly, this strong.

    Per digit, not per canvas: one writer slants each digit differently. Floating point, so unlike
    the rest of this file the bytes may differ in rare pixels from one processor to the next.
    """
    x = torch.from_numpy(digits).unsqueeze(1).float() / 255  # (n, 1, 28, 28)
    moved = augment(x, generator, elastic=elastic)
    return (moved[:, 0] * 255).round().clamp(0, 255).to(torch.uint8).numpy()
