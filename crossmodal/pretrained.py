"""The models shipped inside the package: working demos with no training and no download.

- the MNIST captioner, `load_pretrained()`, in crossmodal/checkpoints/mnist-captioner/;
- the reader of handwritten numbers, `load_reader()`, in crossmodal/checkpoints/number-reader/.

Each was trained with `python -m crossmodal.train` (the exact command and its measured results are
in the README and in training.json beside the weights).
"""

import json
from importlib.resources import files

from .model import Captioner

PRETRAINED_DIR = files("crossmodal") / "checkpoints" / "mnist-captioner"


def load_pretrained(device="cpu"):
    """The shipped MNIST captioner, ready to caption (eval mode, offline)."""
    return Captioner.from_pretrained(PRETRAINED_DIR, device=device)


READER_DIR = files("crossmodal") / "checkpoints" / "number-reader"


def load_reader(device="cpu"):
    """The shipped reader of handwritten numbers (1 to 4 digits on a 28 × 112 canvas), offline, eval mode."""
    return Captioner.from_pretrained(READER_DIR, device=device)


def reader_record():
    """How the shipped reader was made: its training.json (the command, the measured results, the curve)."""
    return json.loads((READER_DIR / "training.json").read_text())
