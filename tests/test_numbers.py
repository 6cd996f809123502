"""Handwritten numbers (data/numbers.py): deterministic, split by MNIST's own split, boxes on the ink, any layout."""

import hashlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from crossmodal import BlankImageError, DecoderConfig, VisionConfig, VLMConfig, preprocess_number
from crossmodal.data import numbers
from crossmodal.data.numbers import as_bytes, make_numbers, pose_digits, resize
from crossmodal.data.numbers import test_numbers as published_test_set  # (a name pytest would collect as a test)
from crossmodal.tasks.numbers import NumberBatches, new_reader

# SHA-256 of the published test set (images, then texts joined by newlines, then boxes as little-endian int64)
TEST_SET_SHA256 = "c88e6ab326ef9b42065a96b2e86e3d4e854c2a09c3de33612b72abe6fb9593c6"


def fingerprint(n):
    return hashlib.sha256(n.images.numpy().tobytes() + "\n".join(n.texts).encode()
                          + n.boxes.numpy().astype("<i8").tobytes()).hexdigest()


def small_numbers(mnist, count=200, seed=0, **kwargs):
    return make_numbers(*mnist, count, torch.Generator().manual_seed(seed), **kwargs)


def test_same_seed_same_bytes(mnist_test):
    a, b, c = small_numbers(mnist_test, 50), small_numbers(mnist_test, 50), small_numbers(mnist_test, 50, seed=1)
    assert fingerprint(a) == fingerprint(b) != fingerprint(c)
    assert a.images.dtype == torch.uint8 and a.images.shape == (50, 1, 28, 112)


def test_the_published_test_set_is_the_same_everywhere(mnist_test):
    n = published_test_set()
    assert len(n.texts) == 10_000 and n.images.shape == (10_000, 1, 28, 112)
    assert [sum(len(t) == k for t in n.texts) for k in (1, 2, 3, 4)] == [2500] * 4  # length-balanced
    assert fingerprint(n) == TEST_SET_SHA256


def fake_mnist(value, count=30):
    """Images whose ink is one shade, `value`, so the shade in a number tells which pool it came from."""
    images = torch.zeros(count, 1, 28, 28, dtype=torch.uint8)
    images[:, :, 6:22, 10:18] = value
    return images, torch.arange(count) % 10


def test_test_numbers_use_test_images_and_training_numbers_training_images(monkeypatch):
    splits = {True: fake_mnist(200), False: fake_mnist(90)}
    monkeypatch.setattr(numbers, "load_mnist", lambda train, root=None: splits[train])
    numbers._test_numbers.cache_clear()  # made once per process: make it again from the fake MNIST
    try:
        assert published_test_set(count=40).images.max() <= 90  # bilinear scaling never brightens a stroke
    finally:
        numbers._test_numbers.cache_clear()
    stream = NumberBatches(*splits[True], new_reader().tokenizer, strings_per_epoch=40)
    shades = torch.cat([batch.images for batch in stream.batches(0, 16, seed=0)]).unique()
    assert shades.max() == 200 / 255 and not torch.isin(torch.tensor(90 / 255), shades)


def test_boxes_are_the_tight_boxes_of_the_ink(mnist_test):
    n = small_numbers(mnist_test, 300)
    for image, text, boxes in zip(n.images[:, 0], n.texts, n.boxes):
        boxes = boxes[: len(text)].tolist()
        assert (torch.tensor(boxes)[:, 0] >= 0).all() and all(b[2] <= 28 and b[3] <= 112 for b in boxes)
        covered = torch.zeros_like(image, dtype=torch.bool)
        for top, left, bottom, right in boxes:
            covered[top:bottom, left:right] = True
            inside = image[top:bottom, left:right] > 0
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()  # tight
        assert not (image[~covered] > 0).any()  # no ink outside the boxes
        assert [b[1] for b in boxes] == sorted(b[1] for b in boxes)  # in reading order
    single = small_numbers(mnist_test, 30, max_digits=4, lengths=[1] * 30)
    for image, box in zip(single.images[:, 0], single.boxes[:, 0]):
        assert numbers.ink_box(image.numpy()) == tuple(box.tolist())  # one digit: its box is the canvas's ink


def test_digits_do_not_sit_in_fixed_slots(mnist_test):
    n = small_numbers(mnist_test, 400, lengths=[4] * 400)
    first_left, widths = n.boxes[:, 0, 1].float(), (n.boxes[:, :, 3] - n.boxes[:, :, 1]).float()
    assert first_left.std() > 3 and len(first_left.unique()) > 10
    assert widths.std() > 2 and (n.boxes[:, :, 2] - n.boxes[:, :, 0]).unique().numel() > 8  # sizes vary
    overlapping = (n.boxes[:, 1:, 1] < n.boxes[:, :-1, 3]).any(1)
    assert 0 < overlapping.float().mean() < 0.8  # some digits touch or overlap, most do not


def test_every_style_and_a_wrong_count_is_refused(mnist_test):
    for style in numbers.STYLES:
        assert small_numbers(mnist_test, 5, style=style).images.shape == (5, 1, 28, 112)
    with pytest.raises(ValueError, match="style must be one of"):
        small_numbers(mnist_test, 1, style="diagonal")
    with pytest.raises(ValueError, match="lengths must be"):
        small_numbers(mnist_test, 2, lengths=[5, 1])


def test_integer_resize_is_bilinear():
    torch.manual_seed(0)
    image = (torch.rand(20, 13) * 255).round().to(torch.uint8)
    assert np.array_equal(resize(image.numpy(), 20, 13), image.numpy())
    for size in [(26, 17), (24, 9), (15, 10)]:
        ours = torch.from_numpy(resize(image.numpy(), *size)).float()
        reference = F.interpolate(image[None, None].float(), size=size, mode="bilinear", align_corners=False)[0, 0]
        assert (ours - reference).abs().max() <= 0.5 + 1e-4  # the same, to rounding


def test_preprocess_number_places_any_number_on_the_canvas(mnist_test):
    images, _ = mnist_test
    two = torch.cat([images[0, 0], images[1, 0]], dim=1)  # (28, 56): someone else's way of writing "72"
    placed = preprocess_number(two)
    assert placed.shape == (1, 28, 112)
    top, left, bottom, right = numbers.ink_box((placed[0] > 0.1).numpy())
    assert bottom - top in (19, 20, 21) and abs((left + right) / 2 - 56) <= 1.5  # MNIST's height, centred
    assert preprocess_number(255 - (two * 255).to(torch.uint8)).shape == (1, 28, 112)  # dark ink on paper
    with pytest.raises(BlankImageError, match="blank"):
        preprocess_number(torch.zeros(40, 90))
    dot = torch.zeros(40, 90)
    dot[20, 30] = 1
    with pytest.raises(ValueError, match="a dot"):
        preprocess_number(dot)
    line = torch.zeros(30, 400)
    line[10:20, 5:395] = 1  # 39 times as wide as high
    with pytest.raises(ValueError, match="too wide"):
        preprocess_number(line)


def test_a_reader_reads_digit_strings_with_rectangular_maps():
    torch.manual_seed(0)
    model = new_reader(VLMConfig(VisionConfig(image_size=(28, 112), dim=16, depth=1, num_heads=2),
                                                  DecoderConfig(dim=16, depth=2, num_heads=2, block_size=6))).eval()
    assert model.tokenizer.convert_ids_to_tokens(list(range(4, len(model.tokenizer)))) == list("0123456789")
    assert model.encoder.grid_size == (7, 28)
    number = torch.zeros(1, 28, 112)
    number[:, 4:24, 30:80] = torch.rand(20, 50)
    caption = model.caption(number)
    assert caption.attention.shape == (len(caption.text), 2, 2, 7, 28)
    with pytest.raises(ValueError, match="preprocess_number"):
        model.caption(torch.rand(28, 56))
    proposed = new_reader()
    size = sum(p.numel() for p in proposed.parameters())
    assert size * 4 < 5e6 and proposed.config.decoder.block_size == 6  # a checkpoint under 5 MB


def test_augmented_stream_poses_each_digit_and_repeats_with_its_seed(mnist_train):
    tokenizer = new_reader().tokenizer
    plain = NumberBatches(*mnist_train, tokenizer, strings_per_epoch=64)
    posed = NumberBatches(*mnist_train, tokenizer, strings_per_epoch=64, augment=True, strokes=True)
    (x0, t0, _, _), (x1, t1, y1, _), (x2, t2, y2, _) = (next(s.batches(3, 64, seed=5)) for s in (plain, posed, posed))
    assert torch.equal(x1, x2) and torch.equal(t1, t2) and torch.equal(y1, y2)  # a resumed run sees the same batches
    assert x1.shape == x0.shape and 0 <= x1.min() and x1.max() <= 1
    assert not torch.equal(x1, x0)
    assert (x1.flatten(1).amax(1) > 0.5).all()  # every number keeps its ink


def test_pose_digits_moves_ink_but_keeps_it(mnist_train):
    digits = as_bytes(mnist_train[0][:32])[:, 0].numpy()  # (32, 28, 28) uint8
    posed = pose_digits(digits, torch.Generator().manual_seed(0))
    assert posed.shape == digits.shape and posed.dtype == digits.dtype
    assert (posed != digits).any(axis=(1, 2)).mean() > 0.9  # nearly every digit moved
    ink, posed_ink = (digits > 127).sum((1, 2)), (posed > 127).sum((1, 2))
    assert ((posed_ink > 0.6 * ink) & (posed_ink < 1.6 * ink)).all()  # turned and scaled, not erased or smeared
