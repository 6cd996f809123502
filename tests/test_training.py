"""Training lowers the loss, checkpoints round-trip, and an interrupted run resumes step for step."""

import shutil
from pathlib import Path

import pytest
import torch

from crossmodal import VisionLanguageModel
from crossmodal.tasks.captions import CaptionBatches, CaptionTest, evaluate, new_captioner
from crossmodal.training import TrainConfig, train

from .conftest import tiny_config


class Interrupt(Exception):
    pass


def subset(data, n):
    images, labels = data
    return images[:n], labels[:n]


def captions(model, data, cfg):
    """MNIST-like (images, labels) as the captioner's training stream, augmented as cfg says (as the command line)."""
    return CaptionBatches(*data, model.tokenizer, augment=cfg.augment, strokes=cfg.augment and cfg.augment_strokes)


def test_a_few_hundred_steps_clearly_lower_the_loss(mnist_train, mnist_test):
    torch.manual_seed(0)
    model = new_captioner(tiny_config())
    cfg = TrainConfig(epochs=3, batch_size=64, lr=3e-3, warmup_steps=30, augment=False)
    history = train(model, cfg, captions(model, subset(mnist_train, 6400), cfg), CaptionTest(*subset(mnist_test, 1000)))
    assert len(history["loss"]) == 300
    first, last = sum(history["loss"][:20]) / 20, sum(history["loss"][-20:]) / 20
    assert last < 0.25 * first, (first, last)
    assert history["eval"][-1]["exact_match"] > 0.5  # far above the blind decoder's ~10%


def test_checkpoint_round_trip(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    loaded = VisionLanguageModel.from_pretrained(tmp_path)
    for (name, a), (_, b) in zip(tiny_model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    assert loaded.decoder.lm_head.weight is loaded.decoder.wte.weight  # still tied after loading
    images = torch.rand(4, 1, 28, 28)
    assert torch.equal(tiny_model.generate(images), loaded.generate(images))


def test_resume_after_interruption_is_step_for_step(mnist_train, tmp_path):
    data = subset(mnist_train, 512)
    cfg = TrainConfig(epochs=2, batch_size=64, warmup_steps=4, save_every=3)  # 16 steps, saves at 3, 6, 8 ...

    torch.manual_seed(0)
    straight = new_captioner(tiny_config())
    train(straight, cfg, captions(straight, data, cfg))

    def stop_at_step_7(step, loss):
        if step == 7:
            raise Interrupt

    torch.manual_seed(0)
    interrupted = new_captioner(tiny_config())
    with pytest.raises(Interrupt):
        train(interrupted, cfg, captions(interrupted, data, cfg), out=tmp_path, callbacks=[stop_at_step_7])
    torch.manual_seed(1)  # a fresh process: different initial weights, restored from the checkpoint
    resumed = new_captioner(tiny_config())
    history = train(resumed, cfg, captions(resumed, data, cfg), out=tmp_path, resume=True)
    assert len(history["loss"]) == 16  # 6 steps before the last save + 10 after the resume
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name


def test_resume_with_a_weight_average_is_step_for_step(mnist_train, tmp_path):
    """With cfg.ema the checkpoint holds the average (what a user loads) and the stepped weights beside it; a resumed
    run continues both exactly, and hands back the average."""
    data = subset(mnist_train, 512)
    cfg = TrainConfig(epochs=2, batch_size=64, warmup_steps=4, save_every=3, ema=0.9)

    torch.manual_seed(0)
    straight = new_captioner(tiny_config())
    stepped = []
    train(straight, cfg, captions(straight, data, cfg), callbacks=[lambda step, loss: stepped.append(
        [p.detach().clone() for p in straight.parameters()]) if step == 16 else None])

    def stop_at_step_7(step, loss):
        if step == 7:
            raise Interrupt

    torch.manual_seed(0)
    interrupted = new_captioner(tiny_config())
    with pytest.raises(Interrupt):
        train(interrupted, cfg, captions(interrupted, data, cfg), out=tmp_path, callbacks=[stop_at_step_7])
    assert (tmp_path / "stepped.safetensors").is_file()
    broken = Path(shutil.copytree(tmp_path, tmp_path.parent / f"{tmp_path.name}-no-stepped"))
    (broken / "stepped.safetensors").unlink()  # the saved state is checked before a step: the stepped weights too
    with pytest.raises(ValueError, match="stepped.safetensors is missing, corrupt or truncated"):
        train(new_captioner(tiny_config()), cfg, captions(interrupted, data, cfg), out=broken, resume=True)
    saved = VisionLanguageModel.from_pretrained(tmp_path)  # the average at step 6, not the stepped weights
    assert not torch.equal(saved.decoder.wte.weight, interrupted.decoder.wte.weight)
    torch.manual_seed(1)
    resumed = new_captioner(tiny_config())
    train(resumed, cfg, captions(resumed, data, cfg), out=tmp_path, resume=True)
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    assert not torch.equal(stepped[0][0], next(straight.parameters()))  # handed back: the average, not the last step
    final = VisionLanguageModel.from_pretrained(tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(final.state_dict().values(), straight.state_dict().values()))


def test_the_weight_average_follows_its_decay():
    from crossmodal.training.averaging import WeightAverage

    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(0.0)
    average = WeightAverage(model, decay=0.5)
    with torch.no_grad():
        model.weight.fill_(1.0)
    average.update(model, step=0)  # the ramp: decay min(0.5, 1 / 10) = 0.1, so 0.9 of the way
    assert torch.allclose(average.model.weight, torch.full((1, 2), 0.9))
    average.update(model, step=100)  # decay 0.5: halfway from 0.9 to 1
    assert torch.allclose(average.model.weight, torch.full((1, 2), 0.95))
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(model, decay=1.0)


def test_training_goes_on_in_train_mode_after_a_callback_evaluates(tiny_model):
    modes = []

    def evaluating_callback(step, loss):
        tiny_model.eval()  # as evaluate() does
        modes.append(step)

    seen = []
    tiny_model.decoder.register_forward_pre_hook(lambda module, args: seen.append(module.training))
    data = (torch.rand(64, 1, 28, 28), torch.arange(64) % 10)
    cfg = TrainConfig(epochs=1, batch_size=16, augment=False)
    train(tiny_model, cfg, captions(tiny_model, data, cfg), callbacks=[evaluating_callback])
    assert modes == [1, 2, 3, 4] and seen == [True] * 4


def test_teacher_forced_evaluate_equals_greedy_generation(mnist_train, mnist_test):
    """evaluate() reads each reference caption once instead of writing it; the verdicts must be the same
    as writing every caption greedily, image by image, on a half-trained model that gets many wrong."""
    torch.manual_seed(0)
    model = new_captioner(tiny_config())
    cfg = TrainConfig(epochs=2, batch_size=64, lr=3e-3, warmup_steps=30, augment=False)
    train(model, cfg, captions(model, subset(mnist_train, 6400), cfg))
    images, labels = subset(mnist_test, 1000)
    result = evaluate(model, images, labels, batch_size=300)
    from crossmodal import caption_for

    written = torch.tensor([t == caption_for(d) for t, d in zip(model.decode(model.generate(images)), labels.tolist())])
    assert torch.equal(result["correct"], written)
    assert 0.05 < written.float().mean() < 0.95, written.float().mean()  # both verdicts occur
    assert result["per_digit"][3] == pytest.approx(written[labels == 3].float().mean().item())


def test_evaluate_counts_exact_matches(mnist_test):
    """Against captions written one character at a time, by a model that gets most but not all right."""
    from crossmodal import caption_for, load_captioner

    model = load_captioner()
    images, labels = subset(mnist_test, 200)
    labels = labels.clone()
    labels[:20] = (labels[:20] + 1) % 10  # 20 wrong labels: those captions cannot match
    result = evaluate(model, images, labels)
    texts = model.decode(model.generate(images))
    right = torch.tensor([t == caption_for(d) for t, d in zip(texts, labels.tolist())])
    assert 0.5 < right.float().mean() < 0.95 and not right[:20].any()  # a test that 0 == 0 would not pass
    assert torch.equal(result["correct"], right)
    assert result["exact_match"] == pytest.approx(right.float().mean().item())
    assert result["per_digit"] == pytest.approx([right[labels == d].float().mean().item() for d in range(10)])


def test_learning_rate_schedule():
    cfg = TrainConfig(lr=1e-3, warmup_steps=10, min_lr_ratio=0.1)
    assert cfg.lr_at(0, 100) == pytest.approx(1e-4)
    assert cfg.lr_at(9, 100) == pytest.approx(1e-3)
    assert cfg.lr_at(99, 100) == pytest.approx(1e-4, rel=0.01)


def test_a_run_shorter_than_four_warm_ups_warms_up_for_a_quarter_of_it():
    """`--steps 30` with the default warm-up of 200: the rate still reaches its peak (at step 7) and decays."""
    cfg = TrainConfig(lr=1e-3, warmup_steps=200, min_lr_ratio=0.1)
    rates = [cfg.lr_at(s, 30) for s in range(30)]
    assert max(rates) == pytest.approx(1e-3) and rates.index(max(rates)) == 6
    assert rates[-1] == pytest.approx(1e-4, rel=0.05)
    assert cfg.lr_at(199, 1000) == pytest.approx(1e-3)  # long enough: the warm-up asked for


KILLED_WHILE_SAVING = """
import os, sys, pathlib, torch
import safetensors.torch

point, folder = sys.argv[1], sys.argv[2]
calls = []

def dies_the_second_time(real, name):
    def wrapper(self_or_first, *args, **kwargs):
        target = str(args[0] if args else self_or_first)
        if name in target or name in str(self_or_first):
            calls.append(target)
            if len(calls) == 2:
                os._exit(9)  # like kill -9: no cleanup, no finally blocks
        return real(self_or_first, *args, **kwargs)
    return wrapper

if point == "after the weights":  # model.safetensors written, the optimizer's file not yet
    safetensors.torch.save_file = dies_the_second_time(safetensors.torch.save_file, "optimizer")
else:  # between moving the old checkpoint aside and moving the new one in
    pathlib.Path.rename = dies_the_second_time(pathlib.Path.rename, ".saving")

from crossmodal.tasks.captions import new_captioner
from crossmodal.training import train
from tests.conftest import tiny_config
from tests.test_training import captions, crash_config, random_data

torch.manual_seed(0)
model = new_captioner(tiny_config())
train(model, crash_config(), captions(model, random_data(), crash_config()), out=folder)
"""


def crash_config():
    return TrainConfig(epochs=2, batch_size=32, warmup_steps=4, save_every=3)  # 8 steps, saves at 3, 4, 6, 8


def random_data():
    g = torch.Generator().manual_seed(0)
    return torch.rand(128, 1, 28, 28, generator=g), torch.randint(0, 10, (128,), generator=g)


@pytest.fixture(scope="module")
def uninterrupted():
    torch.manual_seed(0)
    model = new_captioner(tiny_config())
    train(model, crash_config(), captions(model, random_data(), crash_config()))
    return model


@pytest.mark.parametrize("point", ["after the weights", "between the renames"])
def test_a_save_killed_half_way_resumes_to_the_same_result(tmp_path, point, uninterrupted):
    """kill -9 during the second save (step 4): the step-3 checkpoint is whole, and resuming from it
    ends exactly where an uninterrupted run does."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    killed = subprocess.run([sys.executable, "-c", KILLED_WHILE_SAVING, point, str(tmp_path / "run")], cwd=root,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == 9, killed.stderr

    torch.manual_seed(1)
    resumed = new_captioner(tiny_config())
    history = train(resumed, crash_config(), captions(resumed, random_data(), crash_config()), out=tmp_path / "run",
                    resume=True)
    assert len(history["loss"]) == 8  # 3 steps before the checkpoint + 5 after the resume
    for (name, a), (_, b) in zip(uninterrupted.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # nothing left over beside it


def test_resume_refuses_other_settings_and_a_folder_without_a_run(tmp_path):
    torch.manual_seed(0)
    model = new_captioner(tiny_config())
    data = captions(model, random_data(), crash_config())  # the same stream for each: the settings differ
    train(model, crash_config(), data, out=tmp_path)
    longer = TrainConfig(**{**crash_config().__dict__, "epochs": 3})
    with pytest.raises(ValueError, match=r"other settings \(epochs 2 → 3\)"):
        train(new_captioner(tiny_config()), longer, data, out=tmp_path, resume=True)
    with pytest.raises(ValueError, match="decoder.gated False → True"):
        train(new_captioner(tiny_config(gated=True)), crash_config(), data, out=tmp_path, resume=True)
    with pytest.raises(FileNotFoundError, match="holds no training to resume"):
        train(new_captioner(tiny_config()), crash_config(), data, out=tmp_path / "empty", resume=True)


def test_weight_decay_only_for_weight_matrices():
    from crossmodal.training import param_groups

    model = new_captioner(tiny_config(gated=True))
    decay, no_decay = param_groups(model, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert "decoder.wte.weight" in decayed  # the token embedding is lm_head's weight matrix (tied)
    assert "encoder.patch_embed.proj.weight" in decayed  # a Conv2d: a weight matrix over each patch
    assert all(n.endswith(".weight") for n in decayed)  # no bias, position embedding or gate
    kept = {names[id(p)] for p in no_decay["params"]}
    assert {"decoder.wpe.weight", "encoder.pos_embed", "decoder.blocks.0.gate", "decoder.ln_f.weight",
            "encoder.norm.weight", "encoder.blocks.0.norm1.weight"} <= kept  # positions, gates, LayerNorms
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_an_epoch_interrupted_while_evaluating_is_evaluated_after_resuming(tmp_path, monkeypatch):
    """The epoch's checkpoint is saved after its evaluation: one saved before would resume past the
    evaluation, and the epoch would never get its test score."""
    import crossmodal.tasks.captions as captions_module

    data = random_data()
    test_data = CaptionTest(data[0][:64], data[1][:64])
    real_evaluate, calls = captions_module.evaluate, []

    def dies_the_first_time(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise Interrupt
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(captions_module, "evaluate", dies_the_first_time)
    torch.manual_seed(0)
    model = new_captioner(tiny_config())
    stream = captions(model, data, crash_config())
    with pytest.raises(Interrupt):
        train(model, crash_config(), stream, test_data, out=tmp_path)
    history = train(new_captioner(tiny_config()), crash_config(), stream, test_data, out=tmp_path, resume=True)
    assert [e["step"] for e in history["eval"]] == [4, 8]  # both epochs evaluated


def test_eval_every_records_accuracy_against_training_time():
    """What the time-to-accuracy benchmark reads: an evaluation every k steps, with the training seconds so far."""
    data = random_data()
    torch.manual_seed(0)
    cfg = TrainConfig(epochs=2, batch_size=32, warmup_steps=2, label_smoothing=0.1)  # 4 steps an epoch
    model = new_captioner(tiny_config())
    history = train(model, cfg, captions(model, data, cfg), CaptionTest(data[0][:32], data[1][:32]), eval_every=3)
    assert [e["step"] for e in history["eval"]] == [3, 4, 6, 8]  # every 3 steps, and each epoch's end
    seconds = [e["train_seconds"] for e in history["eval"]]
    assert seconds == sorted(seconds) and seconds[0] > 0
    assert len(history["loss"]) == 8 and all(loss > 0 for loss in history["loss"])
    assert history["train_seconds"] >= seconds[-1]


def test_the_conv_stems_batch_norms_are_not_decayed():
    from crossmodal.tasks.captions import captioner_config
    from crossmodal.training import param_groups

    model = new_captioner(captioner_config())
    decay, no_decay = param_groups(model, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    assert {"encoder.patch_embed.proj.0.weight", "encoder.patch_embed.proj.3.weight"} <= decayed  # convolutions
    assert not any(".proj.1." in n or ".proj.4." in n for n in decayed)  # their BatchNorms
