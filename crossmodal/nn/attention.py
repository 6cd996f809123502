"""Attention, written out and fast.

`scaled_dot_product_attention` is softmax(Q Kᵀ / √d) V in four readable lines; it also returns
the weights, which the cross-attention maps need. `MultiHeadAttention` serves as self-attention
(context is None) and as cross-attention (text queries, image keys/values). Its `fused` flag
switches to `torch.nn.functional.scaled_dot_product_attention`, which gives the same numbers
faster but never returns the weights: a call that asks for them (`need_weights=True`) takes the
written-out path. It also keeps its own KV cache for generation (`kv_cache`, `use_cache`).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


def causal_mask(q_len, k_len, device=None):
    """(q_len, k_len) bool, True where attending is allowed.

    Aligned bottom-right: the last query sees every key. With a KV cache the queries are the
    newest q_len tokens of k_len, so query i sits at position k_len - q_len + i.
    """
    return torch.ones(q_len, k_len, dtype=torch.bool, device=device).tril(diagonal=k_len - q_len)


def scaled_dot_product_attention(q, k, v, mask=None, is_causal=False):
    """Written-out attention. Returns (output, weights).

    q: (..., Tq, d), k: (..., Tk, d), v: (..., Tk, dv).
    mask: bool, broadcastable to (..., Tq, Tk); True = may attend (PyTorch SDPA's convention;
    note nn.MultiheadAttention uses the opposite one).
    output: (..., Tq, dv); weights: (..., Tq, Tk), each row sums to 1.
    """
    if q.size(-1) != k.size(-1) or k.size(-2) != v.size(-2):
        raise ValueError(
            f"attention shapes do not fit: q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)};"
            " q and k need the same last size, k and v the same number of positions"
        )
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (..., Tq, Tk)
    if is_causal:
        scores = scores.masked_fill(~causal_mask(q.size(-2), k.size(-2), q.device), float("-inf"))
    if mask is not None:
        if mask.dtype != torch.bool:
            raise TypeError(f"mask must be a bool tensor (True = may attend), got {mask.dtype}")
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


class MultiHeadAttention(nn.Module):
    """Multi-head attention for self- and cross-attention.

    Queries come from x (B, T, dim); keys and values from `context` (B, S, kv_dim), or from x
    itself when context is None (self-attention).

    Two things a caller may ask for, as nn.MultiheadAttention's `need_weights` does:
    - `need_weights=True`: the attention weights of this call, (B, heads, T, S), from the
      written-out path (SDPA never returns them);
    - `use_cache=True`: the keys and values to pass back as `kv_cache` on the next call, so
      generation projects each token once. Self-attention appends the new tokens' keys and
      values to the cache; cross-attention computes the image's once and then reuses them.
    With either, forward returns (out, kv_cache, weights), each None unless asked for.
    """

    def __init__(self, dim, num_heads, kv_dim=None, bias=True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.q = nn.Linear(dim, dim, bias=bias)
        self.kv = nn.Linear(kv_dim or dim, 2 * dim, bias=bias)  # keys and values in one matmul
        self.proj = nn.Linear(dim, dim, bias=bias)
        self.fused = True  # F.scaled_dot_product_attention; same numbers, no weights

    def split_heads(self, x):
        B, T, C = x.shape
        return x.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, hd)

    def project_kv(self, context):
        """Keys and values, each (B, H, S, hd)."""
        k, v = self.kv(context).chunk(2, dim=-1)
        return self.split_heads(k), self.split_heads(v)

    def forward(self, x, context=None, mask=None, is_causal=False, kv_cache=None, use_cache=False,
                need_weights=False):
        q = self.split_heads(self.q(x))  # (B, H, T, hd)
        if context is None:  # self-attention: this call's tokens, after those of earlier calls
            k, v = self.project_kv(x)  # (B, H, T, hd)
            if kv_cache is not None:
                k, v = torch.cat([kv_cache[0], k], dim=2), torch.cat([kv_cache[1], v], dim=2)  # (B, H, S, hd)
        else:  # cross-attention: the context does not change between calls, so its keys are reused
            k, v = kv_cache if kv_cache is not None else self.project_kv(context)  # (B, H, S, hd)

        if is_causal and q.size(-2) == 1:
            is_causal = False  # one new query (generation with a cache) may see every key
        weights = None
        if self.fused and not need_weights:
            if is_causal and q.size(-2) != k.size(-2):  # SDPA's causal mask is top-left aligned
                mask, is_causal = causal_mask(q.size(-2), k.size(-2), q.device), False
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)
        else:
            out, weights = scaled_dot_product_attention(q, k, v, mask, is_causal)  # weights (B, H, T, S)
        B, H, T, hd = out.shape
        out = self.proj(out.transpose(1, 2).reshape(B, T, H * hd))  # (B, T, dim)
        if not (use_cache or need_weights):
            return out
        return out, ((k, v) if use_cache else None), weights


def set_fused_attention(model, fused):
    """One switch for every attention module in `model`: fast SDPA (True) or written out (False)."""
    for module in model.modules():
        if isinstance(module, MultiHeadAttention):
            module.fused = fused
    return model
