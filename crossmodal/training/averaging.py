"""An exponential moving average of the weights (TrainConfig.ema): what is evaluated, saved and handed back.

    average = WeightAverage(model, decay=0.995)
    ...after every optimizer step: average.update(model, step)

The weights the optimizer steps wander around a valley's floor; their average over the last ~1 / (1 - decay)
steps sits nearer its middle, so it scores higher at every point of a run, most of all before the learning rate
has decayed (the time-to-accuracy table in docs/results.md). Early on the average follows the weights closely
(the decay ramps up as (1 + step) / (10 + step), as in TensorFlow's and timm's averages), so that it does not
drag the random initial weights along. Floating-point buffers (BatchNorm's running statistics) are averaged as
the weights are; others (counters) are copied.
"""

import copy

import torch


class WeightAverage:
    def __init__(self, model, decay):
        if not 0 < decay < 1:
            raise ValueError(f"the weight average's decay must be between 0 and 1, got {decay!r}")
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)  # the average, a model of its own

    def pairs(self, model):
        """(averaged, trained) tensors, in the same order: parameters, then buffers."""
        ours = [*self.model.parameters(), *self.model.buffers()]
        theirs = [*model.parameters(), *model.buffers()]
        if len(ours) != len(theirs):
            raise ValueError("the weight average was made from another model")
        return zip(ours, theirs)

    @torch.no_grad()
    def update(self, model, step):
        """Move the average towards `model`'s weights after optimizer step `step` (0 for the first)."""
        weight = 1 - min(self.decay, (1 + step) / (10 + step))
        for a, b in self.pairs(model):
            if a.is_floating_point():
                a.lerp_(b, weight)  # a += weight × (b - a)
            else:
                a.copy_(b)

    @torch.no_grad()
    def copy_to(self, model):
        """Write the averaged weights into `model` (the one the trainer hands back)."""
        for a, b in self.pairs(model):
            b.copy_(a)
