"""MNIST images with captions, and turning any picture into an MNIST-like input.

Images everywhere in crossmodal are float tensors in [0, 1], white digit on black, (B, 1, 28, 28);
the captioner normalises them itself. MNIST comes from torchvision into the folder named by the
CROSSMODAL_DATA environment variable (default: ~/.cache/crossmodal).
"""

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def caption_for(digit):
    """The sentence the captioner learns: caption_for(7) == 'This is the number seven.'"""
    return f"This is the number {DIGIT_WORDS[int(digit)]}."


ALL_CAPTIONS = [caption_for(d) for d in range(10)]


class BlankImageError(ValueError):
    """The picture holds no ink: there is nothing to caption."""


def data_root():
    return Path(os.environ.get("CROSSMODAL_DATA") or Path.home() / ".cache" / "crossmodal")


def load_mnist(train, root=None):
    """All of MNIST's train or test split as tensors: images (N, 1, 28, 28) float in [0, 1], labels (N,)."""
    from torchvision.datasets import MNIST

    root = Path(root) if root is not None else data_root()
    try:
        ds = MNIST(str(root), train=train, download=True)
    except Exception as err:  # no network, read-only folder, corrupt files ...
        raise RuntimeError(
            f"MNIST is not in {root / 'MNIST' / 'raw'} and could not be downloaded ({str(err).splitlines()[0]}); "
            "set the CROSSMODAL_DATA environment variable to a folder that holds MNIST/raw/, "
            "or connect to the internet."
        ) from None
    return ds.data.unsqueeze(1).float().div_(255), ds.targets.clone()


class MNISTCaptions(torch.utils.data.Dataset):
    """MNIST as (image, caption) pairs for a DataLoader: image (1, 28, 28) in [0, 1], caption text.

    Training here indexes the tensors directly (see `batches`), which is far faster on a CPU.
    """

    def __init__(self, train=True, root=None):
        self.images, self.labels = load_mnist(train, root)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], caption_for(self.labels[i])


def caption_tokens(tokenizer):
    """(10, L) token ids of the ten captions, <bos> ... <eos> then <pad>: row d is digit d's caption."""
    return torch.tensor(tokenizer(ALL_CAPTIONS, padding=True)["input_ids"])


def batches(images, labels, batch_size, shuffle=False, generator=None):
    """Yield (images, labels) minibatches from in-memory tensors (far faster than a DataLoader here)."""
    order = torch.randperm(len(labels), generator=generator) if shuffle else torch.arange(len(labels))
    for i in range(0, len(order), batch_size):
        idx = order[i : i + batch_size]
        yield images[idx], labels[idx]


def augment(images, generator=None, max_degrees=10.0, max_shift=2.0, scale=(0.9, 1.1)):
    """Random small rotation, scale and shift of a batch (B, 1, H, W), as handwriting varies."""
    B, _, H, W = images.shape
    rand = lambda lo, hi: torch.rand(B, generator=generator) * (hi - lo) + lo  # noqa: E731
    angle = rand(-max_degrees, max_degrees).deg2rad()
    s = rand(*scale)
    tx, ty = rand(-max_shift, max_shift) * 2 / W, rand(-max_shift, max_shift) * 2 / H  # pixels → [-1, 1] units
    cos, sin = angle.cos() / s, angle.sin() / s
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")


def to_image_batch(images):
    """Check and convert MNIST-like input to (B, 1, 28, 28) float in [0, 1].

    Takes a tensor, numpy array or PIL image shaped (28, 28), (1, 28, 28) or (B, 1, 28, 28),
    as uint8 0–255 or float 0–1. Anything else is refused with the reason.
    """
    x = _as_tensor(images)
    shape = tuple(x.shape)
    while x.dim() < 4 and (x.dim() < 3 or x.size(0) == 1):
        x = x[None]  # (28, 28) -> (1, 28, 28) -> (1, 1, 28, 28)
    if x.dim() != 4 or x.shape[1:] != (1, 28, 28):
        channels = shape[-1] if len(shape) == 3 and shape[-1] in (3, 4) else shape[-3] if len(shape) >= 3 else 1
        hint = " (it looks like colour: convert to grayscale)" if channels in (3, 4) else ""
        raise ValueError(
            f"expected 28×28 grayscale images shaped (28, 28), (1, 28, 28) or (B, 1, 28, 28), got {shape}{hint}; "
            "for a picture of any size or colour use crossmodal.preprocess_drawing()"
        )
    return x


def _as_tensor(image):
    """uint8 0–255 or float 0–1 (tensor, numpy or PIL) -> float tensor in [0, 1]."""
    if not isinstance(image, (torch.Tensor, np.ndarray)):
        if not hasattr(image, "getbands"):
            raise TypeError(f"expected a torch tensor, numpy array or PIL image, got {type(image).__name__}")
        image = np.array(image)  # PIL: (H, W) or (H, W, C); a writable copy
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


def preprocess_drawing(drawing, ink_threshold=0.1):
    """Turn a drawing into what the model expects: (1, 28, 28) float in [0, 1], white on black.

    Any size; white-on-black or black-on-white (or ink on a transparent background); uint8 or
    float; PIL, numpy (H, W[, C]) or tensor ((C,) H, W). MNIST's own recipe: crop to the ink, fit
    it in a 20×20 box keeping its aspect, then centre its centre of mass in a 28×28 frame.
    Raises BlankImageError when there is no ink.
    """
    x = _as_tensor(drawing)
    is_tensor = isinstance(drawing, torch.Tensor)
    if x.dim() == 3:  # to (C, H, W): tensors are channels-first, numpy and PIL channels-last
        x = x if is_tensor else x.permute(2, 0, 1)
        if x.size(0) == 4 and x[3].min() < x[3].max():
            x = x[3]  # the alpha channel is where the ink is (a canvas with a transparent background)
        elif x.size(0) in (1, 3, 4):
            x = x[:3].mean(0)
        else:
            raise ValueError(f"expected 1, 3 or 4 colour channels, got an image shaped {tuple(drawing.shape)}")
    if x.dim() != 2:
        raise ValueError(f"expected an image shaped (H, W) or with colour channels, got {tuple(x.shape)}")

    background = torch.cat([x[0], x[-1], x[:, 0], x[:, -1]]).median()  # the border is paper, not ink
    if background > 0.5:
        x, background = 1 - x, 1 - background  # dark ink on light paper: flip to MNIST's white on black
    x = ((x - background) / (1 - background)).clamp(0, 1)
    ink = x > ink_threshold
    if not ink.any():
        raise BlankImageError("the drawing is blank: draw a digit first")

    rows, cols = ink.any(1).nonzero().squeeze(1), ink.any(0).nonzero().squeeze(1)
    x = x[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]  # crop to the ink
    h, w = x.shape
    scale = 20 / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    x = F.interpolate(x[None, None], size=size, mode="bilinear", antialias=scale < 1, align_corners=False)[0, 0]
    x = (x / x.max()).clamp(0, 1)  # full contrast, like MNIST's strokes

    ys, xs = torch.arange(size[0], dtype=torch.float32), torch.arange(size[1], dtype=torch.float32)
    mass = x.sum()
    cy, cx = (x.sum(1) @ ys) / mass, (x.sum(0) @ xs) / mass  # centre of mass in the box
    top, left = round(13.5 - cy.item()), round(13.5 - cx.item())  # pixel centres: 13.5 is the middle
    top, left = min(max(top, 0), 28 - size[0]), min(max(left, 0), 28 - size[1])
    out = torch.zeros(28, 28)
    out[top : top + size[0], left : left + size[1]] = x
    return out[None]
