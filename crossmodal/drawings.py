"""Whether a picture is a drawing at all: one rule for the drawing pads, the caption command and read_number.

A model trained on digits names a digit for anything it is shown, noise and photos included, and sounds sure of
it. So before it reads a picture, three things it was never trained on are refused, with a sentence:

- scattered specks: most ink pixels have no ink beside them (sparse noise, a dithered photo), which no pen draws;
- ink to the edges: the paper is the picture's border (images.find_ink), so a picture whose border is largely
  ink has no paper around a drawing (noise, a gradient, a photograph). Measured: at most 3.6% of the border of
  every other MNIST test digit is ink, 16% of a ring touching all four sides; 45% of uniform noise's, 48% of a
  gradient's, 29% of a blurred photo-like picture's;
- a blot: once made the model's input, ink covers most of it (dense noise). MNIST's most inked digit covers 40%
  of its frame; strokes drawn on a pad far less.
"""

import torch
import torch.nn.functional as F

from .images import border, drawn_ink

STRAIGHT_NEIGHBOURS = torch.tensor([[[[0.0, 1, 0], [1, 0, 1], [0, 1, 0]]]])  # a pixel's four straight neighbours
LONE_INK = 0.2  # more than this share of ink pixels without a straight neighbour: specks, not strokes
BLOT = 0.45  # more than this share of the model's input inked (above half-way): a blot, not strokes
EDGE_INK = 0.25  # more than this share of the picture's border inked: no paper around it


class NotADrawing(ValueError):
    """The picture is not ink drawn in strokes (noise, a blot): what the model would write for it means nothing."""


def check_strokes(picture, thing="digit", advice=None):
    """Refuse (NotADrawing) a picture, in any form preprocess_drawing takes, whose ink is scattered specks, or runs
    to its edges all round."""
    _, ink = drawn_ink(picture)
    if not ink.any():
        return  # blank: preprocessing says so in its own words
    advice = advice or f"give a picture of a {thing}"
    neighbours = F.conv2d(ink[None, None].float(), STRAIGHT_NEIGHBOURS, padding=1)[0, 0]
    if ((neighbours == 0) & ink).sum() > LONE_INK * ink.sum():
        raise NotADrawing(f"These are scattered specks, not a {thing} drawn with strokes: {advice}.")
    if border(ink.float()).mean() > EDGE_INK:
        raise NotADrawing(f"This fills the picture to its edges like a blot or noise (or a photograph), not a {thing} "
                          f"drawn with strokes on paper: {advice}.")


def check_not_a_blot(seen, thing="digit", advice=None):
    """Refuse (NotADrawing) the model's input `seen` ((1, H, W) in [0, 1]) when ink covers most of it; returns it."""
    if (seen > 0.5).float().mean() > BLOT:
        raise NotADrawing(f"This fills the box like a blot or noise, not a {thing} drawn with strokes: "
                          f"{advice or f'give a picture of a {thing}'}.")
    return seen
