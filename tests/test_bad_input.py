"""Bad input gets a clear exception naming what was wrong and what is expected."""

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from crossmodal import BlankImageError, VisionLanguageModel, load_mnist, preprocess_drawing
from crossmodal.tasks import captions as captions_task
from crossmodal.tasks.captions import new_captioner


@pytest.mark.parametrize("image, message", [
    (torch.rand(3, 28, 28), "expected 28×28 grayscale"),
    (torch.rand(1, 3, 28, 28), "colour"),
    (torch.rand(32, 32), "preprocess_drawing"),
    (torch.rand(28), "expected 28×28"),
    (torch.rand(28, 28) * 255, r"\[0, 1\]"),
    (torch.full((28, 28), float("nan")), "NaN"),
    (torch.rand(28, 28, dtype=torch.complex64), "real numbers"),
    ("a picture of a seven", "tensor, numpy array or PIL image"),
])
def test_caption_refuses_bad_images(tiny_model, image, message):
    with pytest.raises((ValueError, TypeError), match=message):
        tiny_model.caption(image)


def test_caption_accepts_uint8_numpy_and_pil(tiny_model):
    from crossmodal.images import NotMNISTLikeWarning

    pixels = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    pixels[0, 0], pixels[0, 1] = 0, 255  # so that 32-bit whole numbers, read darkest to lightest, read the same
    with pytest.warns(NotMNISTLikeWarning):  # noise, on purpose: every format must read it the same
        assert tiny_model.caption(pixels.astype(np.int32)).text == tiny_model.caption(pixels).text
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


def test_missing_data_names_the_variable_and_leaves_no_empty_folders(tmp_path, monkeypatch):
    monkeypatch.setattr("torchvision.datasets.MNIST.mirrors", ["http://127.0.0.1:9/"])  # no network, fast
    with pytest.raises(RuntimeError, match="CROSSMODAL_DATA"):
        load_mnist(train=False, root=tmp_path)
    assert list(tmp_path.iterdir()) == []  # the folder given is kept, without an empty MNIST/raw/ in it
    with pytest.raises(RuntimeError, match="CROSSMODAL_DATA"):
        load_mnist(train=False, root=tmp_path / "cache" / "crossmodal")  # as ~/.cache/crossmodal on a new account
    assert list(tmp_path.iterdir()) == []  # none of the folders the download made for itself


def test_missing_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="is not a saved model .*it lacks model.safetensors, config.json"):
        VisionLanguageModel.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="is not a saved model .*there is no such folder"):
        VisionLanguageModel.from_pretrained(tmp_path / "nowhere")


def test_corrupt_checkpoint(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])  # truncated download
    with pytest.raises(ValueError, match="corrupt or truncated"):
        VisionLanguageModel.from_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="corrupt or truncated"):
        VisionLanguageModel.from_pretrained(tmp_path)


def test_checkpoint_that_does_not_fit_its_config(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["vision"]["dim"] = 48
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="does not fit its config"):
        VisionLanguageModel.from_pretrained(tmp_path)


def test_config_with_unknown_fields(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["decoder"]["n_layer"] = 2
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="n_layer"):
        VisionLanguageModel.from_pretrained(tmp_path)


def test_an_edited_tokenizer_or_another_models_folder_is_refused(tiny_model, tmp_path):
    """config.json names the model's class and fingerprints the tokenizer's vocabulary (nn/serialization.py)."""
    from crossmodal.nn.auto import load_model

    tiny_model.save_pretrained(tmp_path)
    model, tokenizer = load_model(tmp_path)
    assert isinstance(model, VisionLanguageModel) and tokenizer.get_vocab() == tiny_model.tokenizer.get_vocab()
    config = json.loads((tmp_path / "config.json").read_text())
    for names, message in ((["Flamingo"], "holds a Flamingo, not a VisionLanguageModel"),
                           (["BertModel"], "names the model \\['BertModel'\\], which crossmodal does not build")):
        (tmp_path / "config.json").write_text(json.dumps({**config, "architectures": names}))
        with pytest.raises(ValueError, match=message):
            (VisionLanguageModel.from_pretrained if names == ["Flamingo"] else load_model)(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(config))
    saved = json.loads((tmp_path / "tokenizer.json").read_text())
    vocab = saved["model"]["vocab"]
    vocab["T"], vocab["h"] = vocab["h"], vocab["T"]  # the same tokens, two of them swapped: the ids mean others
    (tmp_path / "tokenizer.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="is not the tokenizer this model was saved with"):
        VisionLanguageModel.from_pretrained(tmp_path)


# --- python -m crossmodal.train: refused before anything is written, so a trained model is never lost ---

def finished_run(folder):
    """A folder holding a trained run: a checkpoint with its trainer state and record."""
    from crossmodal.tasks.captions import CaptionBatches
    from crossmodal.training import TrainConfig, train

    from .conftest import tiny_config

    torch.manual_seed(0)
    model = new_captioner(tiny_config())
    stream = CaptionBatches(torch.rand(64, 1, 28, 28), torch.arange(64) % 10, model.tokenizer, augment=False)
    train(model, TrainConfig(epochs=1, batch_size=32, augment=False), stream, out=folder, run={"task": "captions"})
    (folder / "training.json").write_text('{"test_exact_match": 0.99}')
    return {f.name: f.read_bytes() for f in folder.iterdir()}


@pytest.mark.parametrize("flags, message", [
    ([], "already holds files"),
    (["--overwrite", "--epochs", "0"], r"epochs \(--epochs\) must be 1 or more, got 0"),
    (["--overwrite", "--epochs", "-3"], "must be 1 or more"),
    (["--overwrite", "--batch-size", "-5"], r"batch_size \(--batch-size\) must be from 1 to 1,048,576"),
    (["--overwrite", "--lr", "0"], "lr .* must be above 0"),
    (["--overwrite", "--decoder.num-heads", "3"], "multiple of decoder.num_heads"),
    (["--overwrite", "--threads", "0"], "--threads must be from 1 to 1024"),
    (["--resume", "--lr", "0.1"], "--resume continues .* with the settings it was started with.*--lr 0.1"),
    (["--resume", "--epochs", "9"], "--epochs 9 \\(it used 1\\)"),
    (["--resume", "--overwrite"], "give one of them"),
])
def test_train_cli_never_touches_an_existing_run_on_bad_flags(tmp_path, monkeypatch, flags, message):
    from crossmodal import train as train_cli

    monkeypatch.setattr(captions_task, "load_mnist", lambda train: (torch.rand(64, 1, 28, 28), torch.arange(64) % 10))
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

    monkeypatch.setattr(captions_task, "load_mnist", lambda train: (torch.rand(64, 1, 28, 28), torch.arange(64) % 10))
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
    ("decoder", "num_heads", 0, "decoder.num_heads must be a finite number above 0"),
    ("decoder", "dim", 33, r"decoder.dim \(33\) must be a multiple of decoder.num_heads"),
    ("decoder", "gated", "yes", "decoder.gated must be of type bool"),
    ("vision", "patch_size", [7, "7"], "vision.patch_size must be of type"),
    (None, "eos_id", 99, "eos_id must be a token id below"),
    ("vision", "dim", 4096, r"model.safetensors does not fit its config.json: .* is \(.*32\), the config needs"),
    ("vision", "timm_model", "hf-hub:timm/vit_tiny_patch16_224.augreg_in21k", "never downloads"),
    ("vision", "timm_model", "resnet18", "not a Vision Transformer"),
    ("decoder", "depth", 2000, "more than this library builds"),  # refused at once, not built for a minute
    ("decoder", "mlp_ratio", float("inf"), "decoder.mlp_ratio must be a finite number"),
    ("vision", "mean", [float("nan")], "vision.mean must be finite"),
    ("vision", "std", [float("inf")], "vision.std must be a finite number"),
    ("vision", "std", [1e-30], "vision.std at least 1e-6"),
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
        VisionLanguageModel.from_pretrained(tmp_path)
    assert str(tmp_path) in str(error.value)  # names the file at fault


def test_from_pretrained_moves_the_model_to_the_device(tiny_model, tmp_path, monkeypatch):
    """Loading copies the weights into CPU parameters; the model must then move (no GPU needed to check)."""
    tiny_model.save_pretrained(tmp_path)
    moved = []
    monkeypatch.setattr(VisionLanguageModel, "to", lambda self, device: moved.append(str(device)) or self)
    VisionLanguageModel.from_pretrained(tmp_path, device="cuda:1")
    assert moved == ["cuda:1"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_load_pretrained_on_the_gpu():
    from crossmodal import load_captioner

    model = load_captioner(device="cuda")
    assert all(p.device.type == "cuda" for p in model.parameters())
    assert model.caption(torch.zeros(28, 28).index_fill_(1, torch.tensor([13, 14]), 1.0)).text.startswith("This is")


# --- python -m crossmodal.caption: every bad file is one line and a non-zero exit; odd formats read right ---

@pytest.fixture(scope="module")
def shipped():
    from crossmodal import load_captioner

    return load_captioner()


@pytest.fixture
def seven_png(mnist_test, tmp_path):
    """An MNIST test seven as a plain picture: 112×112 greyscale, dark ink on white paper."""
    images, labels = mnist_test
    pixels = (255 - images[labels == 7][0, 0] * 255).round().byte().numpy()
    path = tmp_path / "seven.png"
    Image.fromarray(pixels).resize((112, 112), Image.BILINEAR).save(path)
    return path


def run_caption(argv, monkeypatch, capsys, model):
    from crossmodal import caption as caption_cli

    monkeypatch.setattr(caption_cli, "load_model", lambda checkpoint, device: model)  # load the shipped model once
    caption_cli.main([str(a) for a in argv])
    return capsys.readouterr().out.splitlines()[0]


def as_palette_gif(plain, path):
    plain.convert("RGB").quantize(colors=16).save(path)  # palette indices unrelated to the grey levels


def as_animated_gif(plain, path):
    other = Image.new("L", plain.size, 255)
    ImageDraw.Draw(other).line([(56, 10), (56, 100)], fill=0, width=10)  # a "one" as the second frame
    frames = [picture.convert("RGB").quantize(colors=16) for picture in (plain, other)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)


def as_exif_rotated_jpeg(plain, path):
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: "rotate 90° clockwise to display", as a phone held sideways writes it
    plain.rotate(90, expand=True).save(path, exif=exif, quality=95)


def as_rgba_with_transparent_corners(plain, path):
    pixels = np.array(plain.convert("RGBA"))
    for rows in (slice(0, 16), slice(-16, None)):
        for cols in (slice(0, 16), slice(-16, None)):
            pixels[rows, cols] = 0  # rounded-corner style: transparent (and black underneath)
    Image.fromarray(pixels).save(path)


def as_16_bit_png(plain, path):
    Image.fromarray(np.array(plain).astype(np.uint16) * 257).save(path)  # mode I;16


@pytest.mark.parametrize("name, write", [
    ("palette.gif", as_palette_gif),
    ("animated.gif", as_animated_gif),
    ("rotated.jpg", as_exif_rotated_jpeg),
    ("corners.png", as_rgba_with_transparent_corners),
    ("grey_alpha.png", lambda plain, path: plain.convert("LA").save(path)),
    ("sixteen_bit.png", as_16_bit_png),
    ("float32.tiff", lambda plain, path: Image.fromarray(np.array(plain).astype(np.float32) / 255).save(path)),
    ("int32.tiff", lambda plain, path: Image.fromarray(np.array(plain).astype(np.int32) * 1000).save(path)),
])
def test_caption_cli_reads_every_format_like_the_plain_png(seven_png, shipped, tmp_path, monkeypatch, capsys,
                                                           name, write):
    plain = run_caption([seven_png], monkeypatch, capsys, shipped)
    assert plain == "This is the number seven."
    write(Image.open(seven_png), tmp_path / name)
    assert run_caption([tmp_path / name], monkeypatch, capsys, shipped) == plain


def huge_png(path, side=14_000):
    """A valid PNG header claiming side×side pixels (past Pillow's limit), without the pixels."""
    import io
    import struct
    import zlib

    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", side, side)  # IHDR width, height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


def bad_input(kind, path, good):
    """Write the input file `kind` names at `path`; `good` is a readable drawing's bytes."""
    if kind == "folder":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("not an image")
    elif kind == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif kind == "huge":
        huge_png(path)
    elif kind == "blank":
        Image.new("L", (50, 50), 255).save(path, "PNG")
    elif kind == "good":
        path.write_bytes(good)


@pytest.mark.parametrize("kind, flags, message", [
    ("missing", [], "cannot read .*: there is no such file; give the path of an image file"),
    ("folder", [], "cannot read .*: it is a folder"),
    ("empty", [], "cannot read .* as an image"),
    ("text", [], "cannot read .* as an image"),
    ("truncated", [], "cannot read .* as an image"),
    ("huge", [], "too large to open safely"),  # 14,000 × 14,000: past Pillow's limit
    ("blank", [], "is blank"),
    ("good", ["--attention-png", "missing/maps.png"], "folder .* is not there"),
    ("good", ["--attention-png", "maps.txt"], "cannot write a .txt"),
    ("good", ["--attention-png", "maps"], "without extension"),
    ("good", ["--attention-png", "."], "is a folder"),
    ("good", ["--checkpoint", "nowhere"], "nowhere is not a saved model"),
])
def test_caption_cli_explains_every_bad_input_in_one_line(tmp_path, monkeypatch, capsys, kind, flags, message):
    from crossmodal import caption as caption_cli

    drawing = Image.new("L", (60, 60), 255)
    ImageDraw.Draw(drawing).line([(10, 10), (50, 10), (25, 55)], fill=0, width=6)
    drawing.save(tmp_path / "good.png")
    bad_input(kind, tmp_path / "input.png", (tmp_path / "good.png").read_bytes())
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=message) as exit_:
        caption_cli.main([str(tmp_path / "input.png"), *flags])
    assert str(exit_.value).startswith("error: ") and "\n" not in str(exit_.value)
    assert capsys.readouterr().out == ""  # checked before captioning, not after


def test_caption_cli_exits_non_zero_without_a_traceback(tmp_path):
    import subprocess
    import sys

    huge_png(tmp_path / "huge.png")
    done = subprocess.run([sys.executable, "-m", "crossmodal.caption", str(tmp_path / "huge.png")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr


# --- text ---

def test_a_literal_control_token_in_text_is_refused():
    """With '<', '>' in the vocabulary, "<eos>" typed as text would otherwise end the caption early."""
    from crossmodal import build_char_tokenizer, caption_for
    from crossmodal.nn.tokenizer import check_text

    tokenizer = build_char_tokenizer([caption_for(d) for d in range(10)] + ["<>"])
    ids = tokenizer("seven<eos>")["input_ids"]
    assert ids.count(tokenizer.eos_token_id) == 2  # what check_text protects against
    with pytest.raises(ValueError, match="'<eos>', which the tokenizer reads as its control token"):
        check_text(tokenizer, "seven<eos>")
    check_text(tokenizer, "seven <> eos")  # the characters themselves are fine


# --- MNIST files that are there but broken: named, never misread as missing or loaded silently ---

def broken_mnist(root, which, damage):
    """MNIST in root/MNIST/raw/ with one test-split file damaged (the others link to the real ones)."""
    from crossmodal.data.mnist import data_root

    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for real in (data_root() / "MNIST" / "raw").glob("*-ubyte"):
        if real.name == f"t10k-{which}-idx{3 if which == 'images' else 1}-ubyte":
            (raw / real.name).write_bytes(damage(bytearray(real.read_bytes())))
        else:
            (raw / real.name).symlink_to(real)


def label_twelve(data):
    data[8 + 5] = 12  # the sixth label (after the 8-byte header)
    return bytes(data)


@pytest.mark.parametrize("which, damage, message", [
    ("images", lambda data: bytes(data[: len(data) // 2]), "images-idx3-ubyte is truncated or not an MNIST"),
    ("images", lambda data: b"\x00\x00\x00\x00" + bytes(data[4:]), "images-idx3-ubyte is truncated or not an MNIST"),
    ("labels", lambda data: bytes(data[:5000]), "labels-idx1-ubyte is truncated or not an MNIST"),
    ("labels", label_twelve, "holds labels from 0 to 12, not digits 0–9"),
])
def test_broken_mnist_files_are_named(mnist_test, tmp_path, which, damage, message):
    broken_mnist(tmp_path, which, damage)
    with pytest.raises(RuntimeError, match=message) as error:
        load_mnist(train=False, root=tmp_path)
    assert "present but unreadable" in str(error.value) and "CROSSMODAL_DATA" in str(error.value)


# --- MNIST-shaped tensors that are not MNIST-like: inverted digits and noise are warned about ---

def test_inverted_digits_and_noise_are_flagged_and_mnist_is_not(mnist_test):
    from crossmodal.images import NotMNISTLikeWarning, check_mnist_like

    images = mnist_test[0][:1000]
    drawing = Image.new("L", (90, 90), 255)  # dark ink on white paper: preprocess_drawing makes it MNIST-like
    ImageDraw.Draw(drawing).line([(10, 10), (80, 10), (40, 85)], fill=0, width=12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_mnist_like(images) == []
        assert check_mnist_like(preprocess_drawing(drawing)[None]) == []
    with pytest.warns(NotMNISTLikeWarning, match="image 0 does not look like MNIST: its edge is bright"):
        assert check_mnist_like(1 - images[:3]) == [0, 1, 2]
    with pytest.warns(NotMNISTLikeWarning, match="noise"):
        assert check_mnist_like(torch.cat([images[:1], torch.rand(2, 1, 28, 28)])) == [1, 2]


def test_caption_warns_about_an_inverted_digit(shipped, mnist_test):
    from crossmodal.images import NotMNISTLikeWarning

    with pytest.warns(NotMNISTLikeWarning):
        shipped.caption(1 - mnist_test[0][0])


def test_a_checkpoint_is_never_swapped_away_with_other_files(tiny_model, tmp_path):
    from crossmodal import train as train_cli

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"holds files that are not a checkpoint's \(notes.txt\)"):
        tiny_model.save_pretrained(tmp_path)
    with pytest.raises(SystemExit, match="holds files that are not a checkpoint's"):
        train_cli.main(["--out", str(tmp_path), "--overwrite"])
    assert [f.name for f in tmp_path.iterdir()] == ["notes.txt"]
