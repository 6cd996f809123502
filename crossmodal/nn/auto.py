"""Which model a checkpoint folder holds, by the class its config.json names (transformers' AutoModel idea).

    VisionLanguageModel  the captioner, the reader and the answerer (model.py)
    GPT2LMHeadModel      a language model read from text alone (tasks/text.py): transformers' GPT-2
    Flamingo             a frozen language model given eyes (flamingo.py)

`load_model(folder)` gives (model, tokenizer) for any of them; `save_model(model, folder, tokenizer)` writes one,
as a unit. Both use serialization.py: one format, one set of checks.
"""

import torch
from transformers import GPT2LMHeadModel

from ..folders import readable_folder, replacing
from .config import gpt2_config_from_json
from .flamingo import Flamingo
from .model import VisionLanguageModel
from .serialization import read_config, read_model, write_model


class TextLM:
    """The serialization interface for a transformers GPT2LMHeadModel (which has its own, and no crossmodal one)."""

    architecture = "GPT2LMHeadModel"

    @staticmethod
    def config_from_json(values):
        return gpt2_config_from_json(values)

    @staticmethod
    def from_config(config, tokenizer=None):
        if tokenizer is not None and len(tokenizer) > config.vocab_size:
            raise ValueError(f"the tokenizer has {len(tokenizer)} tokens but the LM only {config.vocab_size}: the "
                             "files come from different checkpoints")
        return named_loss(GPT2LMHeadModel(config))


def named_loss(lm):
    """The LM with its loss named: transformers cannot guess it from the class name "GPT2LMHeadModel" and warns at
    the first loss otherwise. Returns lm."""
    lm.loss_type = "ForCausalLM"
    return lm


ARCHITECTURES = {"VisionLanguageModel": VisionLanguageModel, "GPT2LMHeadModel": TextLM, "Flamingo": Flamingo}


def architecture(folder):
    """The class name a checkpoint folder's config.json gives (a config without one is a VisionLanguageModel's,
    as crossmodal wrote them before it named them)."""
    raw, _ = read_config(folder, _Raw)
    names = raw.get("architectures") or ["VisionLanguageModel"]
    if not isinstance(names, list) or names[0] not in ARCHITECTURES:
        raise ValueError(f"{readable_folder(folder) / 'config.json'} names the model {names!r}, which crossmodal "
                         f"does not build; it builds {', '.join(ARCHITECTURES)}")
    return names[0]


def load_model(folder, device="cpu", expect=None):
    """(model, tokenizer) from any crossmodal checkpoint folder, checked before it is built; eval mode, offline.

    expect: a class name (or names) the caller needs; another model is refused with a sentence saying what it is.
    """
    name = architecture(folder)
    wanted = (expect,) if isinstance(expect, str) else expect
    if wanted and name not in wanted:
        raise ValueError(f"{folder} holds a {name}, not a {' or '.join(wanted)}")
    return read_model(folder, ARCHITECTURES[name], device)


def meta_model(folder):
    """The model a checkpoint folder's config.json describes, built on the meta device: every tensor's shape and type,
    no memory, no weights read (to measure what loading or training it would take)."""
    kind = ARCHITECTURES[architecture(folder)]
    _, config = read_config(folder, kind)
    with torch.device("meta"):
        return kind.from_config(config)


def save_model(model, folder, tokenizer=None):
    """Write any model of ARCHITECTURES (with its tokenizer) into `folder`, replacing what is there as a unit."""
    with replacing(folder) as new:
        write_model(model, new, tokenizer)


class _Raw:  # read_config's kind when only the raw JSON is wanted
    architecture = "crossmodal"

    @staticmethod
    def config_from_json(values):
        return values
