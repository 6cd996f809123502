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

    The paper's shade is the median of the border. The ink is whatever departs furthest from it, darker or
    lighter (dark ink on white paper, chalk on a blackboard, pale ink on grey card alike): dark ink is flipped to
    MNIST's white on black, then the paper is stretched to 0 and the strongest possible ink to 1.
    """
    background = border(image).median()  # the border is paper
    darker, lighter = (background - image).clamp(min=0), (image - background).clamp(min=0)
    if darker.max() > lighter.max():  # dark ink on light paper: flip to MNIST's white on black
        image = darker / background.clamp(min=1e-6)
    else:
        image = lighter / (1 - background).clamp(min=1e-6)
    image = image.clamp(0, 1)
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
    (B, C, H, W), as uint8 0–255, 16-bit 0–65535 or float 0–1. Anything else is refused with the reason,
    its shape before its pixels are converted (a huge array costs nothing to refuse).
    """
    x = _pixels(images)
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
    return _in_unit_range(x)


MAX_SIDE = 2048  # a picture to preprocess is first reduced to this many pixels on its longest side: ample for a
# model that reads 28-pixel-high ink, and a 20000 × 20000 array or a 9000 × 9000 PNG then costs little memory


def _as_tensor(image, reduce=False):
    """uint8 0–255, 16-bit 0–65535, other whole numbers (stretched from darkest to lightest) or float 0–1 (tensor,
    numpy or PIL) -> float tensor in [0, 1]. reduce: a picture larger than MAX_SIDE is first subsampled to it."""
    x = _pixels(image)
    return _in_unit_range(_reduced(x, channels_last=not isinstance(image, torch.Tensor)) if reduce else x)


def _pixels(image):
    """The picture's pixels as a tensor, not yet converted (a numpy array's memory is shared), or a PIL image's
    as floats in [0, 1]."""
    if not isinstance(image, (torch.Tensor, np.ndarray)):
        if not hasattr(image, "getbands"):
            raise TypeError(f"expected a torch tensor, numpy array or PIL image, got {type(image).__name__}")
        return _pil_pixels(image)
    if isinstance(image, np.ndarray) and image.dtype.kind not in "biuf":
        raise TypeError(f"expected pixels of real numbers, got a numpy array of {image.dtype}")
    if isinstance(image, np.ndarray) and not image.flags.writeable:  # np.asarray(a PIL image): torch would warn
        image = image.copy()
    x = torch.as_tensor(image)
    if x.is_complex():
        raise TypeError(f"expected pixels of real numbers, got {x.dtype}")
    if x.numel() == 0:
        raise ValueError("the image is empty (it has no pixels)")
    return x


def _in_unit_range(x):
    """Pixels of any number type -> float in [0, 1], or a ValueError saying what is wrong with them."""
    if x.dtype == torch.bool:
        return x.float()
    if x.dtype == torch.uint8:
        return x.float() / 255
    if x.dtype == torch.uint16:
        return x.to(torch.int32).float() / 65535
    if not x.is_floating_point():  # 32- or 64-bit whole numbers have no fixed range: darkest to lightest
        x = x.double()
        lo, hi = x.min(), x.max()
        return ((x - lo) / (hi - lo).clamp(min=1e-12)).float()
    x = x.float()
    if not torch.isfinite(x).all():
        raise ValueError("the image contains NaN or infinite values")
    if x.min() < 0 or x.max() > 1:
        raise ValueError(
            f"float pixels must lie in [0, 1], got values from {x.min().item():.3g} to {x.max().item():.3g}; "
            "divide 0–255 values by 255"
        )
    return x


def _reduced(x, channels_last):
    """x (H, W), (H, W, C) (numpy and PIL's order) or (C, H, W) (torch's), subsampled by a whole step so that its
    longest side is at most MAX_SIDE."""
    spatial = (0, 1) if x.dim() == 2 or channels_last else (1, 2)
    if x.dim() not in (2, 3):
        return x
    step = -(-max(x.shape[d] for d in spatial) // MAX_SIDE)
    if step <= 1:
        return x
    index = [slice(None)] * x.dim()
    for d in spatial:
        index[d] = slice(None, None, step)
    return x[tuple(index)]


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


def drawn_ink(drawing):
    """A drawing in any form preprocess_drawing takes -> (it as white ink on black (H, W) float, its ink mask (H, W)).
    Pictures larger than MAX_SIDE are reduced first."""
    x = _as_tensor(drawing, reduce=True)
    if x.dim() == 3:  # to (C, H, W): tensors are channels-first, numpy and PIL channels-last
        x = _grey(x if isinstance(drawing, torch.Tensor) else x.permute(2, 0, 1))
    if x.dim() != 2:
        raise ValueError(f"expected an image shaped (H, W) or with colour channels, got {tuple(x.shape)}")
    return find_ink(x)


def _ink_crop(drawing, what):
    """A drawing (see preprocess_drawing) as white ink on black, cropped to its ink: (h, w) float."""
    x, ink = drawn_ink(drawing)
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


# Pictures are opened as these raster formats only (raster_formats()): Pillow hands EPS and PostScript to the
# external Ghostscript program, which would run whatever program the file holds. MPO, a phone's JPEG holding more
# than one picture, is opened by the JPEG opener.
RASTER_FORMATS = ("PNG", "JPEG", "MPO", "GIF", "BMP", "TIFF", "WEBP", "PPM", "TGA")


def raster_formats():
    """The formats to open picture files as, Image.open(path, formats=raster_formats()): RASTER_FORMATS's openers
    that this Pillow has."""
    from PIL import Image

    Image.init()
    return [f for f in RASTER_FORMATS if f in Image.OPEN]


def _pil_pixels(picture):
    """A PIL image as a float tensor in [0, 1]: (H, W) grey, or (H, W, C) with C = 2 (grey + alpha), 3 or 4.

    Turned upright by its EXIF orientation (phone photos); palette (GIF) colours looked up rather
    than read as palette indices; 16-bit greys divided by 65535; 32-bit integer or float greys,
    which have no fixed range, stretched from their darkest to their lightest value. A picture opened from a file
    of another format than RASTER_FORMATS (an EPS) is refused before it is decoded.
    """
    from PIL import ImageOps

    if picture.format is not None and picture.format not in RASTER_FORMATS:
        raise ValueError(f"{picture.format} pictures are not read (crossmodal reads {', '.join(RASTER_FORMATS)}): "
                         "save it as a PNG first")
    if 0 in picture.size:
        raise ValueError("the image is empty (it has no pixels)")
    picture = ImageOps.exif_transpose(picture)
    sixteen_bit = picture.mode.startswith("I;16")
    if max(picture.size) > MAX_SIDE:  # reduced before it is converted: a 9000 × 9000 PNG costs what a small one does
        step = -(-max(picture.size) // MAX_SIDE)
        reducible = {"P": "RGBA", "PA": "RGBA", "1": "L", "I;16": "I", "I;16L": "I", "I;16B": "I"}
        picture = picture.convert(reducible.get(picture.mode, picture.mode)).reduce(step)
    if sixteen_bit or picture.mode in ("I", "F"):
        x = torch.from_numpy(np.asarray(picture, dtype=np.float64))
        lo, hi = (0.0, 65535.0) if sixteen_bit else (x.min().item(), x.max().item())
        return ((x - lo) / max(hi - lo, 1e-12)).clamp(0, 1).float()
    if picture.mode not in ("L", "LA", "RGB", "RGBA"):  # P (palette), PA, 1, CMYK, YCbCr, ...
        has_alpha = "A" in picture.getbands() or "transparency" in picture.info
        picture = picture.convert("RGBA" if has_alpha else "RGB")
    return torch.from_numpy(np.array(picture)).float() / 255
