"""The two command-line tools: crossmodal.caption and crossmodal.train."""

import json
import os

import pytest
import torch
from PIL import Image, ImageDraw

from crossmodal import VisionLanguageModel
from crossmodal import caption as caption_cli
from crossmodal import train as train_cli
from crossmodal.tasks import captions as captions_task


def drawing(path, blank=False):
    picture = Image.new("L", (120, 90), 255)  # dark ink on white paper, not MNIST's size
    if not blank:
        ImageDraw.Draw(picture).line([(40, 15), (80, 15), (55, 80)], fill=0, width=8)
    picture.save(path)
    return str(path)


def test_caption_prints_text_and_writes_the_maps(tiny_model, tmp_path, capsys):
    tiny_model.save_pretrained(tmp_path / "ckpt")
    png = tmp_path / "maps.png"
    caption_cli.main([drawing(tmp_path / "seven.png"), "--checkpoint", str(tmp_path / "ckpt"),
                      "--attention-png", str(png)])
    text = capsys.readouterr().out.splitlines()[0]
    expected = tiny_model.caption(tiny_model_input(tmp_path / "seven.png")).text
    assert text == expected
    assert Image.open(png).size[0] > 200


def tiny_model_input(path):
    from crossmodal import preprocess_drawing

    return preprocess_drawing(Image.open(path))


@pytest.mark.parametrize("content, message", [("blank", "is blank"), ("text", "cannot read"), (None, "cannot read")])
def test_caption_explains_bad_files(tmp_path, content, message):
    path = tmp_path / "input.png"
    if content == "blank":
        drawing(path, blank=True)
    elif content == "text":
        path.write_text("not an image")
    with pytest.raises(SystemExit, match=message):
        caption_cli.main([str(path)])


def test_train_cli_writes_a_checkpoint_and_its_record(tmp_path, monkeypatch, mnist_train, mnist_test, capsys):
    small = {True: (mnist_train[0][:256], mnist_train[1][:256]), False: (mnist_test[0][:200], mnist_test[1][:200])}
    monkeypatch.setattr(captions_task, "load_mnist", lambda train: small[train])  # CaptionBatches' and CaptionTest's
    argv = ["--epochs", "1", "--batch-size", "64", "--out", str(tmp_path), "--threads", "2", *TINY_FLAGS]
    train_cli.main(argv)
    record = json.loads((tmp_path / "training.json").read_text())
    assert record["command"] == "python -m crossmodal.train " + " ".join(argv)
    assert 0 <= record["test_exact_match"] <= 1 and len(record["per_digit"]) == 10
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "optimizer.safetensors").exists()
    assert "test exact match" in capsys.readouterr().out
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["vision"]["patch_size"] == 7 and config["decoder"]["dim"] == 32


def test_a_runs_files_share_the_mode_the_umask_gives(tmp_path, monkeypatch):
    """safetensors writes -rw------- whatever the umask: on a shared file system (--out for several machines) the
    others could read a run's JSON but not its weights (issue #40). Every file of a run has the umask's mode."""
    data = torch.zeros(64, 1, 28, 28), torch.arange(64) % 10
    data[0][:, :, 8:20, 12:16] = 1.0  # a bar of ink: what the images hold does not matter here
    monkeypatch.setattr(captions_task, "load_mnist", lambda train: data)
    umask = 0o027  # not the usual 022, so that a mode that ignored the umask would show
    before = os.umask(umask)
    try:
        train_cli.main(["--epochs", "1", "--batch-size", "32", "--out", str(tmp_path / "run"), *TINY_FLAGS])
    finally:
        os.umask(before)
    modes = {f.name: oct(f.stat().st_mode & 0o777) for f in (tmp_path / "run").iterdir()}
    assert {"model.safetensors", "optimizer.safetensors", "config.json", "training.json"} <= set(modes)
    assert set(modes.values()) == {oct(0o666 & ~umask)}, modes


def test_init_from_starts_a_new_run_from_a_checkpoint(tmp_path, monkeypatch, mnist_train, mnist_test):
    """Training on from a finished run: its weights and model, a fresh optimizer, both commands in the record."""
    small = {True: (mnist_train[0][:128], mnist_train[1][:128]), False: (mnist_test[0][:100], mnist_test[1][:100])}
    monkeypatch.setattr(captions_task, "load_mnist", lambda train: small[train])
    first = ["--epochs", "1", "--batch-size", "64", "--out", str(tmp_path / "first"), *TINY_FLAGS]
    train_cli.main(first)
    trained = VisionLanguageModel.from_pretrained(tmp_path / "first").state_dict()
    seen = {}
    real_train = train_cli.train
    monkeypatch.setattr(train_cli, "train", lambda model, cfg, *a, **k: seen.update(
        start={n: t.clone() for n, t in model.state_dict().items()}, cfg=cfg) or real_train(model, cfg, *a, **k))
    second = ["--epochs", "1", "--batch-size", "64", "--lr", "1e-3", "--seed", "1",
              "--init-from", str(tmp_path / "first"), "--out", str(tmp_path / "second")]
    train_cli.main(second)
    assert all(torch.equal(seen["start"][n], t) for n, t in trained.items())  # started where the first ended
    assert seen["cfg"].lr == 1e-3 and seen["cfg"].seed == 1
    record = json.loads((tmp_path / "second" / "training.json").read_text())
    assert record["init_from"]["command"] == "python -m crossmodal.train " + " ".join(first)
    with pytest.raises(SystemExit, match="--init-from takes the model of .*: drop --vision.depth"):
        train_cli.main([*second[:-1], str(tmp_path / "third"), "--vision.depth", "3"])
    with pytest.raises(SystemExit, match="give one of them"):
        train_cli.main([*second, "--resume"])
    with pytest.raises(SystemExit, match="writes other characters"):  # a captioner cannot start a reader
        train_cli.main([*second[:-1], str(tmp_path / "fourth"), "--task", "numbers"])

FOUR_DIGITS = torch.zeros(4, 1, 28, 28), torch.arange(4)  # MNIST, for a run whose training is stubbed out

# tests/conftest.py's tiny_config, as flags
TINY_FLAGS = ["--vision.stem", "patch", "--vision.dim", "32", "--vision.depth", "2", "--vision.num-heads", "2",
              "--vision.patch-size", "7",
              "--decoder.dim", "32", "--decoder.depth", "2", "--decoder.num-heads", "2"]


def test_every_config_field_is_a_flag(capsys):
    with pytest.raises(SystemExit):
        train_cli.main(["--help"])
    text = capsys.readouterr().out
    for flag in ["--epochs", "--batch-size", "--weight-decay", "--augment", "--save-every", "--decoder.gated",
                 "--decoder.cross-attention-every", "--vision.patch-size", "--vision.timm-model"]:
        assert flag in text, flag
    assert "cosine decays to lr × this" in text  # the comment beside the field is its help


def test_a_flag_sets_a_nested_model_setting(tmp_path, monkeypatch):
    """The gate experiment of notebook 04 is a command line: --decoder.gated true."""
    seen = {}
    monkeypatch.setattr(captions_task, "load_mnist", lambda train: FOUR_DIGITS)
    history = {"loss": [], "eval": [{"step": 0, "train_seconds": 0.0, "exact_match": 0.0, "per_digit": [0.0] * 10}],
               "train_seconds": 0, "eval_seconds": 0}
    monkeypatch.setattr(train_cli, "train", lambda model, cfg, *a, **k: seen.update(model=model, cfg=cfg) or history)
    train_cli.main(["--out", str(tmp_path), "--decoder.gated", "true", "--augment", "no", "--lr", "1e-3", *TINY_FLAGS])
    assert seen["model"].config.decoder.gated and any("gate" in n for n, _ in seen["model"].named_parameters())
    assert seen["cfg"].augment is False and seen["cfg"].lr == 1e-3


def test_the_command_line_trains_the_recipe_of_the_records_table(tmp_path, monkeypatch):
    """No flags: the convolutional stem, the stroke augmentation and the peak learning rate the README measured."""
    seen = {}
    monkeypatch.setattr(captions_task, "load_mnist", lambda train: FOUR_DIGITS)
    history = {"loss": [], "eval": [{"step": 0, "train_seconds": 0.0, "exact_match": 0.0, "per_digit": [0.0] * 10}],
               "train_seconds": 0, "eval_seconds": 0}
    monkeypatch.setattr(train_cli, "train",
                        lambda model, cfg, *a, **k: seen.update(model=model, cfg=cfg, kw=k) or history)
    train_cli.main(["--out", str(tmp_path), "--device", "cpu", "--eval-every", "50"])
    assert seen["model"].config.vision.stem == "conv" and seen["cfg"].augment_strokes and seen["cfg"].lr == 5e-3
    assert seen["kw"]["eval_every"] == 50 and seen["model"].device.type == "cpu"
    record = json.loads((tmp_path / "training.json").read_text())
    assert record["device"].startswith("cpu (")


@pytest.mark.parametrize("flags, message", [
    (["--device", "tpu"], "device must be one of auto, cpu, cuda, mps"),
    (["--eval-every", "0"], "--eval-every must be 1 or more"),
    (["--vision.patch-size", "1"], "needs a square patch_size of 2 or more"),
    (["--vision.stem", "patch", "--vision.stem-channels", "8"], "above 0 only with vision.stem 'conv'"),
    (["--betas", "0.9,1.0"], "betas (--betas) must be two numbers from 0 up to"), (["--ema", "1"], "ema (--ema)"),
    (["--vision.stem", "hexagons"], "vision.stem must be 'patch' or 'conv'"),
    (["--label-smoothing", "1.0"], "label_smoothing (--label-smoothing) must be from 0 up to"),
])
def test_train_cli_explains_bad_settings(tmp_path, flags, message, capsys):
    with pytest.raises(SystemExit) as stop:
        train_cli.main(["--out", str(tmp_path / "run"), *flags])
    assert message in str(stop.value)
    assert not (tmp_path / "run").exists()  # checked before anything is written


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_train_cli_refuses_a_gpu_it_does_not_have(tmp_path):
    with pytest.raises(SystemExit) as stop:
        train_cli.main(["--out", str(tmp_path / "run"), "--device", "cuda"])
    assert "PyTorch sees no CUDA GPU here" in str(stop.value)


def test_caption_cli_names_a_device_it_lacks(tmp_path):
    with pytest.raises(SystemExit) as stop:
        caption_cli.main([drawing(tmp_path / "d.png"), "--device", "abacus"])
    assert "device must be one of" in str(stop.value)
