"""Reading measures (tasks/numbers.py, tasks/metrics.py) against cases worked out by hand, and a numbers run through
train()."""

import json

import pytest
import torch

from crossmodal import DecoderConfig, VisionConfig, VisionLanguageModel, VLMConfig, preprocess_number
from crossmodal.data.numbers import make_numbers
from crossmodal.tasks.metrics import alignment, box_patches, character_error_rate, edit_distance
from crossmodal.tasks.numbers import NumberBatches, ReadingTest, evaluate_reading, new_reader, read, read_number
from crossmodal.training import TrainConfig, train


@pytest.mark.parametrize("a, b, distance", [
    ("2026", "2026", 0), ("kitten", "sitting", 3), ("", "123", 3), ("123", "", 3), ("123", "13", 1),
    ("1243", "1234", 2), ("7", "1", 1), ("1111", "111", 1), ("0042", "42", 2),
])
def test_edit_distance(a, b, distance):
    assert edit_distance(a, b) == distance == edit_distance(b, a)


def test_character_error_rate_sums_over_the_set():
    # distances 1 ("12" vs "123"), 1 ("7" vs "1"), 2 ("1234" vs "1243"), 0; reference characters 3 + 1 + 4 + 2
    assert character_error_rate(["12", "7", "1234", "55"], ["123", "1", "1243", "55"]) == pytest.approx(4 / 10)
    with pytest.raises(ValueError, match="2 predictions for 1"):
        character_error_rate(["1", "2"], ["1"])


def test_box_patches_covers_every_patch_the_box_touches():
    assert box_patches((4, 0, 24, 12), 4) == (1, 0, 6, 3)
    assert box_patches((3, 13, 25, 14), 4) == (0, 3, 7, 4)


def test_alignment_on_a_case_with_a_known_answer():
    # two digits: "1" in pixels (4, 0)-(24, 12) -> patches rows 1-5, cols 0-2 (15 patches);
    # "2" in (4, 60)-(24, 80) -> rows 1-5, cols 15-19 (25 patches); the grid is 7 × 28 = 196 patches
    boxes = torch.tensor([[[4, 0, 24, 12], [4, 60, 24, 80]]])
    maps = torch.full((1, 3, 2, 2, 7, 28), 1e-3)  # (B, T, layers, heads, grid_h, grid_w)
    maps[0, 0, :, :, 3, 1] = 1.0  # digit 1: every layer and head peaks on it
    maps[0, 1, 0, :, 2, 17] = 1.0  # digit 2, layer 0: both heads on it
    maps[0, 1, 1, 0, 0, 17] = 0.6  # digit 2, layer 1: head 0 above the box (row 0)...
    maps[0, 1, 1, 1, 4, 16] = 0.5  # ...head 1 inside it, but the head mean peaks at head 0's patch
    result = alignment(maps, ["12"], ["12"], boxes, patch_size=4)
    assert result["per_layer"] == [1.0, 0.5] and result["count"] == 2
    assert result["per_head"] == [[1.0, 1.0], [0.5, 1.0]]
    assert result["chance"] == pytest.approx((15 + 25) / 2 / 196)
    wrong = alignment(maps, ["13"], ["12"], boxes, patch_size=4)  # only the digit written right is scored
    assert wrong["count"] == 1 and wrong["per_layer"] == [1.0, 1.0] and wrong["chance"] == pytest.approx(15 / 196)


def tiny_reader():
    torch.manual_seed(0)
    return new_reader(VLMConfig(VisionConfig(image_size=(28, 112), dim=16, depth=1, num_heads=2),
                                                 DecoderConfig(dim=16, depth=1, num_heads=2, block_size=6)))


def test_read_and_evaluate_reading(mnist_test):
    model = tiny_reader().eval()
    numbers = make_numbers(*mnist_test, 12, torch.Generator().manual_seed(0))
    texts, maps = read(model, numbers.images, batch_size=5)
    assert len(texts) == 12 and maps.shape == (12, 6, 1, 2, 7, 28)
    result = evaluate_reading(model, numbers)
    assert 0 <= result["exact_match"] <= 1 and result["cer"] >= 0 and set(result["by_length"]) <= {"1", "2", "3", "4"}
    assert result["predictions"] == texts and len(result["alignment"]["per_head"]) == 1


def test_train_reads_numbers_from_a_stream(mnist_train, mnist_test):
    model = tiny_reader()
    stream = NumberBatches(*mnist_train, model.tokenizer, strings_per_epoch=48)
    test_numbers = make_numbers(*mnist_test, 20, torch.Generator().manual_seed(1))
    before = [p.detach().clone() for p in model.parameters()]
    history = train(model, TrainConfig(epochs=2, batch_size=16, warmup_steps=1, save_every=1000), stream,
                    ReadingTest(test_numbers))
    assert len(history["loss"]) == 6 and history["loss"][-1] < history["loss"][0]
    assert set(history["eval"][-1]) == {"step", "train_seconds", "exact_match", "cer", "by_length", "alignment"}
    assert any((a != b).any() for a, b in zip(before, model.parameters()))


def test_train_cli_task_numbers_trains_a_reader(tmp_path, monkeypatch, mnist_train, mnist_test):
    from crossmodal import train as train_cli
    from crossmodal.tasks import numbers as numbers_task

    small_test = make_numbers(*mnist_test, 30, torch.Generator().manual_seed(4))
    streams = []
    monkeypatch.setattr(numbers_task, "load_mnist", lambda train: mnist_train if train else mnist_test)
    monkeypatch.setattr(numbers_task, "NumberBatches",
                        lambda *a, **kw: streams.append(NumberBatches(*a, **kw, strings_per_epoch=64)) or streams[-1])
    monkeypatch.setattr(numbers_task, "test_numbers", lambda: small_test)  # ReadingTest()'s default set
    train_cli.main(["--task", "numbers", "--epochs", "1", "--batch-size", "32", "--out", str(tmp_path),
                    "--vision.dim", "16", "--vision.depth", "1", "--decoder.dim", "16", "--decoder.depth", "1",
                    "--augment-strokes", "false"])
    assert (streams[0].augment, streams[0].strokes) == (True, False)  # the recipe's augmentation flags reach the stream
    reader = VisionLanguageModel.from_pretrained(tmp_path)
    assert reader.config.vision.image_size == [28, 112] and reader.config.decoder.block_size == 6
    assert reader.config.vision.dim == 16 and reader.config.decoder.num_heads == 4  # flags over reader_config()
    record = json.loads((tmp_path / "training.json").read_text())
    assert 0 <= record["test_exact_match"] <= 1 and {"cer", "by_length", "alignment"} <= set(record)


def test_read_number_places_every_picture_on_the_canvas(mnist_test, monkeypatch):
    model = tiny_reader().eval()
    seen = []
    monkeypatch.setattr(model, "generate_text", lambda x, *a, **k: seen.append(x) or [type("G", (), {"text": "42"})()])
    canvas = make_numbers(*mnist_test, 1, torch.Generator().manual_seed(0)).images[0]
    assert read_number(model, canvas) == "42"  # the reader's own size: placed by the one input contract too
    assert torch.equal(seen[-1], preprocess_number(canvas, canvas=(28, 112)))
    pair_of_digits = torch.cat([mnist_test[0][0, 0], mnist_test[0][1, 0]], dim=1)  # (28, 56)
    read_number(model, pair_of_digits.numpy())
    assert seen[-1].shape == (1, 28, 112) and seen[-1][0, :, :20].max() == 0  # centred on the canvas
