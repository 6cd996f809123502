"""The trainer's knobs (`TrainConfig`), its learning-rate schedule, and which parameters weight decay pulls on.

Every task trains with these; a task starts from its own defaults (its Task's train_config, e.g. tasks/captions.py's
RECIPE, chosen by the time-to-accuracy table), and every field is a command-line flag (flags.py).
"""

import math
from dataclasses import dataclass

from torch import nn

from ..nn.config import check_types


@dataclass
class TrainConfig:
    epochs: int = 5  # passes over the task's training stream
    steps: int = 0  # stop after this many optimizer steps instead (left out: epochs × the stream's steps per epoch)
    batch_size: int = 128  # examples per optimizer step (over every process, when torchrun starts several)
    lr: float = 5e-3  # peak learning rate, reached after the warm-up
    weight_decay: float = 0.05  # AdamW's decay of the weight matrices (see param_groups)
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW's decay rates of its moving averages of gradients and squares
    warmup_steps: int = 200  # steps of linear warm-up from 0 to lr (at most a quarter of a shorter run's steps)
    min_lr_ratio: float = 0.05  # cosine decays to lr × this
    grad_clip: float = 1.0  # largest gradient norm; a larger gradient is scaled down to it
    augment: bool = True  # small random rotations, scalings and shifts of the training images
    augment_strokes: bool = True  # also make some images' strokes thicker, thinner or blurred (see augment.py)
    augment_elastic: float = 0.0  # also warp each digit smoothly at random, this strong (Simard et al. 2003: 34; 0: no)
    label_smoothing: float = 0.0  # share of each target's probability spread over the whole vocabulary
    # decay of a moving average of the weights, which is what is evaluated, saved and handed back (averaging.py);
    # 0: none, the weights as stepped. 0.99 averages over about the last 100 steps
    ema: float = 0.0
    seed: int = 0  # data order and augmentation (and, from the command line, the initial weights)
    save_every: int = 500  # steps between checkpoints (and one after every epoch's evaluation)

    def check(self):
        """Raise ValueError naming the first setting that cannot train."""
        check_types(self)
        finite = {name: getattr(self, name) for name in ("lr", "weight_decay", "min_lr_ratio", "grad_clip",
                                                          "label_smoothing", "ema", "augment_elastic")}
        for name, value in finite.items():
            if not math.isfinite(value):
                raise ValueError(f"{name} (--{name.replace('_', '-')}) must be a finite number, got {value!r}")
        rules = {"epochs": (self.epochs >= 1, "1 or more"), "steps": (self.steps >= 0, "0 or more"),
                 "batch_size": (1 <= self.batch_size <= 1 << 20, "from 1 to 1,048,576"),
                 "lr": (0 < self.lr <= 10, "above 0 (and at most 10)"),
                 "weight_decay": (self.weight_decay >= 0, "0 or more"),
                 "warmup_steps": (self.warmup_steps >= 0, "0 or more"), "grad_clip": (self.grad_clip > 0, "above 0"),
                 "min_lr_ratio": (0 <= self.min_lr_ratio <= 1, "from 0 to 1"),
                 "label_smoothing": (0 <= self.label_smoothing < 1, "from 0 up to (not including) 1"),
                 "betas": (all(0 <= b < 1 for b in self.betas), "two numbers from 0 up to (not including) 1"),
                 "ema": (0 <= self.ema < 1, "from 0 (no average) up to (not including) 1"),
                 "augment_elastic": (0 <= self.augment_elastic <= 100, "from 0 (none) to 100"),
                 # the streams seed each batch with seed × 1,000,003 + ..., which must stay within 64 bits
                 "seed": (0 <= self.seed < 1 << 32, "a whole number from 0 to 2**32 - 1"),
                 "save_every": (self.save_every >= 1, "1 or more")}
        for name, (ok, expected) in rules.items():
            if not ok:
                raise ValueError(f"{name} (--{name.replace('_', '-')}) must be {expected}, got {getattr(self, name)!r}")

    def total_steps(self, steps_per_epoch):
        """How many optimizer steps the run takes."""
        return self.steps or self.epochs * steps_per_epoch

    def lr_at(self, step, total_steps):
        """Linear warm-up to lr over warmup_steps, then a cosine down to lr × min_lr_ratio at the last step.

        A run shorter than 4 × warmup_steps warms up for a quarter of its steps instead, so that a short run
        (`--steps 30`) still reaches its peak learning rate and decays from it.
        """
        warmup = min(self.warmup_steps, total_steps // 4)
        if step < warmup:
            return self.lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return self.lr * (self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def param_groups(model, weight_decay):
    """AdamW's parameter groups, by one explicit rule: decay the weight matrices, nothing else; and only what learns
    (a frozen language model or encoder is left out).

    Decayed: the weights of every layer that multiplies by a matrix: nn.Linear, nn.Conv2d (the patch embedding),
    and transformers' Conv1D (GPT-2's linear layers, stored transposed). That includes the token embedding, because
    it *is* lm_head's weight (tied), as in nanoGPT.
    Not decayed: biases, LayerNorm scales and shifts, the position embeddings (the decoder's wpe and
    the ViT's pos_embed), a class token and the cross-attention gates. They shift or scale the
    activations; pulling them towards 0 only works against what they are for.
    """
    multiplies = (nn.Linear, nn.Conv2d)
    matrices = {id(m.weight) for m in model.modules()
                if isinstance(m, multiplies) or type(m).__name__ == "Conv1D"}  # transformers.pytorch_utils.Conv1D
    learning = [p for p in model.parameters() if p.requires_grad]  # parameters(): a tied tensor once
    decay = [p for p in learning if id(p) in matrices]
    no_decay = [p for p in learning if id(p) not in matrices]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
