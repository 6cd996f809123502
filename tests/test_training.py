"""Training lowers the loss, checkpoints round-trip, and an interrupted run resumes step for step."""

import pytest
import torch

from crossmodal import Captioner
from crossmodal.train import TrainConfig, evaluate, train

from .conftest import tiny_config


class Interrupt(Exception):
    pass


def subset(data, n):
    images, labels = data
    return images[:n], labels[:n]


def test_a_few_hundred_steps_clearly_lower_the_loss(mnist_train, mnist_test):
    torch.manual_seed(0)
    model = Captioner.for_mnist(tiny_config())
    cfg = TrainConfig(epochs=3, batch_size=64, lr=3e-3, warmup_steps=30, augment=False)
    history = train(model, cfg, subset(mnist_train, 6400), subset(mnist_test, 1000))
    assert len(history["loss"]) == 300
    first, last = sum(history["loss"][:20]) / 20, sum(history["loss"][-20:]) / 20
    assert last < 0.25 * first, (first, last)
    assert history["eval"][-1]["exact_match"] > 0.5  # far above the blind decoder's ~10%


def test_checkpoint_round_trip(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    loaded = Captioner.from_pretrained(tmp_path)
    for (name, a), (_, b) in zip(tiny_model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    assert loaded.decoder.lm_head.weight is loaded.decoder.wte.weight  # still tied after loading
    images = torch.rand(4, 1, 28, 28)
    assert torch.equal(tiny_model.generate(images), loaded.generate(images))


def test_resume_after_interruption_is_step_for_step(mnist_train, tmp_path):
    data = subset(mnist_train, 512)
    cfg = TrainConfig(epochs=2, batch_size=64, warmup_steps=4, save_every=3)  # 16 steps, saves at 3, 6, 8 ...

    torch.manual_seed(0)
    straight = Captioner.for_mnist(tiny_config())
    train(straight, cfg, data)

    def stop_at_step_7(step, loss):
        if step == 7:
            raise Interrupt

    torch.manual_seed(0)
    interrupted = Captioner.for_mnist(tiny_config())
    with pytest.raises(Interrupt):
        train(interrupted, cfg, data, out=tmp_path, callbacks=[stop_at_step_7])
    torch.manual_seed(1)  # a fresh process: different initial weights, restored from the checkpoint
    resumed = Captioner.for_mnist(tiny_config())
    history = train(resumed, cfg, data, out=tmp_path, resume=True)
    assert len(history["loss"]) == 16  # 6 steps before the last save + 10 after the resume
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name


def test_training_goes_on_in_train_mode_after_a_callback_evaluates(tiny_model):
    modes = []

    def evaluating_callback(step, loss):
        tiny_model.eval()  # as evaluate() does
        modes.append(step)

    seen = []
    tiny_model.decoder.register_forward_pre_hook(lambda module, args: seen.append(module.training))
    data = (torch.rand(64, 1, 28, 28), torch.arange(64) % 10)
    train(tiny_model, TrainConfig(epochs=1, batch_size=16, augment=False), data, callbacks=[evaluating_callback])
    assert modes == [1, 2, 3, 4] and seen == [True] * 4


def test_teacher_forced_evaluate_equals_greedy_generation(mnist_train, mnist_test):
    """evaluate() reads each reference caption once instead of writing it; the verdicts must be the same
    as writing every caption greedily, image by image, on a half-trained model that gets many wrong."""
    torch.manual_seed(0)
    model = Captioner.for_mnist(tiny_config())
    train(model, TrainConfig(epochs=2, batch_size=64, lr=3e-3, warmup_steps=30, augment=False),
          subset(mnist_train, 6400))
    images, labels = subset(mnist_test, 1000)
    result = evaluate(model, images, labels, batch_size=300)
    from crossmodal import caption_for

    written = torch.tensor([t == caption_for(d) for t, d in zip(model.decode(model.generate(images)), labels.tolist())])
    assert torch.equal(result["correct"], written)
    assert 0.05 < written.float().mean() < 0.95, written.float().mean()  # both verdicts occur
    assert result["per_digit"][3] == pytest.approx(written[labels == 3].float().mean().item())


def test_evaluate_counts_exact_matches(mnist_test):
    """Against captions written one character at a time, by a model that gets most but not all right."""
    from crossmodal import caption_for, load_pretrained

    model = load_pretrained()
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
