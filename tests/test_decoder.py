"""Our decoder with cross-attention equals transformers' GPT-2 with add_cross_attention=True."""

import pytest
import torch
from transformers import GPT2LMHeadModel

from crossmodal import Decoder, DecoderConfig, KVCache
from crossmodal.nn.decoder import gpt2_config_for, load_gpt2_weights


@pytest.mark.parametrize("dim, depth, heads", [(32, 1, 2), (48, 3, 4), (64, 2, 8)])
def test_equals_gpt2_with_cross_attention(dim, depth, heads):
    torch.manual_seed(0)
    cfg = DecoderConfig(vocab_size=40, block_size=32, dim=dim, depth=depth, num_heads=heads, gated=False)
    gpt2 = GPT2LMHeadModel(gpt2_config_for(cfg)).eval()
    ours = load_gpt2_weights(Decoder(cfg), gpt2).eval()
    tokens = torch.randint(0, 40, (3, 20))
    memory = torch.randn(3, 49, dim)
    with torch.no_grad():
        expected = gpt2(input_ids=tokens, encoder_hidden_states=memory).logits
        assert (ours(tokens, memory) - expected).abs().max() <= 1e-4


def test_gated_decoder_refuses_gpt2_weights():
    cfg = DecoderConfig(vocab_size=40, dim=32, depth=1, num_heads=2, gated=True)
    with pytest.raises(ValueError, match="gated=False"):
        load_gpt2_weights(Decoder(cfg), GPT2LMHeadModel(gpt2_config_for(cfg)))


def test_closed_gate_means_blind_decoder():
    """tanh(0) = 0: at initialisation the image changes nothing."""
    torch.manual_seed(0)
    decoder = Decoder(DecoderConfig(vocab_size=40, dim=32, depth=2, num_heads=2, gated=True)).eval()
    tokens = torch.randint(0, 40, (2, 10))
    with torch.no_grad():
        assert torch.equal(decoder(tokens, torch.randn(2, 49, 32)), decoder(tokens, torch.randn(2, 49, 32)))
        decoder.blocks[0].gate.fill_(1.0)
        assert not torch.equal(decoder(tokens, torch.randn(2, 49, 32)), decoder(tokens, torch.randn(2, 49, 32)))


@pytest.mark.parametrize("every, expected", [(1, [0, 1, 2, 3]), (2, [1, 3]), (0, [])])
def test_cross_attention_every_kth_layer(every, expected):
    decoder = Decoder(DecoderConfig(vocab_size=40, dim=32, depth=4, num_heads=2, cross_attention_every=every))
    assert [i for i, b in enumerate(decoder.blocks) if b.cross_attn is not None] == expected


def test_kv_cache_matches_full_forward():
    torch.manual_seed(0)
    decoder = Decoder(DecoderConfig(vocab_size=40, dim=32, depth=2, num_heads=2, gated=False)).eval()
    tokens, memory = torch.randint(0, 40, (2, 12)), torch.randn(2, 16, 32)
    with torch.no_grad():
        full = decoder(tokens, memory)
        cache = KVCache(2)
        parts = [decoder(tokens[:, :5], memory, cache)]  # a prompt, then one token at a time
        parts += [decoder(tokens[:, t : t + 1], memory, cache) for t in range(5, 12)]
    assert cache.length == 12
    assert (torch.cat(parts, dim=1) - full).abs().max() <= 1e-5


def test_too_long_sequence_is_a_clear_error():
    decoder = Decoder(DecoderConfig(vocab_size=40, block_size=8, dim=32, depth=1, num_heads=2))
    with pytest.raises(ValueError, match="block_size"):
        decoder(torch.zeros(1, 9, dtype=torch.long))


def test_gpt2_with_more_cross_attention_is_refused():
    cfg = DecoderConfig(vocab_size=40, dim=32, depth=2, num_heads=2, cross_attention_every=2)
    gpt2 = GPT2LMHeadModel(gpt2_config_for(DecoderConfig(vocab_size=40, dim=32, depth=2, num_heads=2)))
    with pytest.raises(ValueError, match="cross-attention in layer 0"):
        load_gpt2_weights(Decoder(cfg), gpt2)


def test_cache_without_memory_is_the_text_only_decoder_or_a_clear_error():
    torch.manual_seed(0)
    decoder = Decoder(DecoderConfig(vocab_size=40, dim=32, depth=2, num_heads=2, gated=False)).eval()
    tokens = torch.randint(0, 40, (2, 6))
    with torch.no_grad():
        cache = KVCache(2)
        cached = torch.cat([decoder(tokens[:, :4], None, cache), decoder(tokens[:, 4:], None, cache)], dim=1)
        assert (cached - decoder(tokens)).abs().max() <= 1e-5  # no image: cross-attention is skipped, as uncached
        cache = KVCache(2)
        decoder(tokens[:, :4], torch.randn(2, 16, 32), cache)
        with pytest.raises(ValueError, match="pass the same memory on every step"):
            decoder(tokens[:, 4:], None, cache)


def test_decoder_returns_cross_attention_weights_when_asked():
    torch.manual_seed(0)
    decoder = Decoder(DecoderConfig(vocab_size=40, dim=32, depth=4, num_heads=2, cross_attention_every=2)).eval()
    tokens, memory = torch.randint(0, 40, (2, 6)), torch.randn(2, 16, 32)
    with torch.no_grad():
        logits, weights = decoder(tokens, memory, need_weights=True)
        assert torch.allclose(logits, decoder(tokens, memory), atol=1e-5)
    assert [tuple(w.shape) for w in weights] == [(2, 2, 6, 16)] * 2  # one (B, H, T, N) per cross-attention layer
    assert torch.allclose(weights[0].sum(-1), torch.ones(2, 2, 6))
