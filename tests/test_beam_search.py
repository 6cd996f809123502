"""Beam search (crossmodal/decoding.py) against an exhaustive search over every sequence, on a tiny vocabulary."""

import itertools

import pytest
import torch

from crossmodal import VisionLanguageModel

from .conftest import tiny_config

PAD, BOS, EOS, V = 0, 1, 2, 5  # a vocabulary of five tokens: <pad>, <bos>, <eos> and two characters


def tiny_vocab_model(seed=0, noise=0.1):
    """A random captioner over 5 tokens whose next-token distributions are far from uniform. With the
    defaults, greedy decoding often misses the likeliest sequence (a first token looks likelier than <eos>)."""
    torch.manual_seed(seed)
    model = VisionLanguageModel(tiny_config(vocab_size=V)).eval()  # no tokenizer: generate() works on ids
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.add_(torch.randn_like(p) * noise)  # far from the near-uniform start of training's init
    return model


def images(n, seed):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def every_sequence(max_new):
    """Every sequence generate() can write in max_new tokens: ended by <eos>, or max_new tokens without one."""
    others = [t for t in range(V) if t != EOS]
    for n in range(max_new):
        yield from (list(body) + [EOS] for body in itertools.product(others, repeat=n))
    yield from (list(body) for body in itertools.product(others, repeat=max_new))


@torch.no_grad()
def log_prob(model, image, sequences, max_new):
    """The model's log-probability of each sequence after <bos>, read in one teacher-forced pass: (S,)."""
    rows = torch.tensor([[BOS] + s + [PAD] * (max_new - len(s)) for s in sequences])  # (S, 1 + max_new)
    logits = model(image.expand(len(sequences), -1, -1, -1), rows[:, :-1])  # (S, max_new, V)
    logp = logits.log_softmax(-1).gather(2, rows[:, 1:, None]).squeeze(2)  # (S, max_new)
    real = torch.arange(max_new) < torch.tensor([len(s) for s in sequences])[:, None]
    return (logp * real).sum(1)


def exhaustive(model, image, max_new):
    """The most likely sequence of all, and its log-probability."""
    sequences = list(every_sequence(max_new))
    scores = log_prob(model, image[None], sequences, max_new)
    best = int(scores.argmax())
    return sequences[best], scores[best].item(), scores


def as_list(row):
    """A row of generate()'s output without its trailing padding (a written <pad> before <eos> stays)."""
    row = row.tolist()
    return row[: row.index(EOS) + 1] if EOS in row else row


MAX_NEW = 4
CANDIDATES = sum(4**n for n in range(MAX_NEW)) + 4**MAX_NEW  # 341 sequences of at most 4 tokens


def test_the_exhaustive_search_covers_every_sequence_once():
    sequences = list(every_sequence(MAX_NEW))
    assert len(sequences) == CANDIDATES == len({tuple(s) for s in sequences})
    model = tiny_vocab_model()  # and the probabilities of all of them add up to one
    total = log_prob(model, images(1, 0), sequences, MAX_NEW).exp().sum()
    assert total == pytest.approx(1.0, abs=1e-4)


def test_enough_beams_find_what_an_exhaustive_search_finds():
    x = images(6, 1)
    greedy_is_not_best, lengths = 0, set()
    for model in (tiny_vocab_model(0, 0.1), tiny_vocab_model(0, 0.3), tiny_vocab_model(1, 0.3)):
        tokens, scores = model.generate(x, max_new_tokens=MAX_NEW, num_beams=CANDIDATES, return_scores=True)
        for i in range(len(x)):
            best, best_score, _ = exhaustive(model, x[i], MAX_NEW)
            assert as_list(tokens[i]) == best
            assert scores[i].item() == pytest.approx(best_score, abs=1e-4)
            greedy = as_list(model.generate(x[i : i + 1], max_new_tokens=MAX_NEW)[0])
            greedy_is_not_best += greedy != best
            lengths.add(len(best))
    assert greedy_is_not_best > 0  # else this test could not tell beam search from greedy decoding
    assert len(lengths) > 1  # the best sequences end at <eos> at different lengths, or run out of tokens


def test_a_few_beams_score_no_better_than_the_best_and_say_their_score_truly():
    model = tiny_vocab_model()
    x = images(6, 2)
    tokens, scores = model.generate(x, max_new_tokens=MAX_NEW, num_beams=3, return_scores=True)
    for i in range(len(x)):
        _, best_score, _ = exhaustive(model, x[i], MAX_NEW)
        found = as_list(tokens[i])
        assert scores[i].item() <= best_score + 1e-5
        assert scores[i].item() == pytest.approx(log_prob(model, x[i : i + 1], [found], MAX_NEW).item(), abs=1e-4)


def test_one_beam_is_greedy_decoding():
    model = tiny_vocab_model()
    x = images(8, 3)
    for max_new in (None, 0, 3):
        greedy = model.generate(x, max_new_tokens=max_new)
        tokens, scores = model.generate(x, max_new_tokens=max_new, num_beams=1, return_scores=True)
        assert torch.equal(tokens, greedy)
    prompt = [3, 4]
    assert torch.equal(model.generate(x, prompt=prompt, num_beams=1, return_scores=True)[0],
                       model.generate(x, prompt=prompt))


def test_cached_beam_search_equals_uncached():
    model = tiny_vocab_model()
    x = images(5, 4)
    a, score_a = model.generate(x, num_beams=4, return_scores=True, use_cache=True)
    b, score_b = model.generate(x, num_beams=4, return_scores=True, use_cache=False)
    assert torch.equal(a, b)
    assert torch.allclose(score_a, score_b, atol=1e-5)


def test_a_batch_of_images_equals_one_at_a_time():
    model = tiny_vocab_model()
    x = images(4, 5)
    batched = model.generate(x, num_beams=3)
    for i in range(len(x)):
        alone = model.generate(x[i : i + 1], num_beams=3)[0]
        n = alone.size(0)
        assert torch.equal(batched[i, :n], alone) and (batched[i, n:] == PAD).all()


def test_rows_end_at_eos_then_pad():
    model = tiny_vocab_model()
    with torch.no_grad():  # make <eos> likely, so that beams finish at different lengths
        model.decoder.wte.weight[EOS] *= 3
    tokens = model.generate(images(6, 6), num_beams=3)
    assert (tokens == EOS).any(), "no row finished: the test would check nothing"
    for row in tokens.tolist():
        if EOS in row:
            assert all(t == PAD for t in row[row.index(EOS) + 1 :])


@pytest.mark.parametrize("settings, message", [
    ({"num_beams": 0}, "num_beams must be a whole number ≥ 1"),
    ({"num_beams": -2}, "num_beams must be a whole number ≥ 1"),
    ({"num_beams": 2.5}, "num_beams must be a whole number ≥ 1"),
    ({"num_beams": True}, "num_beams must be a whole number ≥ 1"),
    ({"num_beams": 3, "temperature": 0.7}, "it does not sample"),
    ({"num_beams": 3, "top_k": 2}, "leave top_k=None"),
    ({"num_beams": 3, "return_attention": True}, "score"),
    ({"num_beams": 3, "prompt": [[3], [3, 4]]}, "prompts of equal length"),
    ({"num_beams": 3, "max_new_tokens": 1000}, "does not fit"),
    ({"return_scores": True, "temperature": 1.0}, "return_scores is for greedy"),
])
def test_bad_beam_settings_are_refused_with_the_reason(settings, message):
    with pytest.raises(ValueError, match=message):
        tiny_vocab_model().generate(images(2, 7), **settings)
