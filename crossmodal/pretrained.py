"""The models shipped inside the package: a working demo with no training and no download.

Each was trained with `python -m crossmodal.train` (the exact command and its measured accuracy
are in the README and in training.json beside the weights, in crossmodal/checkpoints/<name>/).
"""

from importlib.resources import files

from .model import Captioner

PRETRAINED_DIR = files("crossmodal") / "checkpoints" / "mnist-captioner"
READER_DIR = files("crossmodal") / "checkpoints" / "number-reader"  # reads numbers of 1 to 4 digits (numbers.py)


def load_pretrained(device="cpu"):
    """The shipped MNIST captioner, ready to caption (eval mode, offline)."""
    return Captioner.from_pretrained(PRETRAINED_DIR, device=device)


def load_reader(device="cpu"):
    """The shipped reader of handwritten numbers (28 × 112 images → "2026"), ready to read (eval mode, offline)."""
    return Captioner.from_pretrained(READER_DIR, device=device)
