"""The input contract: what pictures the models accept, and one rule for "blank".

Images everywhere in crossmodal are float tensors in [0, 1], white ink on black, (B, 1, 28, 28)
for the MNIST captioner; the encoder normalises them itself (its mean/std travel with it).

- `to_image_batch` checks and converts what a caller hands the model (tensor, numpy or PIL);
- `preprocess_drawing` turns a drawing of any size or colour into an MNIST-like image;
- `preprocess_number` places a written number of any size on a reader's wide canvas;
- `find_ink` is the one rule for ink: a pixel that stands out from the paper (the border) by
  more than INK_THRESHOLD. An image without ink is blank, and `BlankImageError` says so.
"""

import sys
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

INK_THRESHOLD = 0.1  # a pixel is ink when it is over 10% of the way from the paper's shade to full ink


class BlankImageError(ValueError):
    """The picture holds no ink: there is nothing to caption."""


class NotMNISTLikeWarning(UserWarning):
    """An image does not look like MNIST's white digit on a black margin: its caption means little."""


EDGE_LIMIT = 0.25  # MNIST's outer 2-pixel ring averages under 0.04 in every test image; inverted ones 0.97, noise 0.5


def find_ink(image):
    """(H, W) in [0, 1] -> (the image as white ink on black paper, bool (H, W) mask of its ink).

    The paper's shade is the median of the border; dark ink on light paper is flipped first,
    then the paper is stretched to 0 and full ink stays 1.
    """
    background = border(image).median()  # the border is paper
    if background > 0.5:
        image, background = 1 - image, 1 - background  # dark ink on light paper: flip to MNIST's white on black
    image = ((image - background) / (1 - background)).clamp(0, 1)
    return image, image > INK_THRESHOLD


def border(image):
    """The outermost pixels of an (H, W) image, as one vector: where the paper shows."""
    return torch.cat([image[0], image[-1], image[:, 0], image[:, -1]])


def check_not_blank(images):
    """Raise BlankImageError for the first image of a batch (B, C, H, W) that has no ink."""
    for i, image in enumerate(images):
        if not find_ink(image.mean(0))[1].any():
            raise BlankImageError(f"image {i} is blank (no ink to caption): draw or pick a digit first")


def check_mnist_like(images):
    """Warn (NotMNISTLikeWarning) for images of a batch (B, C, H, W) whose outer 2-pixel ring is bright.

    MNIST's digits are white ink centred on black, with an empty margin. A bright edge means dark
    ink on light paper (an inverted digit: use 1 - image, or preprocess_drawing), noise, or a photo:
    the model would still name a digit, confidently and meaninglessly. Returns the indices warned about.
    """
    edge = torch.ones(images.shape[-2:], dtype=torch.bool, device=images.device)
    edge[2:-2, 2:-2] = False
    brightness = images[..., edge].mean(dim=(1, 2))  # (B,)
    suspicious = (brightness > EDGE_LIMIT).nonzero().flatten().tolist()
    if suspicious:
        i = suspicious[0]
        warnings.warn(f"image {i} does not look like MNIST: its edge is bright ({brightness[i]:.2f} on average) where "
                      "MNIST's digits are white on a black margin; if it is dark ink on light paper, pass 1 - image "
                      "or use preprocess_drawing(); if it is noise, its caption means nothing",
                      NotMNISTLikeWarning, stacklevel=_callers_level())
    return suspicious


def _callers_level():
    """The warnings stack level of the first frame outside crossmodal and torch: the line of the caller's code that
    handed the image over, however many library frames lie between."""
    inside = (str(Path(__file__).parent), str(Path(torch.__file__).parent))
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(inside):
        frame, level = frame.f_back, level + 1
    return level


def to_image_batch(images, image_size=(28, 28), in_chans=1):
    """Check and convert input to a batch (B, in_chans, H, W) float in [0, 1]; (H, W) = image_size.

    Takes a tensor, numpy array or PIL image shaped (H, W) (one channel only), (C, H, W) or
    (B, C, H, W), as uint8 0–255 or float 0–1. Anything else is refused with the reason.
    """
    x = _as_tensor(images)
    shape, (H, W), C = tuple(x.shape), image_size, in_chans
    if x.dim() == 2 and C == 1:
        x = x[None]  # (H, W) -> (1, H, W)
    if x.dim() == 3 and x.size(0) == C:
        x = x[None]  # (C, H, W) -> (1, C, H, W)
    if x.dim() != 4 or x.shape[1:] != (C, H, W):
        if C == 1:
            channels = shape[-1] if len(shape) == 3 and shape[-1] in (3, 4) else shape[-3] if len(shape) >= 3 else 1
            hint = " (it looks like colour: convert to grayscale)" if channels in (3, 4) else ""
            expected = f"{H}×{W} grayscale images shaped ({H}, {W}), (1, {H}, {W}) or (B, 1, {H}, {W})"
        else:
            hint, expected = "", f"{H}×{W} images of {C} channels shaped ({C}, {H}, {W}) or (B, {C}, {H}, {W})"
        if (H, W, C) == (28, 28, 1):
            hint += "; for a picture of any size or colour use crossmodal.preprocess_drawing()"
        elif H == 28 and W % 28 == 0 and C == 1:  # a reader of numbers (see numbers.py)
            hint += f"; for a number of any size use crossmodal.preprocess_number(picture, canvas=({H}, {W}))"
        raise ValueError(f"expected {expected}, got {shape}{hint}")
    return x


def _as_tensor(image):
    """uint8 0–255 or float 0–1 (tensor, numpy or PIL) -> float tensor in [0, 1]."""
    if not isinstance(image, (torch.Tensor, np.ndarray)):
        if not hasattr(image, "getbands"):
            raise TypeError(f"expected a torch tensor, numpy array or PIL image, got {type(image).__name__}")
        return _pil_pixels(image)
    x = torch.as_tensor(image)
    if x.dtype == torch.bool:
        return x.float()
    if x.dtype == torch.uint8:
        return x.float() / 255
    if not x.is_floating_point():
        raise TypeError(f"expected uint8 (0–255) or float (0–1) pixels, got {x.dtype}")
    x = x.float()
    if x.numel() == 0:
        raise ValueError("the image is empty (it has no pixels)")
    if not torch.isfinite(x).all():
        raise ValueError("the image contains NaN or infinite values")
    if x.min() < 0 or x.max() > 1:
        raise ValueError(
            f"float pixels must lie in [0, 1], got values from {x.min().item():.3g} to {x.max().item():.3g}; "
            "divide 0–255 values by 255"
        )
    return x


def preprocess_drawing(drawing):
    """Turn a drawing into what the model expects: (1, 28, 28) float in [0, 1], white on black.

    Any size; white-on-black or black-on-white (or ink on a transparent background); uint8 or
    float; PIL (any mode: palette, 16-bit, EXIF-rotated), numpy (H, W[, C]) or tensor ((C,) H, W).
    MNIST's own recipe: crop to the ink, fit it in a 20×20 box keeping its aspect, then centre its
    centre of mass in a 28×28 frame.
    Raises BlankImageError when there is no ink (see `find_ink`).
    """
    x = _ink_crop(drawing, "a digit")
    h, w = x.shape
    scale = 20 / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    x = _scaled(x, size, scale)

    ys, xs = torch.arange(size[0], dtype=torch.float32), torch.arange(size[1], dtype=torch.float32)
    mass = x.sum()
    cy, cx = (x.sum(1) @ ys) / mass, (x.sum(0) @ xs) / mass  # centre of mass in the box
    top, left = round(13.5 - cy.item()), round(13.5 - cx.item())  # pixel centres: 13.5 is the middle
    top, left = min(max(top, 0), 28 - size[0]), min(max(left, 0), 28 - size[1])
    out = torch.zeros(28, 28)
    out[top : top + size[0], left : left + size[1]] = x
    return out[None]


NUMBER_INK_HEIGHT = 20  # a number's ink height on the reader's canvas: MNIST's digits are 20 of 28
SMALLEST_INK_HEIGHT = 10  # squeezed lower to fit the width, digits are too small to read


def preprocess_number(drawing, canvas=(28, 112)):
    """Place a written number of any size on the reader's canvas: (1, H, W) float in [0, 1], white on black.

    Takes what preprocess_drawing takes. Crops to the ink, scales it to 20 pixels high keeping its
    aspect (less, if it would not fit the canvas's width), and centres it. Raises BlankImageError
    when there is no ink, and ValueError for a dot (ink under 3 × 3 pixels) or a number so wide
    that it would be under 10 pixels high (more digits than the canvas holds: about W / 28).
    """
    x = _ink_crop(drawing, "a number")
    (h, w), (H, W) = x.shape, canvas
    check_not_a_dot(h, w)
    scale = min(NUMBER_INK_HEIGHT / h, (W - 2) / w)  # a pixel of margin on each side
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    if size[0] < SMALLEST_INK_HEIGHT:
        raise ValueError(f"the number is too wide to read: its ink is {w / h:.1f} times as wide as high, and the "
                         f"canvas {H}×{W} fits at most {(W - 2) / SMALLEST_INK_HEIGHT:.1f} (about {W // H} digits): "
                         "write fewer digits, or crop the picture to one number")
    out = torch.zeros(H, W)
    top, left = (H - size[0]) // 2, (W - size[1]) // 2
    out[top : top + size[0], left : left + size[1]] = _scaled(x, size, scale)
    return out[None]


def check_not_a_dot(height, width):
    """Refuse ink of height × width pixels under 3 × 3 (a tap, a speck): it is not a number."""
    if height < 3 and width < 3:
        raise ValueError(f"the drawing is a dot ({height}×{width} pixels of ink), not a number: write digits")


def _ink_crop(drawing, what):
    """A drawing (see preprocess_drawing) as white ink on black, cropped to its ink: (h, w) float."""
    x = _as_tensor(drawing)
    if x.dim() == 3:  # to (C, H, W): tensors are channels-first, numpy and PIL channels-last
        x = _grey(x if isinstance(drawing, torch.Tensor) else x.permute(2, 0, 1))
    if x.dim() != 2:
        raise ValueError(f"expected an image shaped (H, W) or with colour channels, got {tuple(x.shape)}")
    x, ink = find_ink(x)
    if not ink.any():
        raise BlankImageError(f"the drawing is blank: draw {what} first")
    rows, cols = ink.any(1).nonzero().squeeze(1), ink.any(0).nonzero().squeeze(1)
    return x[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _scaled(x, size, scale):
    """(h, w) -> size, smoothly (antialiased when shrinking), at full contrast like MNIST's strokes."""
    x = F.interpolate(x[None, None], size=size, mode="bilinear", antialias=scale < 1, align_corners=False)[0, 0]
    return (x / x.max()).clamp(0, 1)


def _grey(x):
    """(C, H, W) grey, grey + alpha, RGB or RGBA -> (H, W) grey.

    Alpha is the ink only when the paper (the border) is transparent, as on a drawing canvas.
    On opaque paper, see-through pixels (rounded corners, say) show the paper's shade.
    """
    C = x.size(0)
    if C not in (1, 2, 3, 4):
        raise ValueError(f"expected 1 to 4 colour channels (grey, grey + alpha, RGB, RGBA), "
                         f"got an image shaped {tuple(x.shape)}")
    grey = x[:3].mean(0) if C >= 3 else x[0]
    if C in (2, 4):
        alpha = x[-1]
        if border(alpha).median() < 0.5:  # transparent paper: the ink is wherever the picture is opaque
            return alpha
        paper = border(grey)[border(alpha) >= 0.5].median()
        grey = alpha * grey + (1 - alpha) * paper
    return grey


def _pil_pixels(picture):
    """A PIL image as a float tensor in [0, 1]: (H, W) grey, or (H, W, C) with C = 2 (grey + alpha), 3 or 4.

    Turned upright by its EXIF orientation (phone photos); palette (GIF) colours looked up rather
    than read as palette indices; 16-bit greys divided by 65535; 32-bit integer or float greys,
    which have no fixed range, stretched from their darkest to their lightest value.
    """
    from PIL import ImageOps

    picture = ImageOps.exif_transpose(picture)
    if picture.mode in ("I;16", "I;16L", "I;16B", "I", "F"):
        x = torch.from_numpy(np.asarray(picture, dtype=np.float64))
        lo, hi = (0.0, 65535.0) if picture.mode.startswith("I;16") else (x.min().item(), x.max().item())
        return ((x - lo) / max(hi - lo, 1e-12)).clamp(0, 1).float()
    if picture.mode not in ("L", "LA", "RGB", "RGBA"):  # P (palette), PA, 1, CMYK, YCbCr, ...
        has_alpha = "A" in picture.getbands() or "transparency" in picture.info
        picture = picture.convert("RGBA" if has_alpha else "RGB")
    return torch.from_numpy(np.array(picture)).float() / 255
