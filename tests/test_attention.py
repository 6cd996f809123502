"""Our written-out attention equals PyTorch's fused SDPA and nn.MultiheadAttention."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from crossmodal import MultiHeadAttention, scaled_dot_product_attention, set_fused_attention

TOL = 1e-5


def qkv(B=2, H=3, Tq=5, Tk=7, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, H, Tq, d, generator=g), torch.randn(B, H, Tk, d, generator=g),
            torch.randn(B, H, Tk, d, generator=g))


def test_equals_sdpa_without_mask():
    q, k, v = qkv()
    out, weights = scaled_dot_product_attention(q, k, v)
    assert (out - F.scaled_dot_product_attention(q, k, v)).abs().max() <= TOL
    assert torch.allclose(weights.sum(-1), torch.ones(2, 3, 5))


def test_equals_sdpa_with_bool_mask():
    q, k, v = qkv()
    mask = torch.rand(2, 1, 5, 7, generator=torch.Generator().manual_seed(1)) > 0.3
    mask[..., 0] = True  # every query may see at least one key
    out, weights = scaled_dot_product_attention(q, k, v, mask=mask)
    assert (out - F.scaled_dot_product_attention(q, k, v, attn_mask=mask)).abs().max() <= TOL
    assert (weights.masked_select(~mask.expand_as(weights)) == 0).all()


def test_equals_sdpa_causal():
    q, k, v = qkv(Tq=6, Tk=6)
    out, weights = scaled_dot_product_attention(q, k, v, is_causal=True)
    assert (out - F.scaled_dot_product_attention(q, k, v, is_causal=True)).abs().max() <= TOL
    assert (weights.triu(diagonal=1) == 0).all()


def test_causal_with_fewer_queries_is_bottom_right_aligned():
    """With a KV cache the newest query sees every key: the last rows of the full causal mask."""
    q, k, v = qkv(Tq=6, Tk=6)
    full, _ = scaled_dot_product_attention(q, k, v, is_causal=True)
    last, _ = scaled_dot_product_attention(q[:, :, -2:], k, v, is_causal=True)
    assert (last - full[:, :, -2:]).abs().max() <= TOL


@pytest.mark.parametrize("cross", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_module_equals_nn_multihead_attention(cross, masked):
    torch.manual_seed(0)
    dim, heads = 16, 4
    ours = MultiHeadAttention(dim, heads)
    ref = nn.MultiheadAttention(dim, heads, batch_first=True)
    with torch.no_grad():  # nn.MultiheadAttention packs q, k, v in in_proj
        ours.q.weight.copy_(ref.in_proj_weight[:dim])
        ours.q.bias.copy_(ref.in_proj_bias[:dim])
        ours.kv.weight.copy_(ref.in_proj_weight[dim:])
        ours.kv.bias.copy_(ref.in_proj_bias[dim:])
        ours.proj.load_state_dict(ref.out_proj.state_dict())
    x = torch.randn(2, 5, dim)
    context = torch.randn(2, 9, dim) if cross else x
    S = context.size(1)
    mask = torch.ones(5, S, dtype=torch.bool).tril() if masked else None  # True = may attend
    expected, ref_weights = ref(x, context, context, attn_mask=None if mask is None else ~mask,  # True = blocked
                                average_attn_weights=False)
    for fused in (True, False):
        ours.fused = fused
        got = ours(x, None if not cross else context, mask=mask)
        assert (got - expected).abs().max() <= TOL
    for fused in (True, False):  # asking for the weights takes the written-out path either way
        ours.fused = fused
        got, kv_cache, weights = ours(x, None if not cross else context, mask=mask, need_weights=True)
        assert kv_cache is None and (got - expected).abs().max() <= TOL
        assert (weights - ref_weights).abs().max() <= TOL


@pytest.mark.parametrize("cross", [False, True])
def test_kv_cache_inside_the_module_equals_one_pass(cross):
    """Self-attention appends the new tokens' keys and values; cross-attention reuses the context's."""
    torch.manual_seed(0)
    attn = MultiHeadAttention(16, 4)
    x, context = torch.randn(2, 7, 16), torch.randn(2, 9, 16) if cross else None
    full = attn(x, context, is_causal=not cross)
    parts, kv_cache = [], None
    for start, end in [(0, 3), (3, 4), (4, 7)]:  # a prompt, then new tokens
        out, kv_cache, weights = attn(x[:, start:end], context, is_causal=not cross, kv_cache=kv_cache,
                                      use_cache=True)
        parts.append(out)
        assert weights is None
    assert kv_cache[0].shape == (2, 4, 9 if cross else 7, 4)  # (B, H, S, hd)
    assert (torch.cat(parts, dim=1) - full).abs().max() <= TOL


def test_modules_keep_no_state_between_calls():
    attn = MultiHeadAttention(8, 2)
    before = set(vars(attn))
    attn(torch.randn(1, 3, 8), need_weights=True)
    assert set(vars(attn)) == before  # nothing stored on the module: the caller got the weights


def test_set_fused_attention_switches_every_module():
    model = nn.Sequential(MultiHeadAttention(8, 2), MultiHeadAttention(8, 2))
    set_fused_attention(model, False)
    assert not any(m.fused for m in model)


def test_shape_mismatch_is_a_clear_error():
    q, k, v = qkv()
    with pytest.raises(ValueError, match="shapes do not fit"):
        scaled_dot_product_attention(q, k[..., :4], v)
    with pytest.raises(TypeError, match="bool"):
        scaled_dot_product_attention(q, k, v, mask=torch.ones(5, 7))
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 3)
