"""KV-cached generation equals uncached generation; batched equals one by one."""

import pytest
import torch

from crossmodal import VisionLanguageModel
from crossmodal.images import NotMNISTLikeWarning
from crossmodal.nn.model import Generation
from crossmodal.tasks.captions import new_captioner

from .conftest import tiny_config


def trained_like_model():
    """A random captioner with half-open gates, so the image matters to every token."""
    torch.manual_seed(0)
    model = new_captioner(tiny_config(gated=True)).eval()
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
    with pytest.warns(NotMNISTLikeWarning):  # noise, on purpose: the caption's shape is what is checked
        result = model.caption(torch.rand(28, 28, generator=torch.Generator().manual_seed(4)))
    assert isinstance(result, Generation)
    n, g = len(result.text), model.encoder.grid_size
    layers, heads = len(model.decoder.cross_attention_layers), model.config.decoder.num_heads
    assert result.attention.shape == (n, layers, heads, *g)
    assert torch.allclose(result.attention.sum(dim=(-2, -1)), torch.ones(n, layers, heads), atol=1e-5)
    assert result.text == model.decode(model.generate(result.image[None]))[0]


def test_caption_of_a_batch_is_a_list():
    model = trained_like_model()
    with pytest.warns(NotMNISTLikeWarning):  # noise, on purpose
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
    blind = new_captioner(tiny_config(cross_attention_every=0)).eval()  # a decoder that cannot see
    image = torch.rand(28, 28, generator=torch.Generator().manual_seed(6))
    with pytest.warns(NotMNISTLikeWarning):  # noise, on purpose
        written = blind.caption(image)
    g, heads = blind.encoder.grid_size, blind.config.decoder.num_heads
    assert written.attention.shape == (len(written.text), 0, heads, *g)
    read = blind.score(image, "This is the number two.")
    assert read.attention.shape == (len("This is the number two."), 0, heads, *g)
    assert read.probs.shape == (len("This is the number two."),)



def test_a_blind_captioner_trains_without_running_the_encoder():
    """Its decoder has no cross-attention: the patches would be thrown away, so forward skips the encoder."""
    torch.manual_seed(0)
    blind = new_captioner(tiny_config(cross_attention_every=0))
    calls = []
    blind.encoder.patch_embed.register_forward_hook(lambda module, args, out: calls.append(1))  # the first step
    tokens = torch.randint(4, blind.config.decoder.vocab_size, (2, 6))
    logits, loss = blind(torch.rand(2, 1, 28, 28), tokens[:, :-1], tokens[:, 1:])
    assert calls == [] and logits.shape == (2, 5, blind.config.decoder.vocab_size)
    _, other = blind(torch.zeros(2, 1, 28, 28), tokens[:, :-1], tokens[:, 1:])
    assert torch.equal(loss, other)  # the images make no difference to a decoder that cannot see
    seeing = new_captioner(tiny_config())
    seeing.encoder.patch_embed.register_forward_hook(lambda module, args, out: calls.append(1))
    seeing(torch.rand(2, 1, 28, 28), tokens[:, :-1])
    assert calls == [1]

# --- prompts ------------------------------------------------------------------------------------


def ids(model, text):
    return model.tokenizer.convert_tokens_to_ids(list(text))


def test_a_prompt_with_cache_equals_without():
    model = trained_like_model()
    images = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(7))
    prompt = ids(model, "This is")  # one prompt for every row
    a = model.generate(images, prompt=prompt, use_cache=True)
    b = model.generate(images, prompt=prompt, use_cache=False)
    assert torch.equal(a, b)
    forced = model.generate(images, prompt=ids(model, "This is the number "))
    assert not torch.equal(forced, model.generate(images))  # the prompt changes what is written


def test_batched_prompts_of_different_lengths_equal_one_at_a_time():
    model = trained_like_model()
    images = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(8))
    prompts = [ids(model, p) for p in ["This is the number ", "", "Th", "This is the number t"]]
    batched, maps = model.generate(images, prompt=prompts, return_attention=True)
    for i, prompt in enumerate(prompts):
        alone, alone_maps = model.generate(images[i : i + 1], prompt=[prompt], return_attention=True)
        n = alone.size(1)
        assert torch.equal(batched[i, :n], alone[0]) and (batched[i, n:] == model.config.pad_id).all()
        assert torch.allclose(maps[i, :n], alone_maps[0], atol=1e-6)


def test_prompts_are_checked():
    model = trained_like_model()
    images = torch.rand(2, 1, 28, 28)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        model.generate(images, prompt=[[5, 999], [5]])
    with pytest.raises(ValueError, match="one list per image"):
        model.generate(images, prompt=[[5], [5], [5]])
    with pytest.raises(ValueError, match="does not fit"):
        model.generate(images, prompt=[5] * model.config.decoder.block_size)


# --- generation settings are checked, each with the reason ---------------------------------------


def test_zero_new_tokens_writes_nothing(tiny_model):
    generated, maps = tiny_model.generate(torch.rand(2, 1, 28, 28), max_new_tokens=0, return_attention=True)
    assert generated.shape == (2, 0) and maps.shape[:2] == (2, 0)
    assert tiny_model.generate(torch.rand(2, 1, 28, 28), max_new_tokens=3).shape == (2, 3)  # untrained: no <eos>


@pytest.mark.parametrize("settings, message", [
    ({"max_new_tokens": -1}, "max_new_tokens must be a whole number ≥ 0"),
    ({"max_new_tokens": 2.5}, "max_new_tokens must be a whole number ≥ 0"),
    ({"max_new_tokens": 1000, "temperature": 1.0}, "does not fit"),
    ({"temperature": -0.5}, "temperature must be a finite number ≥ 0"),
    ({"temperature": float("nan")}, "temperature must be a finite number ≥ 0"),
    ({"temperature": float("inf")}, "temperature must be a finite number ≥ 0"),
    ({"temperature": 1.0, "top_k": -1}, "top_k must be None"),
    ({"temperature": 1.0, "top_k": 0}, "top_k must be None"),
])
def test_bad_generation_settings_are_refused_with_the_reason(tiny_model, settings, message):
    with pytest.raises(ValueError, match=message):
        tiny_model.generate(torch.rand(1, 1, 28, 28), **settings)


def test_the_longest_generation_fits_block_size(tiny_model):
    room = tiny_model.config.decoder.block_size - 1  # after <bos>
    generated = tiny_model.generate(torch.rand(2, 1, 28, 28), max_new_tokens=room, temperature=1.0,
                                    generator=torch.Generator().manual_seed(0))
    assert generated.size(1) <= room


def test_decoding_an_unknown_token_id_says_so(tiny_model):
    with pytest.raises(ValueError, match=r"token ids \[99\] are not in the vocabulary"):
        tiny_model.decode(torch.tensor([[5, 99]]))


def test_a_captioner_without_tokenizer_says_what_to_do():
    model = VisionLanguageModel(tiny_config()).eval()
    assert model.generate(torch.rand(1, 1, 28, 28), max_new_tokens=2).shape == (1, 2)  # ids need no tokenizer
    for call in (lambda: model.decode(torch.tensor([[5]])), lambda: model.caption(torch.rand(28, 28)),
                 lambda: model.score(torch.rand(28, 28), "This")):
        with pytest.raises(ValueError, match="no tokenizer"):
            call()


def test_caption_checks_the_images_once(tiny_model, monkeypatch):
    import crossmodal.nn.model

    calls = []
    original = crossmodal.nn.model.to_image_batch
    monkeypatch.setattr(crossmodal.nn.model, "to_image_batch", lambda *a: calls.append(1) or original(*a))
    with pytest.warns(NotMNISTLikeWarning):  # noise, on purpose
        tiny_model.caption(torch.rand(28, 28))
    assert len(calls) == 1


def test_decode_ends_a_row_without_eos_at_its_last_token(tiny_model):
    """A row that ran out of room has no <eos>; the <pad>s after it only fill the batch, they are not text."""
    eos, pad = tiny_model.config.eos_id, tiny_model.config.pad_id
    t = tiny_model.tokenizer.convert_tokens_to_ids("T")
    assert tiny_model.decode([[t, t, pad, pad], [t, t, t, t], [t, pad, t, eos]]) == ["TT", "TTTT", "T�T"]
