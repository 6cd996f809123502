"""What a task is, to the one trainer and the one command line: a model factory, its data, its loss, its flags.

    python -m crossmodal.train --task NAME [flags]

A Task says which model it trains and from which configuration (the model flags), its own options (more flags),
the TrainConfig it starts from, and how to make its training stream and test set (training/streams.py).
"""

from dataclasses import dataclass, field
from typing import Callable

from ..training.config import TrainConfig
from ..training.loss import vision_language_loss


@dataclass(frozen=True)
class Task:
    name: str
    summary: str  # one line for --help
    model_config: Callable  # () -> the dataclass of model settings a new model starts from (its fields are flags)
    new_model: Callable  # (model_config, options) -> (model, tokenizer), freshly initialised
    data: Callable  # (model, tokenizer, TrainConfig, options, device) -> (training stream, test set)
    train_config: TrainConfig = field(default_factory=TrainConfig)  # the task's defaults, before any flag
    options: type | None = None  # a dataclass of the task's own settings (its fields are flags), or None
    loss: Callable = vision_language_loss  # (model, batch, cfg) -> (summed loss, counted positions)
    callbacks: Callable = lambda model: []  # (model) -> callbacks for the trainer (e.g. the eyes' gates)
    architecture: str = "VisionLanguageModel"  # the class its checkpoints hold (nn/auto.py)
    model_options: tuple = ()  # the options that shape the model: --init-from and --resume refuse them
