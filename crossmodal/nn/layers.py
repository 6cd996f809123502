"""Pieces shared by the vision encoders and the text decoder (timm keeps these in `timm/layers/`).

The models import layers; they never import each other.
"""

import torch
from torch import nn


def pair(x):
    """An int or a pair as a (height, width) tuple: 28 -> (28, 28); [28, 56] -> (28, 56)."""
    return (x, x) if isinstance(x, int) else tuple(x)


class Mlp(nn.Module):
    """The feed-forward sub-layer of a transformer block: fc1 → GELU → fc2."""

    def __init__(self, dim, hidden, approximate="none"):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU(approximate=approximate)  # "tanh": GPT-2's approximation
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def init_weights(module):
    """GPT-2's and timm's ViT init for Linear layers: weights with std 0.02, biases 0.

    (trunc_normal_ cuts at ±2 in absolute value, which never binds at this std.)

    Use with `model.apply(init_weights)`.
    """
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class ImageEncoder(nn.Module):
    """What every vision encoder offers a model that reads images (timm's pretrained_cfg idea: the pixel
    normalisation travels with the encoder that was trained with it).

    A subclass sets `mean`, `std` (one value per channel), `embed_dim`, `grid_size` (patches down, across) and
    `num_prefix_tokens`, and implements timm's `forward_features(images, need_weights=False)` on normalised
    pixels. `patch_tokens` is what a captioner or a Flamingo calls: pixels in [0, 1] in, one token per patch out.
    """

    def patch_tokens(self, images, need_weights=False):
        """(B, C, H, W) in [0, 1] -> (B, N, embed_dim), one token per patch in reading order (class tokens
        dropped); need_weights: also the encoder's attention weights, one (B, heads, T, T) per block."""
        mean = torch.tensor(self.mean, device=images.device, dtype=images.dtype).view(-1, 1, 1)  # (C, 1, 1)
        std = torch.tensor(self.std, device=images.device, dtype=images.dtype).view(-1, 1, 1)
        x = (images - mean) / std  # a 1-channel image meets a 3-channel mean as 3 channels
        out = self.forward_features(x, need_weights)
        features, maps = out if need_weights else (out, None)
        tokens = features[:, self.num_prefix_tokens :]  # (B, N, embed_dim): patches only
        return (tokens, maps) if need_weights else tokens
