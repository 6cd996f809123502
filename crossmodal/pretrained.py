"""The models shipped inside the package: working demos with no training and no download.

    load_captioner()        the MNIST captioner (notebooks 05–06)              checkpoints/mnist-captioner/
    load_wide_captioner()   a captioner of the reader's width, its encoder (07) checkpoints/wide-captioner/
    load_reader()           the reader of handwritten numbers (07)             checkpoints/number-reader/
    load_answerer()         the question answerer about such numbers (08)      checkpoints/question-answerer/
    load_fusion(name)       the three fusion designs side by side (09)         checkpoints/fusion-{cross,prefix,raw}/
    load_text_lm()          the language model that read facts (10)            checkpoints/text-lm/
    load_gpt2_eyes()        that language model given eyes (10)                checkpoints/gpt2-eyes/

Each was trained by a recorded command (`python -m crossmodal.train`, or the fusion benchmark); `record(name)`
is its training.json: the exact command, the machine, and what it measured.
"""

from importlib.resources import files

from .folders import RECORD, read_json
from .nn.auto import load_model
from .nn.config import FUSIONS

SHIPPED = {"captioner": "mnist-captioner", "wide-captioner": "wide-captioner", "reader": "number-reader",
           "answerer": "question-answerer",
           **{f"fusion-{f}": f"fusion-{f}" for f in FUSIONS}, "text-lm": "text-lm", "gpt2-eyes": "gpt2-eyes"}


def shipped_dir(name):
    """The folder of a shipped model: one of SHIPPED's names ("captioner", "reader", ..., "fusion-raw", ...)."""
    if name not in SHIPPED:
        raise ValueError(f"no shipped model {name!r}: the shipped ones are {', '.join(SHIPPED)}")
    return files("crossmodal") / "checkpoints" / SHIPPED[name]


def record(name):
    """How a shipped model was made and what it measured: its training.json (see shipped_dir for the names)."""
    return read_json(shipped_dir(name) / RECORD)


def load_captioner(device="cpu"):
    """The shipped MNIST captioner, ready to caption (eval mode, offline)."""
    return load_model(shipped_dir("captioner"), device, expect="VisionLanguageModel")[0]


def load_wide_captioner(device="cpu"):
    """The shipped captioner of the reader's width (7 × 7 patches, width 96; a 4 × 4 grid on a digit), whose encoder
    the reader starts from (`--warm-start`): it already knows digits, so the reader learns only where they are."""
    return load_model(shipped_dir("wide-captioner"), device, expect="VisionLanguageModel")[0]


def load_reader(device="cpu"):
    """The shipped reader of handwritten numbers (1 to 4 digits on a 28 × 112 canvas), offline, eval mode."""
    return load_model(shipped_dir("reader"), device, expect="VisionLanguageModel")[0]


def load_answerer(device="cpu"):
    """The shipped question answerer: a number's picture and a question in, an answer out; eval mode."""
    return load_model(shipped_dir("answerer"), device, expect="VisionLanguageModel")[0]


def load_fusion(name, device="cpu"):
    """One of the three captioners of `tests/benchmarks/compare_fusions.py` (same size, data and steps): name is
    "cross", "prefix" or "raw"; eval mode."""
    if name not in FUSIONS:
        raise ValueError(f"no shipped model for fusion {name!r}: the shipped ones are {', '.join(FUSIONS)}")
    return load_model(shipped_dir(f"fusion-{name}"), device, expect="VisionLanguageModel")[0]


def load_text_lm(device="cpu", folder=None):
    """(lm, tokenizer): the shipped tiny GPT-2 trained on data/facts.py's sentences (text only), eval mode, offline;
    or the LM in `folder`, as `python -m crossmodal.train --task text --out FOLDER` saves it."""
    folder = folder or shipped_dir("text-lm")
    lm, tokenizer = load_model(folder, device, expect="GPT2LMHeadModel")
    if tokenizer is None:
        raise ValueError(f"{folder} holds a language model but no tokenizer (tokenizer.json): save it with its "
                         "tokenizer")
    return lm, tokenizer


def load_gpt2_eyes(device="cpu"):
    """(model, tokenizer): the shipped text LM with gated cross-attention trained on captions (tasks/eyes.py)."""
    return load_model(shipped_dir("gpt2-eyes"), device, expect="Flamingo")
