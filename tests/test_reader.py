"""The reader of handwritten numbers shipped inside the package, measured.

Its reading of the whole fixed test set, and where it looks, are checked by notebook 07 against its
training.json (run by the test command, nbval); here: the record tells how it was made, the maps move left
to right, it reads numbers composed in ways its training data never used, and it refuses pictures it cannot
read with a clear message.
"""

import json

import pytest
import torch

from crossmodal import BlankImageError, load_reader, preprocess_number
from crossmodal.data.numbers import test_numbers as published_numbers  # (a name pytest would collect as a test)
from crossmodal.pretrained import record, shipped_dir
from crossmodal.tasks.numbers import read_number

READER_DIR = shipped_dir("reader")


def reader_record():
    return record("reader")


@pytest.fixture(scope="module")
def reader():
    torch.set_num_threads(2)
    return load_reader()


def test_shipped_files_are_small_and_say_how_they_were_made():
    total = sum(f.stat().st_size for f in READER_DIR.iterdir())
    assert total <= 5 * 1024 * 1024, f"{total / 1e6:.1f} MB"
    record = reader_record()
    assert record["command"].startswith("python -m crossmodal.train --task numbers")
    steps = [e["step"] for e in record["evaluations"]]
    assert steps == sorted(steps) and record["evaluations"][-1]["exact_match"] == record["test_exact_match"]
    assert json.loads((READER_DIR / "config.json").read_text())["vision"]["image_size"] == [28, 112]


def test_attention_moves_left_to_right(reader):
    numbers = published_numbers()
    four = [i for i, t in enumerate(numbers.texts) if len(t) == 4][:200]
    captions = reader.caption(numbers.images[four])
    in_order = [c.attention.mean((1, 2)).flatten(1).argmax(1) % c.attention.shape[-1] for c in captions
                if len(c.text) == 4]  # the peak column of each character's layer-and-head mean
    share = sum(bool((cols[1:] >= cols[:-1]).all()) for cols in in_order) / len(in_order)
    assert share >= 0.9, share


def spaced_tiles(images, labels, count, seed):
    """Another composer than data/numbers.py's: whole 28 × 28 tiles, gaps of 0-16 px, shifts of ±3 px, as wide
    as the number needs (so read_number must first place it on the reader's canvas)."""
    g = torch.Generator().manual_seed(seed)
    pictures, texts = [], []
    for _ in range(count):
        n = int(torch.randint(1, 5, (), generator=g))
        picks = torch.randint(0, len(images), (n,), generator=g).tolist()
        gaps = torch.randint(0, 17, (n,), generator=g).tolist()
        shifts = torch.randint(-3, 4, (n,), generator=g).tolist()
        canvas, x = torch.zeros(34, 28 * n + sum(gaps[1:])), 0
        for p, gap, shift in zip(picks, [0] + gaps[1:], shifts):
            x += gap
            canvas[3 + shift : 31 + shift, x : x + 28] = images[p, 0]
            x += 28
        pictures.append(canvas)
        texts.append("".join(str(labels[p].item()) for p in picks))
    return pictures, texts


def fixed_slots(images, labels, count, seed):
    """Numbers on the reader's own 28 × 112 canvas, each digit in its own 28-pixel slot from the left."""
    g = torch.Generator().manual_seed(seed)
    pictures, texts = [], []
    for _ in range(count):
        n = int(torch.randint(1, 5, (), generator=g))
        picks = torch.randint(0, len(images), (n,), generator=g).tolist()
        canvas = torch.zeros(28, 112)
        for slot, p in enumerate(picks):
            canvas[:, 28 * slot : 28 * slot + 28] = images[p, 0]
        pictures.append(canvas)
        texts.append("".join(str(labels[p].item()) for p in picks))
    return pictures, texts


@pytest.mark.parametrize("compose", [spaced_tiles, fixed_slots])
def test_reads_numbers_composed_another_way(reader, mnist_test, compose):
    pictures, texts = compose(*mnist_test, 300, seed=5)
    read = [read_number(reader, p) for p in pictures]
    accuracy = sum(r == t for r, t in zip(read, texts)) / len(texts)
    assert accuracy >= 0.9, (compose.__name__, accuracy)


def test_pictures_it_cannot_read_are_refused_clearly(reader, mnist_test):
    images, _ = mnist_test
    with pytest.raises(BlankImageError, match="blank"):
        read_number(reader, torch.zeros(28, 112))
    dot = torch.zeros(28, 112)
    dot[14, 50] = 1.0
    with pytest.raises(ValueError, match="a dot"):
        read_number(reader, dot)
    with pytest.raises(ValueError, match="preprocess_number"):  # caption() takes the canvas's size only
        reader.caption(images[0])
    six = torch.cat([images[i, 0] for i in range(6)], dim=1)  # (28, 168): six digits, more than it reads
    with pytest.raises(ValueError, match="more than 4 digits|too wide"):
        read_number(reader, six)
    placed = preprocess_number(images[0, 0])  # one digit is fine: centred on the canvas, 20 px high
    assert placed.shape == (1, 28, 112)
