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


# --- python -m crossmodal.train: refused before anything is written, so a trained model is never lost ---

def finished_run(folder):
    """A folder holding a trained run: a checkpoint with its trainer state and record."""
    from crossmodal.train import TrainConfig, train

    from .conftest import tiny_config

    torch.manual_seed(0)
    model = Captioner.for_mnist(tiny_config())
    data = torch.rand(64, 1, 28, 28), torch.arange(64) % 10
    train(model, TrainConfig(epochs=1, batch_size=32, augment=False), data, out=folder)
    (folder / "training.json").write_text('{"test_exact_match": 0.99}')
    return {f.name: f.read_bytes() for f in folder.iterdir()}


@pytest.mark.parametrize("flags, message", [
    ([], "already holds files"),
    (["--overwrite", "--epochs", "0"], r"epochs \(--epochs\) must be 1 or more, got 0"),
    (["--overwrite", "--epochs", "-3"], "must be 1 or more"),
    (["--overwrite", "--batch-size", "-5"], r"batch_size \(--batch-size\) must be 1 or more"),
    (["--overwrite", "--lr", "0"], "lr .* must be above 0"),
    (["--overwrite", "--decoder.num-heads", "3"], "multiple of decoder.num_heads"),
    (["--overwrite", "--threads", "0"], "--threads must be 1 or more"),
    (["--resume", "--lr", "0.1"], "--resume continues .* with the settings it was started with.*--lr 0.1"),
    (["--resume", "--epochs", "9"], "--epochs 9 \\(it used 1\\)"),
    (["--resume", "--overwrite"], "give one of them"),
])
def test_train_cli_never_touches_an_existing_run_on_bad_flags(tmp_path, monkeypatch, flags, message):
    from crossmodal import train as train_cli

    monkeypatch.setattr(train_cli, "load_mnist", lambda train: (torch.rand(64, 1, 28, 28), torch.arange(64) % 10))
    before = finished_run(tmp_path)
    with pytest.raises(SystemExit, match=message):
        train_cli.main(["--out", str(tmp_path), *flags])
    assert {f.name: f.read_bytes() for f in tmp_path.iterdir()} == before


@pytest.mark.parametrize("out, flags, message", [
    ("notes/", ["--resume"], "holds no run to continue"),  # a folder, but no trainer_state.json in it
    ("notes/notes.txt", [], "is a file"),
    ("notes/notes.txt/run", [], "is a file, not a folder"),
])
def test_train_cli_refuses_a_bad_out(tmp_path, monkeypatch, out, flags, message):
    from crossmodal import train as train_cli

    monkeypatch.setattr(train_cli, "load_mnist", lambda train: (torch.rand(64, 1, 28, 28), torch.arange(64) % 10))
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit, match=message):
        train_cli.main(["--out", str(tmp_path / out), *flags])
    assert (tmp_path / "notes" / "notes.txt").read_text() == "mine" and len(list(tmp_path.rglob("*"))) == 2


def test_train_cli_rejects_a_malformed_boolean(capsys):
    from crossmodal import train as train_cli

    with pytest.raises(SystemExit):
        train_cli.main(["--decoder.gated", "maybe"])
    assert "expected true or false, got 'maybe'" in capsys.readouterr().err


# --- checkpoints: config.json and the weights' header are checked before anything is built ---

@pytest.mark.parametrize("part, key, value, message", [
    ("vision", "dim", "64", "vision.dim must be of type int, got '64'"),
    ("decoder", "num_heads", 0, "decoder.num_heads must be above 0"),
    ("decoder", "dim", 33, r"decoder.dim \(33\) must be a multiple of decoder.num_heads"),
    ("decoder", "gated", "yes", "decoder.gated must be of type bool"),
    ("vision", "patch_size", [7, "7"], "vision.patch_size must be of type"),
    (None, "eos_id", 99, "eos_id must be a token id below"),
    ("vision", "dim", 4096, r"model.safetensors does not fit its config.json: .* is \(.*32\), the config needs"),
    ("vision", "timm_model", "hf-hub:timm/vit_tiny_patch16_224.augreg_in21k", "never downloads"),
])
def test_checkpoint_config_is_checked_before_building(tiny_model, tmp_path, monkeypatch, part, key, value, message):
    def no_network(*args, **kwargs):
        raise AssertionError("from_pretrained reached for the network")

    def only_on_meta(linear, real=torch.nn.Linear.reset_parameters):
        assert linear.weight.is_meta, "the model was built (its memory allocated) before the checkpoint was checked"
        real(linear)

    monkeypatch.setattr("socket.socket.connect", no_network)
    monkeypatch.setattr(torch.nn.Linear, "reset_parameters", only_on_meta)
    tiny_model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (config[part] if part else config)[key] = value
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=message) as error:
        Captioner.from_pretrained(tmp_path)
    assert str(tmp_path) in str(error.value)  # names the file at fault


def test_from_pretrained_moves_the_model_to_the_device(tiny_model, tmp_path, monkeypatch):
    """Loading copies the weights into CPU parameters; the model must then move (no GPU needed to check)."""
    tiny_model.save_pretrained(tmp_path)
    moved = []
    monkeypatch.setattr(Captioner, "to", lambda self, device: moved.append(str(device)) or self)
    Captioner.from_pretrained(tmp_path, device="cuda:1")
    assert moved == ["cuda:1"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_load_pretrained_on_the_gpu():
    from crossmodal import load_pretrained

    model = load_pretrained(device="cuda")
    assert all(p.device.type == "cuda" for p in model.parameters())
    assert model.caption(torch.zeros(28, 28).index_fill_(1, torch.tensor([13, 14]), 1.0)).text.startswith("This is")
