"""warm_start: a new model starts from a trained one wherever the weights fit (the answerer from the reader)."""

import json

import pytest
import torch

from crossmodal import VisionLanguageModel
from crossmodal import train as train_cli
from crossmodal.nn.fusion import with_fusion
from crossmodal.tasks import TASKS
from crossmodal.training.warm_start import warm_start


def new_model(task, config):
    """A fresh model of `task` (its factory, as the command line builds it) with `config`."""
    return TASKS[task].new_model(config, None)[0]


def small(task):
    config = TASKS[task].model_config()  # the task's own canvas, patches and block size; narrower and shallower
    config.vision.dim, config.vision.depth, config.vision.num_heads = 16, 1, 2
    config.decoder.dim, config.decoder.depth, config.decoder.num_heads = 16, 2, 2
    return config


def test_the_answerer_starts_from_the_reader_where_the_weights_fit():
    torch.manual_seed(0)
    reader = new_model("numbers", small("numbers"))
    torch.manual_seed(1)
    answerer = new_model("questions", small("questions"))
    fresh = {n: t.clone() for n, t in answerer.state_dict().items()}
    report = warm_start(answerer, reader)

    theirs, ours = reader.state_dict(), answerer.state_dict()
    for name in theirs:  # the encoder, projector and blocks: identical
        if name.startswith(("encoder.", "projector.", "decoder.blocks.")):
            assert torch.equal(ours[name], theirs[name]), name
    old, new = reader.tokenizer.get_vocab(), answerer.tokenizer.get_vocab()
    assert set(old) < set(new)  # the answerer writes the reader's characters and the questions' letters
    for token, row in new.items():  # the token table (tied to the output layer), row by row, matched by string
        expected = theirs["decoder.wte.weight"][old[token]] if token in old else fresh["decoder.wte.weight"][row]
        assert torch.equal(ours["decoder.wte.weight"][row], expected), token
    assert torch.equal(answerer.decoder.lm_head.weight, answerer.decoder.wte.weight)  # still tied
    n = min(len(theirs["decoder.wpe.weight"]), len(ours["decoder.wpe.weight"]))
    assert report["positions"] == n < len(ours["decoder.wpe.weight"])  # the answerer's text is longer
    assert torch.equal(ours["decoder.wpe.weight"][:n], theirs["decoder.wpe.weight"][:n])
    assert torch.equal(ours["decoder.wpe.weight"][n:], fresh["decoder.wpe.weight"][n:])
    assert report["tokens"] == len(old) and report["copied"] > 0 and report["skipped"] == []


def test_what_does_not_fit_is_left_as_initialised_and_named():
    torch.manual_seed(0)
    reader = new_model("numbers", small("numbers"))
    shorter = small("numbers")
    shorter.vision.image_size = (28, 56)  # a shorter canvas: the encoder's position table has another shape
    target = new_model("numbers", shorter)
    before = target.encoder.pos_embed.clone()
    report = warm_start(target, reader)
    assert "encoder.pos_embed" in report["skipped"]
    assert torch.equal(target.encoder.pos_embed, before)


def test_designs_that_read_the_image_differently_are_refused():
    reader = new_model("numbers", small("numbers"))
    prefix = new_model("numbers", with_fusion(small("numbers"), "prefix"))
    with pytest.raises(ValueError, match="cannot warm-start a 'prefix' model from a 'cross' one"):
        warm_start(prefix, reader)


def test_the_command_line_records_what_it_reused(tmp_path, monkeypatch, mnist_train, mnist_test):
    from crossmodal.data.numbers import make_numbers
    from crossmodal.data.questions import QuestionSet, ask_each
    from crossmodal.tasks import questions as questions_task
    from crossmodal.tasks.questions import QuestionBatches

    torch.manual_seed(0)
    new_model("numbers", small("numbers")).save_pretrained(tmp_path / "reader")
    numbers = make_numbers(*mnist_test, 14, torch.Generator().manual_seed(4))
    monkeypatch.setattr(questions_task, "load_mnist", lambda train: mnist_train if train else mnist_test)
    monkeypatch.setattr(questions_task, "QuestionBatches",
                        lambda *a, **kw: QuestionBatches(*a, **kw, strings_per_epoch=32))
    monkeypatch.setattr(questions_task, "test_questions", lambda split="seen": QuestionSet(
        numbers, ask_each(numbers.texts, torch.Generator().manual_seed(0), "seen")))
    flags = ["--vision.dim", "16", "--vision.depth", "1", "--vision.num-heads", "2",
             "--decoder.dim", "16", "--decoder.depth", "2", "--decoder.num-heads", "2"]
    argv = ["--task", "questions", "--epochs", "1", "--batch-size", "16", "--warm-start", str(tmp_path / "reader"),
            "--out", str(tmp_path / "answerer"), *flags]
    train_cli.main(argv)
    record = json.loads((tmp_path / "answerer" / "training.json").read_text())
    assert record["warm_start"] == str(tmp_path / "reader")  # an untrained start has no record of its own
    assert record["warm_start_reused"]["copied"] > 0 and record["warm_start_reused"]["skipped"] == []
    assert VisionLanguageModel.from_pretrained(tmp_path / "answerer").tokenizer.chat_template
    with pytest.raises(SystemExit, match="give one of them"):
        train_cli.main([*argv[:-len(flags) - 1], str(tmp_path / "x"), "--init-from", str(tmp_path / "reader")])
    with pytest.raises(SystemExit, match="is not a saved model"):
        train_cli.main(["--task", "questions", "--warm-start", str(tmp_path / "nowhere"), "--out", str(tmp_path / "y")])


def test_positions_are_not_copied_when_the_image_takes_another_number_of_them():
    torch.manual_seed(0)
    source = new_model("captions", with_fusion(small("captions"), "prefix"))  # 49 image tokens, then the text
    config = with_fusion(small("captions"), "prefix")
    config.vision.image_size, config.decoder.block_size = 12, small("captions").decoder.block_size + 49 - 9
    target = new_model("captions", config)  # 9 image tokens, a longer text: a position table of the same shape
    assert target.decoder.wpe.weight.shape == source.decoder.wpe.weight.shape
    before = target.decoder.wpe.weight.clone()
    report = warm_start(target, source)
    assert "decoder.wpe.weight" in report["skipped"] and report["positions"] == 0
    assert torch.equal(target.decoder.wpe.weight, before)
