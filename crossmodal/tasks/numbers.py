"""Numbers: a handwritten number of 1 to 4 digits in, its digit string ("2026") out (notebook 07).

The model: a VisionLanguageModel reading a 28 × 112 canvas, with a tokenizer of the ten digits (`new_reader`).
Its training stream: fresh numbers written from MNIST's training digits for every batch (`NumberBatches`). Its
test set: the fixed 10,000 numbers of data.numbers.test_numbers(), scored by exact match, character error rate,
accuracy by length, and whether each digit's map points at that digit (`ReadingTest`, `evaluate_reading`).
`read_number` reads one picture of any size.
"""

import torch

from ..data.augment import vary_strokes
from ..data.mnist import load_mnist
from ..data.numbers import as_bytes, canvas_size, make_numbers, pose_digits, test_numbers
from ..drawings import check_not_a_blot, check_strokes
from ..images import find_ink, preprocess_number
from ..nn import DecoderConfig, VisionConfig, VisionLanguageModel, VLMConfig, build_char_tokenizer
from ..nn.layers import pair
from ..training.config import TrainConfig
from ..training.streams import next_token_batch
from .metrics import alignment, character_error_rate
from .task import Task


def reader_config(max_digits=4):
    """The shipped reader's configuration, about 0.69 M parameters (a 2.8 MB checkpoint).

    Patches of 7 × 7, a 4 × 16 grid of 64 patches: a digit 10 to 20 pixels wide spans 2 or 3
    patch columns, enough for each character's map to point at one digit. A step of 64 numbers costs
    about a quarter of one with 196 patches of 4 × 4 and the captioner's width. A wider encoder than the
    captioner's (96 against 64): it must tell apart up to four digits and where each one is. The convolutional
    stem (a 16-channel 3×3 convolution at full resolution, then a 7×7 one of stride 7) is the wide captioner's
    (`python -m crossmodal.train --vision.patch-size 7 --vision.dim 96 --vision.stem-channels 16 --decoder.dim 96`),
    so that a reader can start from that captioner's encoder (`--warm-start`), which already knows digits.
    """
    return VLMConfig(
        VisionConfig(image_size=canvas_size(max_digits), patch_size=7, stem="conv", stem_channels=16, dim=96,
                     depth=4, num_heads=4),
        DecoderConfig(dim=96, depth=2, num_heads=4, block_size=max_digits + 2),  # <bos> digits <eos>
    )


def new_reader(config=None, max_digits=4):
    """A fresh reader of handwritten numbers: it writes the digit string ("2026"), one token per digit.

    config: default reader_config(max_digits), images of 28 × 28·max_digits.
    """
    return VisionLanguageModel.for_tokenizer(build_char_tokenizer("0123456789"), config or reader_config(max_digits))


class NumberBatches:
    """The training stream of a reader: fresh numbers for every batch, from MNIST's training images.

    Batch i of an epoch is made from its own seed, so a resumed run sees the same batches.
    augment=True: every digit posed at random (`pose_digits`) before it is written; strokes=True:
    also some canvases' strokes thicker, thinner or blurred (augment.vary_strokes), the whole number
    at once, as one pen wrote it. Without them the reader learns the 60,000 training digits by heart
    (the first shipped reader: training loss 0.02 nats per character, 2.2% of test characters wrong).
    """

    def __init__(self, images, labels, tokenizer, max_digits=4, strings_per_epoch=60_000, augment=False,
                 strokes=False, elastic=0.0):
        self.images, self.labels, self.tokenizer = as_bytes(images), labels, tokenizer
        self.max_digits, self.strings_per_epoch = max_digits, strings_per_epoch
        self.augment, self.strokes, self.elastic = augment, strokes, elastic

    def steps_per_epoch(self, batch_size):
        return -(-self.strings_per_epoch // batch_size)

    def tokens(self, texts):
        """(B, max_digits + 2) token ids: <bos> digits <eos>, then <pad>."""
        return torch.tensor(self.tokenizer(texts, padding="max_length", max_length=self.max_digits + 2)["input_ids"])

    def batches(self, epoch, batch_size, seed, start=0):
        """Batches start, start + 1, ... of `epoch`: images (B, 1, 28, W) in [0, 1] and their digits, as a Batch."""
        for i in range(start, self.steps_per_epoch(batch_size)):
            images, texts, _ = self.written(epoch, i, batch_size, seed)
            yield next_token_batch(images, self.tokens(texts), self.tokenizer.pad_token_id)

    def written(self, epoch, i, batch_size, seed):
        """Batch i of `epoch`: images (B, 1, 28, W) float in [0, 1], their digit strings, and the batch's generator
        (for whatever else the batch draws, as questions.QuestionBatches does)."""
        count = min(batch_size, self.strings_per_epoch - i * batch_size)
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch * 10_007 + i)
        pose = (lambda digits, g: pose_digits(digits, g, self.elastic)) if self.augment else None
        numbers = make_numbers(self.images, self.labels, count, generator, self.max_digits, transform=pose)
        images = numbers.images.float() / 255
        return (vary_strokes(images, generator) if self.strokes else images), numbers.texts, generator


class ReadingTest:
    """A set of written numbers (default: the fixed test set) and how well a reader reads them."""

    def __init__(self, numbers=None):
        self.numbers = numbers if numbers is not None else test_numbers()

    def evaluate(self, model):
        result = evaluate_reading(model, self.numbers)
        return {k: v for k, v in result.items() if k not in ("correct", "predictions")}


def read(model, images, batch_size=500):
    """Greedy reading: (texts, maps), maps (B, T, layers, heads, grid_h, grid_w) with T = block_size.

    maps[b, i] is where character i of texts[b] looked (zeros past the end of the text).
    """
    images = images.float() / 255 if images.dtype == torch.uint8 else images
    written = model.generate_text(images, batch_size=batch_size)
    T = model.config.decoder.block_size
    maps = torch.zeros(len(written), T, *written[0].attention.shape[1:]) if written else torch.zeros(0)
    for b, w in enumerate(written):
        maps[b, : len(w.text)] = w.attention
    return [w.text for w in written], maps


def read_number(model, picture):
    """The number in one picture, as text. Any picture preprocess_number takes (any size, dark ink on light paper or
    light on dark, PIL in any mode with its EXIF orientation, numpy, tensor) is first placed on the reader's canvas
    by preprocess_number: one input contract, whatever the size.

    A reader writes at most block_size - 2 digits (4 for the shipped one). A picture holding more
    separate pieces of ink side by side than that is refused with a ValueError rather than read as
    a shorter number; digits that touch make one piece, so such a number can still come back short.
    Noise and blots are refused too (drawings.NotADrawing), rather than read as some number.
    """
    check_reader(model)
    x = preprocess_number(picture, canvas=pair(model.config.vision.image_size))  # a blank, a dot: its sentences
    check_strokes(picture, "number")  # noise or a blot is refused, as the pads refuse it (drawings.py)
    check_not_a_blot(x, "number")
    check_digit_count(model, x[0])
    return model.generate_text(x)[0].text


def check_reader(model):
    """Refuse (ValueError) a model that is not a reader of numbers: one that answers questions, or writes other
    characters than digits, would write its own kind of text where a number is expected."""
    tokenizer = model.require_tokenizer()
    if getattr(tokenizer, "chat_template", None):
        raise ValueError("this model answers questions (it has a chat template): ask it with tasks.questions."
                         "answer_with_maps(model, picture, 'What number is written?'), or read with a reader")
    others = sorted({t for t in tokenizer.get_vocab() if t not in tokenizer.all_special_tokens} - set("0123456789"))
    if others:
        raise ValueError(f"this model writes other characters than digits ({''.join(others)[:20]!r}): read_number "
                         "needs a reader of numbers (tasks.numbers.new_reader, crossmodal.load_reader)")


def check_digit_count(model, image):
    """Refuse (ValueError) an (H, W) image on the reader's canvas, in [0, 1], that holds more separate pieces
    of ink side by side than the reader writes digits (block_size - 2: 4 for the shipped one)."""
    most = model.config.decoder.block_size - 2  # <bos> digits <eos>
    pieces = ink_pieces(image)
    if pieces > most:
        raise ValueError(f"the picture holds {pieces} separate pieces of ink side by side, more than {most} digits: "
                         f"this reader reads numbers of 1 to {most} digits; write or crop fewer")


def ink_pieces(image, min_width=3, min_height=0.6):
    """How many runs of columns with ink an (H, W) image holds, left to right: the separate pieces of a
    written number (a digit is one run, as its strokes overlap in x; touching digits make one together).
    A run counts when it is at least min_width pixels wide and its ink at least min_height × as tall as
    the tallest run's: specks and the loose end of a broken stroke are not digits. Measured: 1 of the
    10,000 numbers of the fixed test set counts as 5 pieces; 496 of 500 five-digit numbers of plain tiles do."""
    _, ink = find_ink(image)
    columns = ink.any(0).int()  # (W,): 1 where a column holds ink
    edges = torch.diff(torch.cat([columns.new_zeros(1), columns, columns.new_zeros(1)]))
    starts, ends = (edges == 1).nonzero().flatten().tolist(), (edges == -1).nonzero().flatten().tolist()
    heights = []
    for start, end in zip(starts, ends):
        rows = ink[:, start:end].any(1).nonzero().flatten()
        heights.append((end - start, int(rows[-1] - rows[0]) + 1))
    tallest = max((h for _, h in heights), default=0)
    return sum(w >= min_width and h >= min_height * tallest for w, h in heights)


def evaluate_reading(model, numbers, batch_size=500):
    """Read a `data.numbers.Numbers` set greedily: exact match, character error rate, accuracy by length, alignment.

    Returns a dict: exact_match, cer, by_length {"1": ..., ...}, alignment (see metrics.alignment), and
    correct (bool per number) and predictions (the texts written) for a failure gallery.
    """
    model.eval()
    predictions, maps = read(model, numbers.images, batch_size)
    correct = torch.tensor([p == r for p, r in zip(predictions, numbers.texts)])
    lengths = torch.tensor([len(r) for r in numbers.texts])
    by_length = {str(n): correct[lengths == n].float().mean().item() for n in sorted(set(lengths.tolist()))}
    patch = model.config.vision.patch_size
    return {"exact_match": correct.float().mean().item(),
            "cer": character_error_rate(predictions, numbers.texts), "by_length": by_length,
            "alignment": alignment(maps, predictions, numbers.texts, numbers.boxes, patch),
            "correct": correct, "predictions": predictions}


def _new_model(config, options):
    model = new_reader(config)
    return model, model.tokenizer


def _data(model, tokenizer, cfg, options, device):
    images, labels = load_mnist(train=True)
    stream = NumberBatches(images, labels, tokenizer, augment=cfg.augment, strokes=cfg.augment and cfg.augment_strokes,
                           elastic=cfg.augment_elastic)
    return stream, ReadingTest()


TASK = Task("numbers", "read handwritten numbers of 1 to 4 digits: '2026'", reader_config, _new_model, _data,
            TrainConfig(epochs=8, batch_size=64, lr=2e-3, warmup_steps=200, label_smoothing=0.1, ema=0.999))
