"""The engine: one training loop for every task, its knobs, checkpoints, records and several processes.

    config.py       TrainConfig: epochs or steps, batch, learning-rate schedule, weight decay, clipping
    streams.py      the contract with a task's data: a stream of Batch, and a test set's evaluate(model)
    loss.py         the one loss convention: next-token cross-entropy, IGNORE_INDEX (-100) skipped
    trainer.py      train(): the loop
    averaging.py    a moving average of the weights (TrainConfig.ema): what is evaluated and saved
    state.py        a run's checkpoint (model + optimizer + step), and resuming it
    distributed.py  torchrun: data-parallel processes, DDP
    warm_start.py   a new model from a trained one, wherever the weights fit
    flags.py        command-line flags made from the config dataclasses
    records.py      training.json: how a checkpoint was made and what it measured
"""

from .config import TrainConfig, param_groups
from .loss import next_token_loss, vision_language_loss
from .streams import Batch, next_token_batch
from .trainer import TrainingDiverged, train

__all__ = ["Batch", "TrainConfig", "TrainingDiverged", "next_token_batch", "next_token_loss", "param_groups", "train",
           "vision_language_loss"]
