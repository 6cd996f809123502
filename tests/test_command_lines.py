"""Every command line, fed bad arguments, says what is wrong in one line and exits non-zero: no traceback, nothing
written, nothing lost (issue #30). The guard of an output folder is one piece of code for all of them
(folders.check_out), and each task's command line goes through it.
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from crossmodal import caption as caption_cli
from crossmodal import train as train_cli
from crossmodal.nn.auto import save_model
from crossmodal.tasks.captions import new_captioner

from .conftest import tiny_config

BAD_TRAIN = [  # (flags, the words the one line must hold)
    (["--lr", "inf"], "finite"), (["--lr", "nan"], "finite"), (["--lr", "-1"], "above 0"),
    (["--seed", str(2**70)], "seed"), (["--batch-size", "0"], "batch_size"), (["--steps", "-3"], "steps"),
    (["--threads", "-1"], "--threads"), (["--epochs", "0"], "epochs"), (["--eval-every", "0"], "--eval-every"),
    (["--vision.mean", "nan"], "vision.mean"), (["--vision.mean", "inf"], "vision.mean"),
    (["--vision.std", "1e-30"], "vision.std"), (["--vision.mean", "0.1,0.2,0.3"], "one per channel"),
    (["--vision.patch-size", "1000"], "larger than the image"), (["--decoder.mlp-ratio", "inf"], "mlp_ratio"),
    (["--decoder.depth", "100000"], "more than this library builds"),
    (["--vision.timm-model", "resnet18"], "not a Vision Transformer"),
    (["--vision.timm-model", "hf-hub:timm/vit_tiny_patch16_224"], "never downloads"),
    (["--task", "nope"], "invalid choice"), (["--lr", "abc"], "invalid float"), (["--decoder.gated", "maybe"], "true"),
    (["--question-kinds", "read"], "unrecognized"),  # the captions task has no question kinds
    (["--task", "questions", "--question-kinds", "read,colour"], "question-kinds"),
    (["--task", "eyes", "--test-every", "0"], "--test-every"),
    (["--task", "eyes", "--test-every", "100000"], "--test-every"),
    (["--task", "eyes", "--cross-attention-every", "0"], "--cross-attention-every"),
    (["--task", "text", "--steps", "-1"], "steps"), (["--task", "text", "--batch-size", "0"], "batch_size"),
    (["--task", "text", "--lr", "inf"], "finite"), (["--task", "eyes", "--steps", "-3"], "steps"),
    (["--steps", "0"], "--steps 0 trains nothing"), (["--task", "text", "--steps", "0"], "--steps 0 trains nothing"),
    (["--task", "eyes", "--steps", "0"], "--steps 0 trains nothing"),
    (["--task", "eyes", "--batch-size", "0"], "batch"), (["--task", "eyes", "--threads", "-1"], "--threads"),
    (["--init-from", "/nonexistent/run"], "no such folder"), (["--warm-start", "/nonexistent/run"], "no such folder"),
    (["--resume", "--overwrite"], "give one of them"), (["--init-from", "x", "--resume"], "give one of them"),
    # issue #39: an empty folder is no folder (it trained from scratch); a seed the streams cannot multiply
    (["--init-from", ""], "--init-from is empty"), (["--warm-start", ""], "--warm-start is empty"),
    (["--seed", str(2**63 - 1)], "seed (--seed) must be a whole number from 0 to 2**32 - 1"),
    # issue #39: one check for a config, wherever it comes from (the flags get the rules a loaded one gets)
    (["--task", "text", "--n-layer", "0"], "n_layer must be a whole number from 1 to 256, got 0"),
    (["--task", "text", "--n-positions", "8"], "n_positions (--n-positions) must be at least 58"),
    (["--task", "text", "--n-embd", "100", "--n-head", "3"], "n_embd (100) must be a multiple of n_head (3)"),
]


def one_line_error(capsys, run):
    """Run a command's main(); return its error line, asserting a non-zero exit, one line and no traceback."""
    with pytest.raises(SystemExit) as stop:
        run()
    code = stop.value.code
    err = capsys.readouterr().err
    message = code if isinstance(code, str) else err
    assert code not in (0, None), "it exited 0"
    assert "Traceback" not in err and "Traceback" not in str(message)
    assert len(message.strip().splitlines()) == 1, message
    assert message.startswith("error: "), message
    return message


@pytest.mark.parametrize("flags, words", BAD_TRAIN, ids=[" ".join(f)[:40] for f, _ in BAD_TRAIN])
def test_the_train_command_line_refuses_bad_flags_in_one_line(tmp_path, capsys, flags, words):
    out = tmp_path / "run"
    message = one_line_error(capsys, lambda: train_cli.main([*flags, "--out", str(out)]))
    assert words in message, message
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written


def test_a_finished_run_is_never_replaced_without_overwrite_whatever_the_task(tmp_path, capsys):
    run = tmp_path / "run"
    save_model(new_captioner(tiny_config()), run, new_captioner(tiny_config()).tokenizer)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    for task in ("captions", "numbers", "questions", "text", "eyes"):
        message = one_line_error(capsys, lambda task=task: train_cli.main(["--task", task, "--out", str(run)]))
        assert "--overwrite" in message
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


@pytest.mark.parametrize("task", ["captions", "text", "eyes"])
def test_every_task_refuses_an_out_that_is_a_file_or_holds_a_users_files(tmp_path, capsys, task):
    (tmp_path / "notes.txt").write_text("mine")
    assert "is a file" in one_line_error(capsys, lambda: train_cli.main(["--task", task, "--out",
                                                                          str(tmp_path / "notes.txt")]))
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "essay.md").write_text("mine")
    message = one_line_error(capsys, lambda: train_cli.main(["--task", task, "--overwrite", "--out",
                                                             str(tmp_path / "folder")]))
    assert "essay.md" in message and (tmp_path / "folder" / "essay.md").read_text() == "mine"


def test_the_root_of_the_file_system_is_never_an_out(capsys):
    message = one_line_error(capsys, lambda: train_cli.main(["--out", "/", "--overwrite", "--steps", "1"]))
    assert "is the root of the file system" in message


def test_resume_with_the_wrong_task_is_refused_at_once(tmp_path, capsys):
    run = tmp_path / "run"
    save_model(new_captioner(tiny_config()), run, new_captioner(tiny_config()).tokenizer)
    (run / "trainer_state.json").write_text(json.dumps({"task": "numbers", "train_config": {}}))
    assert "a run of --task numbers" in one_line_error(capsys, lambda: train_cli.main(["--resume", "--out", str(run)]))


@pytest.mark.parametrize("lm, words", [("gpt2-eyes", "holds a Flamingo"), ("reader", "holds a VisionLanguageModel"),
                                       ("missing", "no such folder"), ("no tokenizer", "but no tokenizer")])
def test_eyes_refuses_a_folder_that_holds_no_language_model(tmp_path, capsys, lm, words):
    from crossmodal.pretrained import shipped_dir

    folder = tmp_path / "nothing" if lm == "missing" else shipped_dir("text-lm" if lm == "no tokenizer" else lm)
    if lm == "no tokenizer":  # a language model saved without its tokenizer.json
        folder = pathlib.Path(shutil.copytree(folder, tmp_path / "lm"))
        (folder / "tokenizer.json").unlink()
    message = one_line_error(capsys, lambda: train_cli.main(["--task", "eyes", "--lm", str(folder), "--steps", "1",
                                                             "--out", str(tmp_path / "run")]))
    assert words in message, message
    assert not (tmp_path / "run").exists()


def test_two_runs_never_write_one_folder_at_once(tmp_path):
    from crossmodal.folders import RunLock

    with RunLock(tmp_path / "run"):
        with pytest.raises(ValueError, match="in use by another run"):
            RunLock(tmp_path / "run").__enter__()
    with RunLock(tmp_path / "run"):  # released: a new run may take it
        pass
    (tmp_path / ".run.lock").write_text("999999999")  # left by a process that no longer runs (kill -9)
    with RunLock(tmp_path / "run"):
        pass


def test_a_linked_out_is_written_where_it_points(tmp_path):
    from crossmodal.folders import replacing

    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    for step in range(2):  # the second save replaces the first: the link survives, nothing is left behind
        with replacing(tmp_path / "link") as new:
            (new / "config.json").write_text(str(step))
    assert (tmp_path / "link").is_symlink() and (tmp_path / "real" / "config.json").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]


def test_a_loss_that_stops_being_a_number_stops_the_run_and_keeps_the_last_checkpoint(tmp_path, tiny_model,
                                                                                      mnist_train):
    from crossmodal.tasks.captions import CaptionBatches
    from crossmodal.training import TrainConfig, TrainingDiverged, train, vision_language_loss

    calls = []

    def loss(model, batch, cfg):  # the fifth step's loss is NaN, as a too-large learning rate makes it
        total, count = vision_language_loss(model, batch, cfg)
        calls.append(1)
        return (total * float("nan") if len(calls) >= 5 else total), count

    stream = CaptionBatches(mnist_train[0][:512], mnist_train[1][:512], tiny_model.tokenizer)
    with pytest.raises(TrainingDiverged, match="diverged at step 5.*the checkpoint of step 4"):
        train(tiny_model, TrainConfig(steps=8, batch_size=32, save_every=2), stream, out=tmp_path / "run", loss=loss)
    state = json.loads((tmp_path / "run" / "trainer_state.json").read_text())
    assert state["step"] == 4 and len(state["history"]["loss"]) == 4  # the last good checkpoint, whole


def test_nan_weights_in_init_from_are_refused(tmp_path, capsys):
    model = new_captioner(tiny_config())
    with torch.no_grad():
        model.decoder.lm_head.weight[0, 0] = float("nan")
    save_model(model, tmp_path / "start", model.tokenizer)
    message = one_line_error(capsys, lambda: train_cli.main(["--init-from", str(tmp_path / "start"), "--out",
                                                             str(tmp_path / "run")]))
    assert "NaN or infinite" in message


BAD_CAPTION = [  # (what the picture is, extra flags, the words of the one line)
    ("missing", [], "no such file"), ("folder", [], "is a folder"), ("text", [], "cannot read"),
    ("fifo", [], "not a regular file"), ("good", ["--attention-png", "maps.xyz"], "cannot write"),
    ("good", ["--attention-png", "no/such/folder/maps.png"], "is not there"),
    ("good", ["--device", "tpu"], "device must be one of"), ("good", ["--checkpoint", "nowhere"], "no such folder"),
]


@pytest.mark.parametrize("kind, flags, words", BAD_CAPTION, ids=[f"{k} {' '.join(f)}"[:40] for k, f, _ in BAD_CAPTION])
def test_the_caption_command_line_refuses_bad_input_in_one_line(tmp_path, capsys, monkeypatch, kind, flags, words):
    from PIL import Image, ImageDraw

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "input.png"
    if kind == "folder":
        path.mkdir()
    elif kind == "text":
        path.write_text("not a picture")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "good":
        picture = Image.new("L", (90, 90), 255)
        ImageDraw.Draw(picture).line([(30, 10), (60, 10), (40, 80)], fill=0, width=8)
        picture.save(path)
    message = one_line_error(capsys, lambda: caption_cli.main([str(path), *flags]))
    assert words in message, message


def seven_png(path):
    from PIL import Image, ImageDraw

    picture = Image.new("L", (90, 90), 255)
    ImageDraw.Draw(picture).line([(30, 10), (60, 10), (40, 80)], fill=0, width=8)
    picture.save(path)
    return str(path)


def test_a_read_only_attention_png_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    (tmp_path / "maps.png").write_bytes(b"old")
    (tmp_path / "maps.png").chmod(0o444)
    real_access = os.access  # as root every file is writable: say what a user's account would
    monkeypatch.setattr(caption_cli.os, "access", lambda path, mode: False if str(path).endswith("maps.png")
                        and mode == os.W_OK else real_access(path, mode))
    message = one_line_error(capsys, lambda: caption_cli.main([seven_png(tmp_path / "seven.png"), "--attention-png",
                                                               str(tmp_path / "maps.png")]))
    assert "read-only" in message and (tmp_path / "maps.png").read_bytes() == b"old"


def test_a_full_disk_while_writing_the_maps_leaves_no_half_file(tmp_path, capsys, monkeypatch):
    from matplotlib.figure import Figure

    def full(self, path, **kwargs):
        pathlib.Path(path).write_bytes(b"half a PNG")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", full)
    message = one_line_error(capsys, lambda: caption_cli.main([seven_png(tmp_path / "seven.png"), "--attention-png",
                                                               str(tmp_path / "maps.png")]))
    assert "No space left on device" in message and not (tmp_path / "maps.png").exists()


def test_a_bad_flag_prints_one_line_from_a_real_process():
    """The one line as a user sees it: from `python -m crossmodal.train` itself, on stderr."""
    done = subprocess.run([sys.executable, "-m", "crossmodal.train", "--lr", "inf", "--out", "/nonexistent/x"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == ["error: lr (--lr) must be a finite number, got inf"]


def _start(tmp_path, damage):
    """A tiny captioner's folder, damaged one way."""
    folder = tmp_path / "start"
    model = new_captioner(tiny_config())
    save_model(model, folder, model.tokenizer)
    if damage == "weights cut short":
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(data[: len(data) // 3])
    elif damage == "weights zeroed":
        (folder / "model.safetensors").write_bytes(b"\x00" * 100)
    return folder


@pytest.mark.parametrize("flag", ["--init-from", "--warm-start"])
@pytest.mark.parametrize("damage", ["weights cut short", "weights zeroed"])
def test_damaged_weights_to_start_from_are_refused_before_training(tmp_path, capsys, flag, damage):
    message = one_line_error(capsys, lambda: train_cli.main([flag, str(_start(tmp_path, damage)), "--steps", "1",
                                                             "--out", str(tmp_path / "run")]))
    assert "model.safetensors is corrupt or truncated" in message and not (tmp_path / "run").exists()


@pytest.mark.parametrize("source, task, words", [
    ("fusion-prefix", "captions", "cannot warm-start a 'cross' model from a 'prefix' one"),
    ("gpt2-eyes", "captions", "holds a Flamingo"),
    ("captioner", "questions", "decoder is 64 wide and the new model's 96; give --decoder.dim 64"),
])
def test_warm_start_from_a_model_that_cannot_fit_is_refused_in_one_line(tmp_path, capsys, source, task, words):
    from crossmodal.pretrained import shipped_dir

    message = one_line_error(capsys, lambda: train_cli.main(["--task", task, "--warm-start", str(shipped_dir(source)),
                                                             "--steps", "1", "--out", str(tmp_path / "run")]))
    assert words in message, message
    assert not (tmp_path / "run").exists()


def test_an_unreadable_record_in_init_from_does_not_cost_the_run(tmp_path):
    """The run it started from cannot be told, but the new run trains, saves and writes its own record."""
    start = _start(tmp_path, "none")
    (start / "training.json").write_text("{not json")
    train_cli.main(["--init-from", str(start), "--steps", "1", "--batch-size", "8", "--out", str(tmp_path / "run")])
    record = json.loads((tmp_path / "run" / "training.json").read_text())
    assert record["steps"] == 1 and record["loss"]["mean"]
    assert record["init_from"] == str(start)  # its unreadable record is named by its folder, not copied


def test_a_full_disk_at_a_save_keeps_the_last_checkpoint_whole(tmp_path, capsys, monkeypatch):
    from crossmodal.training import state

    real_save, saves = state.save_file, []

    def save_file(tensors, path, *args, **kwargs):  # the second checkpoint's optimizer finds the disk full
        saves.append(path)
        if len(saves) == 2:
            raise OSError(28, "No space left on device")
        return real_save(tensors, path, *args, **kwargs)

    monkeypatch.setattr(state, "save_file", save_file)
    run = tmp_path / "run"
    message = one_line_error(capsys, lambda: train_cli.main(["--init-from", str(_start(tmp_path, "none")), "--steps",
                                                             "3", "--save-every", "1", "--batch-size", "8", "--out",
                                                             str(run)]))
    assert "No space left on device" in message and "is whole" in message
    assert json.loads((run / "trainer_state.json").read_text())["step"] == 1  # the first save, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "start"]  # no half-written folder left beside it


# --- issue #39: which folders a run may write, and in what order it touches one ------------------------------------

@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """A copy of the shipped captioner inside a stand-in for the installed package (folders.PACKAGE), so that a
    broken rule would damage the copy, never the real package."""
    from crossmodal import folders
    from crossmodal.pretrained import shipped_dir

    assert folders.PACKAGE == pathlib.Path(caption_cli.__file__).resolve().parent  # the rule guards the real one
    package = tmp_path / "site-packages" / "crossmodal"
    shutil.copytree(shipped_dir("captioner"), package / "checkpoints" / "mnist-captioner")
    monkeypatch.setattr(folders, "PACKAGE", package)
    return package


WRITE_PLACES = [  # (where the command runs, the --out given, extra flags, the words of the one line)
    ("a folder", "{package}/checkpoints/mnist-captioner", ["--overwrite"], "inside the crossmodal package"),
    ("a folder", "{package}/checkpoints/new-run", [], "inside the crossmodal package"),
    ("a folder", "", [], "--out is empty"),
    ("a folder", ".", [], "is the working directory"),
    ("a finished run", ".", ["--overwrite"], "is the working directory"),
    ("a finished run", ".", ["--resume"], "is the working directory"),
    ("a finished run/inside", "..", ["--overwrite"], "is the working directory or holds it"),
]


@pytest.mark.parametrize("where, out, flags, words", WRITE_PLACES, ids=[f"{w}: {o} {' '.join(f)}"[:50]
                                                                         for w, o, f, _ in WRITE_PLACES])
def test_a_run_never_writes_the_package_or_the_working_directory(tmp_path, capsys, monkeypatch, fake_package, where,
                                                                 out, flags, words):
    if where.startswith("a finished run"):
        save_model(new_captioner(tiny_config()), tmp_path / "a finished run", new_captioner(tiny_config()).tokenizer)
        (tmp_path / "a finished run" / "training.json").write_text('{"steps": 1}')
        (tmp_path / "a finished run" / "trainer_state.json").write_text('{"step": 1}')
    here = tmp_path / where
    here.mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(here)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    message = one_line_error(capsys, lambda: train_cli.main(["--steps", "1", "--out", out.format(package=fake_package),
                                                             *flags]))
    assert words in message, message
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before  # nothing written or lost


def test_the_librarys_savers_keep_the_same_rule(tmp_path, monkeypatch, fake_package):
    model = new_captioner(tiny_config())
    shipped = fake_package / "checkpoints" / "mnist-captioner"
    before = {p.name: p.read_bytes() for p in shipped.iterdir()}
    with pytest.raises(ValueError, match="inside the crossmodal package"):
        model.save_pretrained(shipped)
    with pytest.raises(ValueError, match="inside the crossmodal package"):
        save_model(model, shipped, model.tokenizer)
    assert {p.name: p.read_bytes() for p in shipped.iterdir()} == before
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="is the working directory"):
        model.save_pretrained(".")
    assert list(tmp_path.iterdir()) == [tmp_path / "site-packages"]


def test_a_second_resume_is_refused_before_it_touches_the_running_jobs_folder(tmp_path, capsys):
    """Guard, lock, recover: the running job's half-written save (.run.saving) is its own, not a killed one's."""
    from crossmodal.folders import RunLock

    run = tmp_path / "run"
    save_model(new_captioner(tiny_config()), run, new_captioner(tiny_config()).tokenizer)
    (run / "trainer_state.json").write_text('{"step": 1}')
    (tmp_path / ".run.saving").mkdir()  # the running job is writing its next checkpoint
    (tmp_path / ".run.saving" / "model.safetensors").write_bytes(b"half")
    with RunLock(run):  # held by this process: a run that is still going
        message = one_line_error(capsys, lambda: train_cli.main(["--resume", "--out", str(run)]))
        assert "in use by another run" in message
        assert (tmp_path / ".run.saving" / "model.safetensors").read_bytes() == b"half"


ATTENTION_PNG = [  # (the file --attention-png names, extra flags, the words of the one line, or None: it is written)
    ("the input", [], "is the picture being captioned"),
    ("the input", ["--overwrite"], "is the picture being captioned"),
    ("thesis.pdf", [], "thesis.pdf already exists"), ("maps.png", [], "maps.png already exists"),
    ("maps.png", ["--overwrite"], None), ("new.png", [], None),
]


@pytest.mark.parametrize("target, flags, words", ATTENTION_PNG, ids=[f"{t} {' '.join(f)}" for t, f, _ in ATTENTION_PNG])
def test_the_maps_never_replace_a_file_the_user_did_not_offer(tmp_path, capsys, monkeypatch, target, flags, words):
    import crossmodal.pretrained

    monkeypatch.setattr(crossmodal.pretrained, "load_captioner", lambda device: new_captioner(tiny_config()))
    picture = seven_png(tmp_path / "digit.png")
    for name in ("thesis.pdf", "maps.png"):
        (tmp_path / name).write_bytes(b"the user's " + name.encode())
    path = picture if target == "the input" else str(tmp_path / target)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    if words is None:
        caption_cli.main([picture, "--attention-png", path, *flags])
        assert pathlib.Path(path).read_bytes().startswith(b"\x89PNG")
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted({*before, target})  # no temporary file left
        return
    message = one_line_error(capsys, lambda: caption_cli.main([picture, "--attention-png", path, *flags]))
    assert words in message, message
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


# --- issue #39: a run's trainer_state.json, damaged or edited, is refused before a step is trained -----------------

def _state(change):
    def edit(state):
        change(state)
        return state
    return edit


DAMAGED_STATES = [  # (what is done to trainer_state.json, or the optimizer's file; the words of the one line)
    (_state(lambda s: s.pop("train_config")), "'train_config' is missing"),
    (_state(lambda s: s.pop("step")), "'step' is missing"),
    (_state(lambda s: s.pop("history")), "'history' is missing"),
    (_state(lambda s: s.update(step="2")), "'step' is '2', not a int"),
    (_state(lambda s: s.update(step=10**9)), "step 1000000000, but its history holds the losses of 2 steps"),
    (_state(lambda s: s.update(history=[])), "'history' is [], not a dict"),
    (_state(lambda s: s["history"].update(loss="0.5")), "losses are not a list of numbers"),
    (_state(lambda s: s["history"].update(eval=[{"exact_match": 1}])), "evaluations are not a list of objects"),
    (_state(lambda s: s["history"].update(train_seconds=-1)), "history's seconds"),
    (_state(lambda s: s["history"].update(logged={"a": 1})), "logged values are not a list"),
    (_state(lambda s: s["train_config"].update(lr="fast")), "train_config: lr must be of type float"),
    (_state(lambda s: s["train_config"].update(bogus=1)), "train_config has fields TrainConfig does not: bogus"),
    (_state(lambda s: s.update(param_groups=[1, 2])), "param_groups are not a list of objects"),
    ("optimizer cut short", "optimizer.safetensors is missing, corrupt or truncated"),
    ("optimizer gone", "optimizer.safetensors is missing, corrupt or truncated"),
]


@pytest.fixture(scope="module")
def two_step_run(tmp_path_factory):
    from .test_bad_input import finished_run

    run = tmp_path_factory.mktemp("finished") / "run"
    finished_run(run)  # 2 steps of 32
    return run


@pytest.mark.parametrize("damage, words", DAMAGED_STATES, ids=[f"{i}: {w}"[:40] for i, (_, w) in
                                                                 enumerate(DAMAGED_STATES)])
def test_a_damaged_trainer_state_is_refused_before_any_step(tmp_path, capsys, monkeypatch, two_step_run, damage,
                                                            words):
    from crossmodal.tasks import captions as captions_task
    from crossmodal.tasks.captions import CaptionBatches
    from crossmodal.training import TrainConfig, train

    monkeypatch.setattr(captions_task, "load_mnist", lambda train: (torch.rand(64, 1, 28, 28), torch.arange(64) % 10))
    run = pathlib.Path(shutil.copytree(two_step_run, tmp_path / "run"))
    if damage == "optimizer cut short":
        data = (run / "optimizer.safetensors").read_bytes()
        (run / "optimizer.safetensors").write_bytes(data[: len(data) // 2])
    elif damage == "optimizer gone":
        (run / "optimizer.safetensors").unlink()
    else:
        state = json.loads((run / "trainer_state.json").read_text())
        (run / "trainer_state.json").write_text(json.dumps(damage(state)))
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    message = one_line_error(capsys, lambda: train_cli.main(["--resume", "--out", str(run)]))
    assert words in message, message
    model = new_captioner(tiny_config())  # the library's resume says the same
    stream = CaptionBatches(torch.rand(64, 1, 28, 28), torch.arange(64) % 10, model.tokenizer, augment=False)
    with pytest.raises(ValueError, match=re.escape(words)):
        train(model, TrainConfig(epochs=1, batch_size=32, augment=False), stream, out=run, resume=True,
              run={"task": "captions"})
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_ctrl_c_says_where_the_last_checkpoint_is(tmp_path, capsys, monkeypatch):
    def interrupted(task, args, argv, *settings):  # a checkpoint of step 7 saved, then the user presses Ctrl-C
        pathlib.Path(args.out).mkdir()
        (pathlib.Path(args.out) / "trainer_state.json").write_text('{"step": 7}')
        raise KeyboardInterrupt

    monkeypatch.setattr(train_cli, "run", interrupted)
    out = tmp_path / "run"
    message = one_line_error(capsys, lambda: train_cli.main(["--out", str(out)]))
    assert message == f"error: stopped (Ctrl-C); the checkpoint of step 7 in {out} is whole: continue with --resume " \
                      f"--out {out}"
    monkeypatch.setattr(train_cli, "run", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    message = one_line_error(capsys, lambda: train_cli.main(["--out", str(tmp_path / "other")]))
    assert "stopped (Ctrl-C); no checkpoint was saved in" in message


# --- issue #39: the largest model and batch that will be built (nn/memory.py) ---------------------------------------

LAPTOP = 8 * 2**30  # bytes free: what a learner's laptop has


@pytest.fixture
def laptop(monkeypatch):
    from crossmodal.nn import memory

    monkeypatch.setattr(memory, "available_memory", lambda device="cpu": LAPTOP)


TOO_LARGE = [  # flags that ask for more memory than a laptop has
    ["--decoder.dim", "16384"], ["--decoder.dim", "16384", "--decoder.depth", "256"],
    ["--task", "text", "--n-embd", "16384"], ["--batch-size", "1048576"],
    ["--task", "questions", "--batch-size", "1048576"], ["--task", "eyes", "--batch-size", "1048576"],
]


@pytest.mark.parametrize("flags", TOO_LARGE, ids=[" ".join(f) for f in TOO_LARGE])
def test_a_model_or_batch_that_cannot_fit_is_refused_before_it_is_built(tmp_path, capsys, monkeypatch, laptop,
                                                                        flags):
    def only_on_meta(linear, real=torch.nn.Linear.reset_parameters):
        assert linear.weight.is_meta, "built in memory before its size was checked"
        real(linear)

    monkeypatch.setattr(torch.nn.Linear, "reset_parameters", only_on_meta)
    out = tmp_path / "run"
    message = one_line_error(capsys, lambda: train_cli.main([*flags, "--steps", "1", "--out", str(out)]))
    assert re.search(r"needs at least [\d,.]+ GiB of memory, and 8.0 GiB is free on this machine", message), message
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("task", ["captions", "numbers", "questions", "text", "eyes"])
def test_every_tasks_own_sizes_fit_a_laptop(tmp_path, laptop, task):
    """The rule refuses only what cannot fit: each task's defaults pass it (and train: tests/test_cli.py)."""
    assert train_cli.settings(train_cli.get_task(task), train_cli.parser_for(train_cli.get_task(task)).parse_args(
        ["--task", task, "--out", str(tmp_path / "run")])) is not None


def test_the_library_refuses_what_cannot_fit_with_the_same_sentence(tmp_path, monkeypatch, laptop):
    from crossmodal import load_captioner
    from crossmodal.nn import memory

    model = load_captioner()
    digit = torch.zeros(28, 28)
    digit[6:22, 13:15] = 1
    with pytest.raises(ValueError, match=r"beam search with num_beams=1000000 for 1 image\(s\) needs at least"):
        model.generate(digit, num_beams=10**6)
    assert model.generate(digit, num_beams=3).shape[0] == 1  # a few beams fit
    monkeypatch.setattr(memory, "available_memory", lambda device="cpu": 2**20)  # a megabyte free
    with pytest.raises(ValueError, match=r"mnist-captioner holds a model of [\d,]+ parameters, which needs at least"):
        load_captioner()


# --- issue #39: pictures: raster formats only, noise refused, nothing written is no caption -----------------------

def _noise(path):
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 256, (100, 100), dtype=np.uint8)).save(path)


def _gradient(path):
    from PIL import Image

    Image.fromarray(np.tile(np.linspace(0, 255, 120).astype(np.uint8), (90, 1))).save(path)


def _photo(path):  # smooth shades all over, as a photograph of a scene has
    from PIL import Image, ImageFilter

    small = Image.fromarray(np.random.default_rng(1).integers(0, 256, (60, 80), dtype=np.uint8))
    small.resize((320, 240), Image.BICUBIC).filter(ImageFilter.GaussianBlur(6)).save(path)


def _specks(path):
    from PIL import Image

    Image.fromarray((np.random.default_rng(2).random((112, 112)) < 0.1).astype(np.uint8) * 255).save(path)


def _eps(path):
    from PIL import Image

    with open(path, "wb") as f:  # a seven as PostScript, whatever the file's name says
        Image.open(seven_png(path.with_name("for-eps.png"))).save(f, "EPS")


NOT_A_DRAWING = [  # (how the picture is made, its name, the words of the one line)
    (_noise, "noise.png", "fills the picture to its edges like a blot or noise"),
    (_gradient, "gradient.png", "fills the picture to its edges like a blot or noise"),
    (_photo, "photo.jpg", "fills the picture to its edges like a blot or noise"),
    (_specks, "specks.png", "these are scattered specks, not a digit"),
    (_eps, "seven.eps", "cannot read"), (_eps, "innocent.png", "cannot read"),
]


@pytest.fixture
def no_ghostscript_run(monkeypatch):
    """Pillow's EPS reader as if Ghostscript were installed; any call to it is recorded (and never runs)."""
    from PIL import EpsImagePlugin

    calls = []
    monkeypatch.setattr(EpsImagePlugin, "has_ghostscript", lambda: True)
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: calls.append(a) or (_ for _ in ()).throw(
        AssertionError("Ghostscript was run on the picture")))
    return calls


@pytest.mark.parametrize("make, name, words", NOT_A_DRAWING, ids=[n for _, n, _ in NOT_A_DRAWING])
def test_the_caption_command_refuses_what_is_not_a_drawing(tmp_path, capsys, no_ghostscript_run, make, name, words):
    make(tmp_path / name)
    message = one_line_error(capsys, lambda: caption_cli.main([str(tmp_path / name)]))
    assert words in message, message
    assert no_ghostscript_run == [] and capsys.readouterr().out == ""


@pytest.mark.parametrize("make, name, words", NOT_A_DRAWING, ids=[n for _, n, _ in NOT_A_DRAWING])
def test_read_number_and_preprocess_refuse_the_same_pictures(tmp_path, no_ghostscript_run, make, name, words):
    from PIL import Image

    from crossmodal import load_reader, preprocess_drawing
    from crossmodal.tasks.numbers import read_number

    make(tmp_path / name)
    if name.endswith(("eps", "innocent.png")):  # opened by the caller with Pillow's every format: still not decoded
        with pytest.raises(ValueError, match="EPS pictures are not read"):
            preprocess_drawing(Image.open(tmp_path / name))
    else:
        sentence = words.replace("these", "These").replace("fills", "This fills").replace("digit", "number")
        with pytest.raises(ValueError, match=sentence):
            read_number(load_reader(), Image.open(tmp_path / name))
    assert no_ghostscript_run == []


def test_a_caption_comes_with_its_sureness_and_an_empty_one_is_refused(tmp_path, capsys):
    from crossmodal.viz import plot_caption_strip

    picture = seven_png(tmp_path / "seven.png")
    caption_cli.main([picture])
    caption, sure = capsys.readouterr().out.splitlines()
    assert caption == "This is the number seven." and re.fullmatch(r"\d+% sure(: unsure, check it)?", sure)
    mute = new_captioner(tiny_config())  # a model that writes <eos> first, whatever it sees
    eos = mute.config.eos_id
    with torch.no_grad():
        mute.decoder.wte.weight[eos] = 5.0
        mute.decoder.ln_f.weight.zero_()
        mute.decoder.ln_f.bias.copy_(mute.decoder.wte.weight[eos])
    mute.save_pretrained(tmp_path / "mute")
    for flags in ([], ["--attention-png", str(tmp_path / "maps.png")]):
        message = one_line_error(capsys, lambda flags=flags: caption_cli.main([picture, "--checkpoint",
                                                                               str(tmp_path / "mute"), *flags]))
        assert "the model wrote nothing for" in message and not (tmp_path / "maps.png").exists()
    nothing = mute.caption(caption_cli.preprocess_drawing(caption_cli.read_picture(picture)))
    assert nothing.text == ""
    with pytest.raises(ValueError, match="the caption has no characters, so there are no maps to draw"):
        plot_caption_strip(nothing)
    message = one_line_error(capsys, lambda: caption_cli.main([picture, "--checkpoint", ""]))
    assert "--checkpoint is empty" in message


def test_a_picture_of_no_pixels_is_a_sentence():
    from PIL import Image

    from crossmodal import preprocess_drawing, preprocess_number

    for preprocess in (preprocess_drawing, preprocess_number):
        with pytest.raises(ValueError, match="the image is empty"):
            preprocess(Image.new("L", (0, 0)))


def test_an_unreachable_hub_is_said_at_once(tmp_path, capsys, monkeypatch):
    """--task text --hub true offline: one sentence about the hub, before any wait or write (it was 30 s, then
    "could not write runs/...")."""
    import huggingface_hub
    from transformers import GPT2LMHeadModel

    from crossmodal.tasks.text import build_text_lm

    def unreachable(*args, **kwargs):
        raise ConnectionError("[Errno -2] Name or service not known")

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)  # never downloaded
    monkeypatch.setattr(huggingface_hub, "model_info", unreachable)
    monkeypatch.setattr(GPT2LMHeadModel, "from_pretrained", lambda *a, **k: pytest.fail("went to the network"))
    out = tmp_path / "run"
    message = one_line_error(capsys, lambda: train_cli.main(["--task", "text", "--hub", "true", "--steps", "1",
                                                             "--out", str(out)]))
    assert "--hub true loads GPT-2 from the Hugging Face hub, which could not be reached" in message, message
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="could not be reached .*Name or service not known"):
        build_text_lm(hub=True)
