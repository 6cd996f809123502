"""KV-cached generation equals uncached generation; batched equals one by one."""

import pytest
import torch

from crossmodal import Captioner
from crossmodal.model import Caption

from .conftest import tiny_config


def trained_like_model():
    """A random captioner with half-open gates, so the image matters to every token."""
    torch.manual_seed(0)
    model = Captioner.for_mnist(tiny_config(gated=True)).eval()
    with torch.no_grad():
        for block in model.decoder.blocks:
            block.gate.fill_(0.5)
    return model


def test_cache_equals_no_cache_token_for_token():
    model = trained_like_model()
    images = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    assert torch.equal(model.generate(images, use_cache=True), model.generate(images, use_cache=False))


def test_cache_equals_no_cache_when_sampling():
    model = trained_like_model()
    images = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    a = model.generate(images, temperature=1.0, top_k=5, generator=torch.Generator().manual_seed(0))
    b = model.generate(images, temperature=1.0, top_k=5, generator=torch.Generator().manual_seed(0), use_cache=False)
    assert torch.equal(a, b)


def test_batched_equals_one_by_one():
    model = trained_like_model()
    images = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    batched = model.decode(model.generate(images))
    single = [model.decode(model.generate(images[i : i + 1]))[0] for i in range(5)]
    assert batched == single


def test_generation_stops_at_eos_and_pads_after(tiny_model):
    eos, pad = tiny_model.config.eos_id, tiny_model.config.pad_id
    with torch.no_grad():  # make <eos> the only likely token after the second step
        tiny_model.decoder.wpe.weight[2:] = 0
        tiny_model.decoder.wpe.weight[2:, 0] = 50.0
        tiny_model.decoder.wte.weight[eos, 0] = 1.0
        tiny_model.decoder.ln_f.weight.zero_()
        tiny_model.decoder.ln_f.bias.zero_()
        tiny_model.decoder.ln_f.bias[0] = 1.0
    generated = tiny_model.generate(torch.rand(3, 1, 28, 28))
    for row in generated.tolist():
        assert eos in row
        assert all(t == pad for t in row[row.index(eos) + 1 :])


def test_caption_returns_text_and_attention_maps():
    model = trained_like_model()
    result = model.caption(torch.rand(28, 28, generator=torch.Generator().manual_seed(4)))
    assert isinstance(result, Caption)
    n, g = len(result.text), model.encoder.grid_size
    layers, heads = len(model.decoder.cross_attention_layers), model.config.decoder.num_heads
    assert result.attention.shape == (n, layers, heads, *g)
    assert torch.allclose(result.attention.sum(dim=(-2, -1)), torch.ones(n, layers, heads), atol=1e-5)
    assert result.text == model.decode(model.generate(result.image[None]))[0]


def test_caption_of_a_batch_is_a_list():
    model = trained_like_model()
    results = model.caption(torch.rand(3, 1, 28, 28))
    assert isinstance(results, list) and len(results) == 3


def test_score_gives_each_character_its_predicted_probability():
    model = trained_like_model()
    image = torch.rand(1, 28, 28, generator=torch.Generator().manual_seed(5))
    text = "This is the number three."
    read = model.score(image, text)
    ids = torch.tensor([model.tokenizer(text)["input_ids"]])  # <bos> text <eos>
    with torch.no_grad():
        probs = model(image[None], ids[:, :-1])[0].softmax(-1)  # (T + 1, vocab)
    for i, char in enumerate(text):  # the prediction made *before* reading character i
        assert read.probs[i] == pytest.approx(probs[i, model.tokenizer.convert_tokens_to_ids(char)].item(), rel=1e-5)
    g, layers = model.encoder.grid_size, len(model.decoder.cross_attention_layers)
    assert read.attention.shape == (len(text), layers, model.config.decoder.num_heads, *g)
    assert torch.allclose(read.attention.sum(dim=(-2, -1)), torch.ones(read.attention.shape[:3]), atol=1e-5)


def test_score_refuses_text_it_cannot_read(tiny_model):
    image = torch.rand(28, 28)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tiny_model.score(image, "This is the number 7")
    with pytest.raises(ValueError, match="empty"):
        tiny_model.score(image, "")
    with pytest.raises(ValueError, match="longer than"):
        tiny_model.score(image, "This is the number one. " * 3)


def test_a_blind_captioner_captions_and_scores_with_no_maps():
    torch.manual_seed(0)
    blind = Captioner.for_mnist(tiny_config(cross_attention_every=0)).eval()  # a decoder that cannot see
    image = torch.rand(28, 28, generator=torch.Generator().manual_seed(6))
    written = blind.caption(image)
    g, heads = blind.encoder.grid_size, blind.config.decoder.num_heads
    assert written.attention.shape == (len(written.text), 0, heads, *g)
    read = blind.score(image, "This is the number two.")
    assert read.attention.shape == (len("This is the number two."), 0, heads, *g)
    assert read.probs.shape == (len("This is the number two."),)
