"""Pieces shared by the vision encoder and the text decoder (timm keeps these in `timm/layers/`).

The models import layers; they never import each other.
"""

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
