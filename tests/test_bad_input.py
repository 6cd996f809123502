"""Bad input gets a clear exception naming what was wrong and what is expected."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from crossmodal import BlankImageError, Captioner, load_mnist, preprocess_drawing


@pytest.mark.parametrize("image, message", [
    (torch.rand(3, 28, 28), "expected 28×28 grayscale"),
    (torch.rand(1, 3, 28, 28), "colour"),
    (torch.rand(32, 32), "preprocess_drawing"),
    (torch.rand(28), "expected 28×28"),
    (torch.rand(28, 28) * 255, r"\[0, 1\]"),
    (torch.full((28, 28), float("nan")), "NaN"),
    (torch.randint(0, 255, (28, 28), dtype=torch.int32), "uint8"),
    ("a picture of a seven", "tensor, numpy array or PIL image"),
])
def test_caption_refuses_bad_images(tiny_model, image, message):
    with pytest.raises((ValueError, TypeError), match=message):
        tiny_model.caption(image)


def test_caption_accepts_uint8_numpy_and_pil(tiny_model):
    pixels = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    a = tiny_model.caption(pixels).text
    assert tiny_model.caption(Image.fromarray(pixels)).text == a
    assert tiny_model.caption(torch.from_numpy(pixels).float() / 255).text == a


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_blank_image_is_a_defined_answer(tiny_model, value):
    with pytest.raises(BlankImageError, match="blank"):
        tiny_model.caption(torch.full((28, 28), value))


def test_blank_drawing_is_refused():
    with pytest.raises(BlankImageError, match="blank"):
        preprocess_drawing(np.full((200, 300), 255, dtype=np.uint8))


def test_missing_data_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setattr("torchvision.datasets.MNIST.mirrors", ["http://127.0.0.1:9/"])  # no network, fast
    with pytest.raises(RuntimeError, match="CROSSMODAL_DATA"):
        load_mnist(train=False, root=tmp_path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a crossmodal checkpoint"):
        Captioner.from_pretrained(tmp_path)


def test_corrupt_checkpoint(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])  # truncated download
    with pytest.raises(ValueError, match="corrupt or truncated"):
        Captioner.from_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="corrupt or truncated"):
        Captioner.from_pretrained(tmp_path)


def test_checkpoint_that_does_not_fit_its_config(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["vision"]["dim"] = 48
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="does not fit its config"):
        Captioner.from_pretrained(tmp_path)


def test_config_with_unknown_fields(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["decoder"]["n_layer"] = 2
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="n_layer"):
        Captioner.from_pretrained(tmp_path)
