"""The checkpoint shipped inside the package works offline and captions MNIST almost perfectly."""

import json

import pytest
import torch

from crossmodal import caption_for, load_captioner
from crossmodal.pretrained import shipped_dir
from crossmodal.tasks.captions import evaluate

PRETRAINED_DIR = shipped_dir("captioner")


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(2)
    return load_captioner()


def test_shipped_files_are_small():
    total = sum(f.stat().st_size for f in PRETRAINED_DIR.iterdir())
    assert total <= 5 * 1024 * 1024, f"{total / 1e6:.1f} MB"
    record = json.loads((PRETRAINED_DIR / "training.json").read_text())
    assert record["command"].startswith("python -m crossmodal.train")


def test_evaluate_agrees_with_decoded_strings(model, mnist_test):
    images, labels = mnist_test[0][:300], mnist_test[1][:300]
    texts = model.decode(model.generate(images))
    expected = sum(t == caption_for(d) for t, d in zip(texts, labels.tolist())) / len(labels)
    assert evaluate(model, images, labels)["exact_match"] == pytest.approx(expected)
    assert expected > 0.95


def test_caption_of_a_seven(model, mnist_test):
    images, labels = mnist_test
    seven = images[labels == 7][0]
    result = model.caption(seven)
    assert result.text == "This is the number seven."
    assert result.attention.shape[0] == len(result.text)


def test_score_reads_the_caption_it_writes(model, mnist_test):
    images, labels = mnist_test
    seven = images[labels == 7][0]
    written = model.caption(seven)
    read = model.score(seven, written.text)
    assert torch.allclose(read.attention, written.attention, atol=1e-5)  # same maps, teacher-forced
    assert read.probs.min() > 0.5
    wrong = model.score(seven, "This is the number one.")
    assert wrong.probs[19] < 0.1  # the model does not believe "o" (one) comes after "number "


@pytest.mark.parametrize("name", ["cross", "prefix", "raw"])
def test_shipped_fusion_models_caption_as_their_record_says(name, mnist_test):
    from crossmodal.pretrained import load_fusion
    from crossmodal.pretrained import record as shipped_record

    model = load_fusion(name)
    assert model.config.fusion == name
    assert sum(f.stat().st_size for f in shipped_dir(f"fusion-{name}").iterdir()) <= 2 * 1024 * 1024
    record = shipped_record(f"fusion-{name}")
    assert record["command"].startswith("python tests/benchmarks/compare_fusions.py")
    assert record["parameters"] == sum(p.numel() for p in model.parameters())
    images, labels = mnist_test[0][:1000], mnist_test[1][:1000]
    # the record is on all 10,000 test images; the first 1,000 give it to within sampling error
    assert evaluate(model, images, labels)["exact_match"] >= record["exact_match_last_epoch"] - 0.02


def test_an_unknown_fusion_model_is_refused():
    from crossmodal.pretrained import load_fusion

    with pytest.raises(ValueError, match="cross, prefix, raw"):
        load_fusion("perceiver")
