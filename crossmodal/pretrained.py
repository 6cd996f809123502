"""The models shipped inside the package: working demos with no training and no download.

- the MNIST captioner, `load_pretrained()`, in crossmodal/checkpoints/mnist-captioner/;
- the reader of handwritten numbers, `load_reader()`, in crossmodal/checkpoints/number-reader/;
- the question answerer about such numbers (notebook 08), `load_answerer()`, in
  crossmodal/checkpoints/question-answerer/;
- the three fusion designs trained side by side (notebook 09), `load_fusion(name)`, in
  crossmodal/checkpoints/fusion-{cross,prefix,raw}/.

Each was trained by a recorded command (`python -m crossmodal.train`, or the fusion benchmark); the exact
command and its measured results are in the README and in training.json beside the weights.
"""

import json
from importlib.resources import files

from .config import FUSIONS
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


ANSWERER_DIR = files("crossmodal") / "checkpoints" / "question-answerer"


def load_answerer(device="cpu"):
    """The shipped question answerer (questions.py): a number's picture and a question in, an answer out; eval mode."""
    return Captioner.from_pretrained(ANSWERER_DIR, device=device)


def answerer_record():
    """How the shipped answerer was made (its chain of commands) and its measured results, with the blind baseline's."""
    return json.loads((ANSWERER_DIR / "training.json").read_text())


def fusion_dir(name):
    if name not in FUSIONS:
        raise ValueError(f"no shipped model for fusion {name!r}: the shipped ones are {', '.join(FUSIONS)}")
    return files("crossmodal") / "checkpoints" / f"fusion-{name}"


def load_fusion(name, device="cpu"):
    """One of the three captioners of `tests/benchmarks/compare_fusions.py` (same size, data and steps), eval mode."""
    return Captioner.from_pretrained(fusion_dir(name), device=device)


def fusion_record(name):
    """The benchmark's measurements of that design: accuracy per epoch, speed, cost, attention on ink."""
    return json.loads((fusion_dir(name) / "training.json").read_text())
