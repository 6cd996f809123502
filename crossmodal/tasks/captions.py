"""Captions: a picture of a digit in, "This is the number seven." out (notebooks 04–06).

The model: a VisionLanguageModel with the character tokenizer of the ten captions (`new_captioner`). Its
training stream: MNIST's 60,000 training digits, shuffled each epoch, posed and re-stroked at random
(`CaptionBatches`). Its test set: the 10,000 test digits, scored by caption exact match, overall and per digit
(`CaptionTest`); `robustness` scores the same digits drawn thicker, thinner and blurred, as a user's pen differs
from MNIST's.
"""

import math

import torch

from ..data.augment import PERTURBATIONS, augment
from ..data.mnist import ALL_CAPTIONS, batches, load_mnist
from ..nn import VisionConfig, VisionLanguageModel, VLMConfig, build_char_tokenizer
from ..training.config import TrainConfig
from ..training.streams import next_token_batch
from .task import Task


def captioner_config():
    """The captioner `python -m crossmodal.train` builds: the library's defaults, with the convolutional stem and
    its full-resolution first convolution (32 channels).

    Early convolutions (vit.ConvStem) reach 99% caption exact match in about 2,000 steps, where the plain patch
    projection stops near 97.5% after 2,345; the first convolution at full resolution takes 97% from step 700 to
    400 (docs/results.md, "Time to accuracy"). The maps keep the 7×7 grid. `--vision.stem patch` trains the plain
    ViT of notebook 02.
    """
    return VLMConfig(vision=VisionConfig(stem="conv", stem_channels=32))


def new_captioner(config=None):
    """A fresh captioner (default config: the library's VLMConfig()) with the tokenizer of the ten captions."""
    return VisionLanguageModel.for_tokenizer(build_char_tokenizer(ALL_CAPTIONS), config or VLMConfig())


def caption_tokens(tokenizer):
    """(10, L) token ids of the ten captions, <bos> ... <eos> then <pad>: row d is digit d's caption."""
    return torch.tensor(tokenizer(ALL_CAPTIONS, padding=True)["input_ids"])


class CaptionBatches:
    """MNIST's training stream: each epoch the images in a new order (seeded by the epoch), each batch posed and
    re-stroked at random (seeded by the step), so a resumed run sees the same batches.

    images, labels: MNIST's (load_mnist(train=True)), kept on `device` (a GPU reads them without copies).
    """

    def __init__(self, images, labels, tokenizer, augment=True, strokes=True, device="cpu", elastic=0.0):
        self.images, self.labels = images.to(device), labels.to(device)
        self.captions = caption_tokens(tokenizer).to(device)  # (10, L)
        self.augment, self.strokes, self.elastic, self.pad_id = augment, strokes, elastic, tokenizer.pad_token_id

    def steps_per_epoch(self, batch_size):
        return math.ceil(len(self.labels) / batch_size)

    def batches(self, epoch, batch_size, seed, start=0):
        """Batches start, start + 1, ... of `epoch`: images (B, 1, 28, 28) and their captions as a Batch."""
        steps = self.steps_per_epoch(batch_size)
        order = torch.Generator().manual_seed(seed * 1000 + epoch)  # the same order after a resume
        for i, (x, y) in enumerate(batches(self.images, self.labels, batch_size, shuffle=True, generator=order)):
            if i < start:
                continue
            if self.augment:
                step = epoch * steps + i
                x = augment(x, generator=torch.Generator().manual_seed(seed * 1_000_003 + step), strokes=self.strokes,
                            elastic=self.elastic)
            yield next_token_batch(x, self.captions[y], self.pad_id)


class CaptionTest:
    """The test digits (default: MNIST's 10,000), scored by caption exact match, overall and per digit."""

    def __init__(self, images=None, labels=None):
        if images is None:
            images, labels = load_mnist(train=False)
        self.images, self.labels = images, labels

    def evaluate(self, model):
        result = evaluate(model, self.images, self.labels)
        return {"exact_match": result["exact_match"], "per_digit": result["per_digit"]}


@torch.inference_mode()
def evaluate(model, images, labels, batch_size=1000):
    """Caption exact match of greedy decoding over the images, overall and per digit (and `correct`, per image).

    Greedy decoding writes the reference caption exactly when, reading the reference so far, the
    model's most likely next character is the reference one at every position (by induction over
    the positions). So one teacher-forced pass gives the same verdict as writing the caption
    character by character (barring round-off at an exact tie), in a fraction of the time. The
    tests check both ways agree.
    """
    model.eval()
    reference = caption_tokens(model.tokenizer).to(model.device)  # (10, L): <bos> caption <eos>, then <pad>
    labels = labels.cpu()
    correct = torch.zeros(len(labels), dtype=torch.bool)
    for start in range(0, len(labels), batch_size):
        x, y = model.image_batch(images[start : start + batch_size]), labels[start : start + batch_size]
        tokens = reference[y.to(model.device)]  # (B, L)
        predicted = model(x, tokens[:, :-1]).argmax(dim=-1)  # (B, L - 1): greedy choice at each position
        target = tokens[:, 1:]
        match = ((predicted == target) | (target == model.config.pad_id)).all(dim=1)
        correct[start : start + len(y)] = match.cpu()
    per_digit = [correct[labels == d].float().mean().item() for d in range(10)]
    return {"exact_match": correct.float().mean().item(), "per_digit": per_digit, "correct": correct}


def robustness(model, images, labels, batch_size=1000):
    """{"clean": exact match, "thicker": ..., "thinner": ..., "blurred": ...} on the same test images."""
    results = {}
    for name, perturb in PERTURBATIONS.items():
        changed = torch.cat([perturb(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])
        results[name] = evaluate(model, changed, labels, batch_size)["exact_match"]
    return results


def _new_model(config, options):
    model = new_captioner(config)
    return model, model.tokenizer


def _data(model, tokenizer, cfg, options, device):
    images, labels = load_mnist(train=True)
    stream = CaptionBatches(images, labels, tokenizer, cfg.augment, cfg.augment and cfg.augment_strokes, device,
                            cfg.augment_elastic if cfg.augment else 0.0)
    return stream, CaptionTest()


# The recipe the time-to-accuracy table chose (docs/results.md): a warm-up of 100 steps, label smoothing, and the
# moving average of the weights evaluated and saved
RECIPE = TrainConfig(warmup_steps=100, label_smoothing=0.1, ema=0.999)
TASK = Task("captions", "caption single MNIST digits: 'This is the number seven.'", captioner_config, _new_model, _data,
            RECIPE)
