"""MNIST with captions, augmentation, and turning any drawing into an MNIST-like input."""

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from crossmodal import caption_for, preprocess_drawing
from crossmodal.data import augment
from crossmodal.data.mnist import MNISTCaptions, batches


def test_captions():
    assert caption_for(7) == "This is the number seven."
    assert caption_for(torch.tensor(0)) == "This is the number zero."


def test_dataset_pairs_images_with_captions(mnist_test):
    ds = MNISTCaptions(train=False)
    image, text = ds[0]
    assert len(ds) == 10_000 and image.shape == (1, 28, 28)
    assert text == caption_for(mnist_test[1][0])
    assert 0 <= image.min() and image.max() <= 1


def test_batches_cover_everything_once():
    images, labels = torch.arange(10).float().view(10, 1, 1, 1), torch.arange(10)
    order = torch.Generator().manual_seed(0)
    seen = torch.cat([y for _, y in batches(images, labels, 3, shuffle=True, generator=order)])
    assert sorted(seen.tolist()) == list(range(10))


def test_augment_keeps_shape_and_moves_ink():
    x = torch.zeros(4, 1, 28, 28)
    x[:, :, 8:20, 12:16] = 1
    y = augment(x, generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape and not torch.equal(x, y)
    assert (y.sum(dim=(1, 2, 3)) - x.sum(dim=(1, 2, 3))).abs().max() < 0.25 * x[0].sum()  # ink moved, not lost


def test_mnist_digits_survive_preprocessing(mnist_test):
    """An MNIST digit is already in MNIST's format: the recipe changes it by at most a pixel's shift."""
    images = mnist_test[0][:20]
    for image in images:
        again = preprocess_drawing(image[0])
        assert (again.sum() - image.sum()).abs() / image.sum() < 0.25
        shifts = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
        best = min((torch.roll(again, s, dims=(1, 2)) - image).abs().mean() for s in shifts)
        assert best < 0.08


def seven(size=(300, 200), ink=0, paper=255):
    picture = Image.new("L", size, paper)
    w, h = size
    ImageDraw.Draw(picture).line([(0.2 * w, 0.2 * h), (0.8 * w, 0.2 * h), (0.45 * w, 0.85 * h)], fill=ink,
                                 width=max(2, w // 15))
    return picture


@pytest.mark.parametrize("kind", ["pil", "numpy_uint8", "numpy_float", "tensor_chw", "rgb", "rgba", "inverted"])
def test_any_picture_becomes_mnist_like(kind):
    picture = seven()
    pixels = np.array(picture)
    drawing = {
        "pil": picture,
        "numpy_uint8": pixels,
        "numpy_float": pixels / 255.0,
        "tensor_chw": torch.from_numpy(pixels)[None],
        "rgb": np.stack([pixels] * 3, axis=-1),
        "rgba": np.dstack([np.zeros_like(pixels)] * 3 + [255 - pixels]),  # ink in the alpha channel
        "inverted": 255 - pixels,  # already white on black
    }[kind]
    x = preprocess_drawing(drawing)
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32
    assert x.max() == pytest.approx(1.0) and x.min() >= 0
    rows, cols = (x[0] > 0.1).any(1).nonzero(), (x[0] > 0.1).any(0).nonzero()
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 <= 21  # fits MNIST's 20×20 box
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    cy, cx = (x[0] * ys).sum() / x.sum(), (x[0] * xs).sum() / x.sum()
    assert abs(cy - 13.5) < 1 and abs(cx - 13.5) < 1  # centred by centre of mass


def test_every_format_gives_the_same_input():
    reference = preprocess_drawing(seven())
    pixels = np.array(seven())
    assert torch.allclose(preprocess_drawing(255 - pixels), reference, atol=1e-6)
    assert torch.allclose(preprocess_drawing(pixels / 255.0), reference, atol=1e-5)


@pytest.mark.parametrize("bad, error, message", [
    (np.zeros((10, 10, 5)), ValueError, "colour channels"),
    (np.zeros((2, 3, 4, 5)), ValueError, "shaped"),
    (np.full((10, 10), np.nan), ValueError, "NaN"),
    (np.full((10, 10), 3.0), ValueError, r"\[0, 1\]"),
    ([[0, 1], [1, 0]], TypeError, "numpy array"),
])
def test_bad_drawings_are_explained(bad, error, message):
    with pytest.raises(error, match=message):
        preprocess_drawing(bad)
