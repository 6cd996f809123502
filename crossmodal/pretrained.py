"""The models shipped inside the package: working demos with no training and no download.

- the MNIST captioner, `load_pretrained()`, in crossmodal/checkpoints/mnist-captioner/;
- the reader of handwritten numbers, `load_reader()`, in crossmodal/checkpoints/number-reader/;
- the question answerer about such numbers (notebook 08), `load_answerer()`, in
  crossmodal/checkpoints/question-answerer/;
- the three fusion designs trained side by side (notebook 09), `load_fusion(name)`, in
  crossmodal/checkpoints/fusion-{cross,prefix,raw}/;
- the language model that read facts about numbers (notebook 10, text_lm.py), `load_text_lm()`, in
  crossmodal/checkpoints/text-lm/, and that LM given eyes (eyes.py), `load_gpt2_eyes()`, in
  crossmodal/checkpoints/gpt2-eyes/.

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


TEXT_LM_DIR = files("crossmodal") / "checkpoints" / "text-lm"
EYES_DIR = files("crossmodal") / "checkpoints" / "gpt2-eyes"


def load_text_lm(device="cpu", folder=None):
    """(lm, tokenizer): the shipped tiny GPT-2 pretrained on facts.py's sentences (text only), eval mode, offline;
    or the LM in `folder`, as `python -m crossmodal.text_lm --out FOLDER` saves it (with --hub: the real GPT-2)."""
    from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast
    from transformers.utils import logging

    from .text_lm import named_loss

    bar = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()  # no "Loading weights" bar for a 2 MB file
    try:
        lm = GPT2LMHeadModel.from_pretrained(folder or TEXT_LM_DIR, local_files_only=True)
    finally:
        if bar:
            logging.enable_progress_bar()
    tokenizer = PreTrainedTokenizerFast.from_pretrained(folder or TEXT_LM_DIR, local_files_only=True)
    return named_loss(lm).to(device).eval(), tokenizer


def load_gpt2_eyes(device="cpu"):
    """(model, tokenizer): the shipped text LM with gated cross-attention trained on captions (eyes.py)."""
    from .eyes import load_eyes

    return load_eyes(EYES_DIR, device)


def eyes_record():
    """How the shipped eyes were trained (command, loss and gates per step) and the transfer it measured."""
    return json.loads((EYES_DIR / "training.json").read_text())
