"""The captioner shipped inside the package: a working demo with no training and no download.

It was trained with `python -m crossmodal.train` (the exact command and its measured accuracy
are in the README and in training.json beside the weights, in crossmodal/checkpoints/mnist-captioner/).
"""

from importlib.resources import files

from .model import Captioner

PRETRAINED_DIR = files("crossmodal") / "checkpoints" / "mnist-captioner"


def load_pretrained(device="cpu"):
    """The shipped MNIST captioner, ready to caption (eval mode, offline)."""
    return Captioner.from_pretrained(PRETRAINED_DIR, device=device)
