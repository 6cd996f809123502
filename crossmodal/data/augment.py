"""Augmentation and perturbation of digit images: handwriting varies in pose, stroke width and blur.

`augment` is the training augmentation: a random small rotation, scale and shift of every image, optionally
(elastic > 0) a smooth random warp of each, as a hand trembles (Simard et al. 2003), and (strokes=True) a random
stroke change for some of them. `thicker`, `thinner` and `blurred`
are the fixed perturbations the robustness table measures a model under (see `robustness`).
Images are (B, 1, H, W) in [0, 1], white ink on black, on any device. Random numbers come from a
CPU generator, so a seed gives the same augmentation on the CPU and on a GPU.
"""

import torch
import torch.nn.functional as F


def augment(images, generator=None, max_degrees=10.0, max_shift=2.0, scale=(0.9, 1.1), strokes=False, elastic=0.0):
    """Random small rotation, scale and shift of a batch (B, 1, H, W); elastic > 0: also `elastic_field`'s warp of
    that strength; strokes=True: also `vary_strokes`."""
    B, _, H, W = images.shape
    rand = lambda lo, hi: torch.rand(B, generator=generator) * (hi - lo) + lo  # noqa: E731
    angle = rand(-max_degrees, max_degrees).deg2rad()
    s = rand(*scale)
    tx, ty = rand(-max_shift, max_shift) * 2 / W, rand(-max_shift, max_shift) * 2 / H  # pixels → [-1, 1] units
    cos, sin = angle.cos() / s, angle.sin() / s
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta.to(images.device), list(images.shape), align_corners=False)  # (B, H, W, 2)
    if elastic:
        field = elastic_field(B, H, W, elastic, generator)  # (B, 2, H, W) in pixels
        grid = grid + (field * torch.tensor([2 / W, 2 / H]).view(1, 2, 1, 1)).permute(0, 2, 3, 1).to(images.device)
    moved = F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")
    return vary_strokes(moved, generator) if strokes else moved


def elastic_field(B, H, W, strength, generator=None, sigma=4.0):
    """(B, 2, H, W): for each pixel, how far (x, y, in pixels) to look away from it: uniform noise in [-1, 1],
    blurred with a Gaussian of `sigma` pixels (so that neighbours move together), times `strength`. Simard et al.
    (2003) used sigma 4 and strength 34 on MNIST; after the blur that moves a pixel about one pixel on average."""
    noise = torch.rand(B, 2, H, W, generator=generator) * 2 - 1
    return blurred(noise, sigma) * strength


def vary_strokes(images, generator=None, p=(0.2, 0.2, 0.2)):
    """Make a random share of the images thicker, thinner or blurred (p: each one's probability); the rest stay.

    Drawn digits differ from MNIST's in pen width and softness; this is what teaches a model to read them.
    """
    kind = torch.rand(images.size(0), generator=generator)  # one draw per image picks at most one change
    edges = torch.tensor(p).cumsum(0)
    out = images.clone()
    for i, change in enumerate((thicker, thinner, blurred)):
        chosen = ((kind >= (edges[i - 1] if i else 0.0)) & (kind < edges[i])).nonzero().flatten()
        if len(chosen):  # each change works image by image: made for the chosen ones only
            chosen = chosen.to(images.device)
            out[chosen] = change(images[chosen])
    return out


def thicker(images):
    """Dilate the strokes: a 3×3 max-pool with stride 1 (each pixel takes its brightest neighbour)."""
    return F.max_pool2d(images, 3, stride=1, padding=1)


def thinner(images):
    """Erode the strokes: a 2×2 min-pool with stride 1 (padding the last row and column with black)."""
    padded = F.pad(images, (0, 1, 0, 1))  # (B, C, H + 1, W + 1)
    return -F.max_pool2d(-padded, 2, stride=1)


def blurred(images, sigma=1.0):
    """Gaussian blur of standard deviation `sigma` pixels (a separable kernel out to 3 sigma)."""
    radius = max(1, int(3 * sigma + 0.5))
    x = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    C = images.size(1)
    rows = kernel.view(1, 1, 1, -1).repeat(C, 1, 1, 1)  # (C, 1, 1, K): blur along the width
    cols = kernel.view(1, 1, -1, 1).repeat(C, 1, 1, 1)  # (C, 1, K, 1): then along the height
    x = F.conv2d(F.pad(images, (radius, radius, 0, 0)), rows, groups=C)
    return F.conv2d(F.pad(x, (0, 0, radius, radius)), cols, groups=C)


PERTURBATIONS = {"clean": lambda x: x, "thicker": thicker, "thinner": thinner, "blurred": blurred}
