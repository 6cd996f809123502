"""GPT-style character decoder whose layers can look at an image.

Each block: causal self-attention → cross-attention to the image patches → MLP, all pre-norm
(GPT-2's layout when it is built with `add_cross_attention=True`). The cross-attention can be
gated, after Flamingo and Llama 3.2 Vision: x + tanh(gate) · xattn(x), with the gate starting
at 0, so a fresh model is exactly the text-only decoder and learns to open its eyes. (Flamingo
also adds a gated feed-forward layer after each cross-attention; we gate the cross-attention only.)

A decoder built with `image_tokens=N` reads the image the other way (LLaVA, Fuyu; see fusion.py):
no cross-attention, the N image embeddings are the first N tokens of its sequence, and the text
after them sees them through the causal self-attention. Its `forward` takes the same arguments
and returns logits and maps for the text positions only, so generation code serves both designs.

A decoder built with `image_token_id` reads it as LLaVA does in transformers (splice.py): the image's N
embeddings replace the tokens that hold that id, wherever the chat template put them, at ordinary positions;
its logits and maps cover every position, and a sequence without the id is plain text.
"""

import torch
from torch import nn

from .attention import MultiHeadAttention
from .layers import Mlp, init_weights
from .splice import image_maps, splice_image


class KVCache:
    """What generation remembers between steps, per layer.

    self_kv: keys/values of every token so far, (B, H, T, hd), growing with each step.
    cross_kv: keys/values of the image patches, (B, H, N, hd), computed once per image.
    Each attention module reads its entry and hands back the new one; only DecoderBlock knows
    which entry is whose.
    """

    def __init__(self, depth):
        self.self_kv = [None] * depth
        self.cross_kv = [None] * depth
        self.image_keys = None  # a splice decoder's (B, S): True where the tokens so far held the image (splice.py)

    @property
    def length(self):
        kv = self.self_kv[0]
        return 0 if kv is None else kv[0].size(2)

    def reorder(self, rows):
        """Keep the batch rows `rows` (B',), in that order: in beam search, each beam continues the one it extends."""
        pick = lambda kv: None if kv is None else (kv[0][rows], kv[1][rows])  # noqa: E731
        self.self_kv, self.cross_kv = [pick(kv) for kv in self.self_kv], [pick(kv) for kv in self.cross_kv]
        self.image_keys = None if self.image_keys is None else self.image_keys[rows]


class DecoderBlock(nn.Module):
    def __init__(self, cfg, cross_attention):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.dim)
        self.attn = MultiHeadAttention(cfg.dim, cfg.num_heads)
        self.cross_attn = None
        if cross_attention:
            self.ln_cross = nn.LayerNorm(cfg.dim)
            self.cross_attn = MultiHeadAttention(cfg.dim, cfg.num_heads)
            self.gate = nn.Parameter(torch.zeros(1)) if cfg.gated else None  # tanh(0) = 0: closed
        self.ln_2 = nn.LayerNorm(cfg.dim)
        self.mlp = Mlp(cfg.dim, int(cfg.dim * cfg.mlp_ratio), approximate="tanh")  # GPT-2's GELU

    def forward(self, x, memory=None, cache=None, layer=0, need_weights=False, weights_of="cross"):
        """x (B, T, dim) -> (B, T, dim); with need_weights, also the cross-attention weights (B, H, T, N)
        (None in a block without cross-attention, or with no image), or with weights_of="self" the
        self-attention weights (B, H, T, S) over all S tokens so far (a prefix decoder's look at the image).

        memory (B, N, dim): the image patches; None runs the block as a text-only one.
        cache: a KVCache, read and updated at entry `layer`; x then holds only the new tokens.
        """
        past_self, past_cross = (cache.self_kv[layer], cache.cross_kv[layer]) if cache is not None else (None, None)
        want_self = need_weights and weights_of == "self"
        y, self_kv, self_weights = self.attn(self.ln_1(x), is_causal=True, kv_cache=past_self, use_cache=True,
                                             need_weights=want_self)
        x = x + y  # causal self-attention

        cross_kv = weights = None
        if self.cross_attn is not None and memory is not None:
            y, cross_kv, weights = self.cross_attn(self.ln_cross(x), memory, kv_cache=past_cross, use_cache=True,
                                                   need_weights=need_weights)
            x = x + (torch.tanh(self.gate) * y if self.gate is not None else y)  # reading the image
        elif past_cross is not None:
            raise ValueError("this cache holds an image's keys and values, but memory is None: "
                             "pass the same memory on every step of a cached generation")

        if cache is not None:
            cache.self_kv[layer], cache.cross_kv[layer] = self_kv, cross_kv
        x = x + self.mlp(self.ln_2(x))
        return (x, self_weights if want_self else weights) if need_weights else x


class Decoder(nn.Module):
    def __init__(self, cfg, image_tokens=0, image_token_id=None):
        """image_tokens: 0 to read the image by cross-attention; N > 0 to read its N embeddings as a prefix.
        image_token_id: read the image's embeddings in place of the tokens that hold this id (splice.py)."""
        super().__init__()
        crossing = any(cfg.has_cross_attention(i) for i in range(cfg.depth))
        if image_tokens and crossing:
            raise ValueError("a decoder that reads the image as a prefix has no cross-attention: "
                             "build it with cross_attention_every=0")
        if image_token_id is not None and (image_tokens or crossing or not 0 <= image_token_id < cfg.vocab_size):
            raise ValueError(f"a decoder that reads the image at its <image> tokens has neither a prefix nor "
                             f"cross-attention, and the token is one of its {cfg.vocab_size}: got image_tokens="
                             f"{image_tokens}, cross_attention_every={cfg.cross_attention_every}, id {image_token_id}")
        self.cfg, self.image_tokens, self.image_token_id = cfg, image_tokens, image_token_id
        self.wte = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.wpe = nn.Embedding(image_tokens + cfg.block_size, cfg.dim)  # learned positions: image's, then text's
        self.blocks = nn.ModuleList(DecoderBlock(cfg, cfg.has_cross_attention(i)) for i in range(cfg.depth))
        self.ln_f = nn.LayerNorm(cfg.dim)
        self.lm_head = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        self.apply(init_weights)
        for module in self.modules():
            if isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
        self.lm_head.weight = self.wte.weight  # tied, as in GPT-2

    @property
    def cross_attention_layers(self):
        """The attention modules that look at the image, in layer order."""
        return [b.cross_attn for b in self.blocks if b.cross_attn is not None]

    @property
    def sees_image(self):
        """False for a blind decoder: it has no way to read an image."""
        return bool(self.image_tokens or self.splices or self.cross_attention_layers)

    @property
    def splices(self):
        """True for a decoder that reads the image at its <image> tokens (splice.py)."""
        return self.image_token_id is not None

    @property
    def image_layers(self):
        """How many maps over the image each token has: one per cross-attention layer, or per layer for a prefix
        or a splice (their self-attention)."""
        return self.cfg.depth if self.image_tokens or self.splices else len(self.cross_attention_layers)

    def forward(self, tokens, memory=None, cache=None, need_weights=False):
        """tokens (B, T) -> logits (B, T, vocab). memory (B, N, dim): image patch embeddings.

        With a cache, tokens are the new ones only and positions continue from cache.length.
        need_weights: also return how each token looked at the image, a list of (B, H, T, N), one per
        cross-attention layer (empty for a blind decoder or with no image); for a prefix decoder one
        per layer: its self-attention over the N image tokens, renormalised to sum to 1 like a
        cross-attention map (the text also attends to earlier text, which these maps leave out).
        A splice decoder (image_token_id) writes memory's rows in at the tokens holding that id, in order, and
        returns logits and maps for every position (splice.py); memory may be None for text alone.
        """
        B, T = tokens.shape
        start = cache.length if cache is not None else 0  # tokens already read, a prefix's image tokens included
        x, prefix, image_keys = self.wte(tokens), 0, None  # (B, T, dim)
        if self.image_tokens:
            if start == 0:  # the image first, then the text: prefilled once, then cached like any token
                x, prefix = torch.cat([self._check_prefix(memory), x], dim=1), self.image_tokens  # (B, N + T, dim)
            memory = None  # no cross-attention: the image is in the sequence
        elif self.splices:
            x, image_keys, image_count = self._splice(tokens, x, memory, cache)
            memory = None  # no cross-attention: the image is in the sequence, at its placeholders
        if start + x.size(1) - self.image_tokens > self.cfg.block_size:
            raise ValueError(f"sequence of {start + x.size(1) - self.image_tokens} text tokens exceeds block_size "
                             f"{self.cfg.block_size}")
        x = x + self.wpe.weight[start : start + x.size(1)]  # positions start, start + 1, ...
        maps, weights_of = [], "self" if self.image_tokens or self.splices else "cross"
        for layer, block in enumerate(self.blocks):
            if need_weights:
                x, weights = block(x, memory, cache, layer, need_weights=True, weights_of=weights_of)
                if weights is not None and self.image_tokens:  # (B, H, prefix + T, S): text rows, image keys
                    weights = weights[:, :, prefix:, : self.image_tokens]
                    weights = weights / weights.sum(dim=-1, keepdim=True)
                elif weights is not None and self.splices:  # (B, H, T, S): every row, the image's keys
                    weights = image_maps(weights, image_keys, image_count)
                maps += [weights] if weights is not None else []
            else:
                x = block(x, memory, cache, layer)
        logits = self.lm_head(self.ln_f(x[:, prefix:]))  # (B, T, vocab): the text's predictions only
        return (logits, maps) if need_weights else logits

    def _splice(self, tokens, x, memory, cache):
        """x with the image written in at its placeholders (splice.py); also image_keys (B, S), True where the
        tokens so far held the image (kept in the cache for the next call), and the image's token count N."""
        if memory is not None and (memory.dim() != 3 or memory.size(0) != len(tokens) or memory.size(2) != x.size(2)):
            raise ValueError(f"memory must be the image's embeddings, ({len(tokens)}, N, {x.size(2)}), got "
                             f"{tuple(memory.shape)}")
        is_image = tokens == self.image_token_id  # (B, T)
        earlier = cache.image_keys if cache is not None and cache.image_keys is not None else is_image[:, :0]
        if earlier.size(1) != (cache.length if cache is not None else 0):
            raise ValueError("this cache was filled by a decoder that does not splice: start a new KVCache")
        x = splice_image(x, is_image, memory, earlier.sum(dim=1))
        image_keys = torch.cat([earlier, is_image], dim=1)  # (B, S)
        if cache is not None:
            cache.image_keys = image_keys
        if memory is not None:
            return x, image_keys, memory.size(1)
        return x, image_keys, int(image_keys.sum(dim=1).max()) if image_keys.numel() else 0  # text alone: 0

    def _check_prefix(self, memory):
        if memory is None or memory.dim() != 3 or memory.size(1) != self.image_tokens:
            got = None if memory is None else tuple(memory.shape)
            raise ValueError(f"this decoder reads the image as its first {self.image_tokens} tokens: pass memory "
                             f"of shape (B, {self.image_tokens}, {self.cfg.dim}), got {got}")
        return memory


@torch.no_grad()
def load_gpt2_weights(decoder, gpt2):
    """Copy a transformers GPT2LMHeadModel (add_cross_attention=True) into `decoder`.

    GPT-2 stores Linear layers as Conv1D with the weight transposed, and packs q, k, v into
    c_attn; cross-attention keeps q apart (q_attn) and packs k, v (c_attn), as we do.
    """
    src = gpt2.transformer.state_dict()
    dim = decoder.cfg.dim
    out = {"wte.weight": src["wte.weight"], "wpe.weight": src["wpe.weight"], "lm_head.weight": src["wte.weight"],
           "ln_f.weight": src["ln_f.weight"], "ln_f.bias": src["ln_f.bias"]}
    for i, block in enumerate(decoder.blocks):
        theirs = {k.removeprefix(f"h.{i}."): v for k, v in src.items() if k.startswith(f"h.{i}.")}
        ours = f"blocks.{i}."
        norms = {"ln_1": "ln_1", "ln_2": "ln_2"}
        linears = {"attn.proj": "attn.c_proj", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}
        if block.cross_attn is not None:
            if block.gate is not None:
                raise ValueError("GPT-2's cross-attention has no gate: build the decoder with gated=False")
            norms["ln_cross"] = "ln_cross_attn"
            linears |= {"cross_attn.q": "crossattention.q_attn", "cross_attn.kv": "crossattention.c_attn",
                        "cross_attn.proj": "crossattention.c_proj"}
        elif "crossattention.q_attn.weight" in theirs:
            raise ValueError(f"GPT-2 has cross-attention in layer {i} but this decoder does not: "
                             "build it with cross_attention_every=1")
        for a, b in norms.items():
            out[ours + a + ".weight"], out[ours + a + ".bias"] = theirs[b + ".weight"], theirs[b + ".bias"]
        for a, b in linears.items():
            out[ours + a + ".weight"], out[ours + a + ".bias"] = theirs[b + ".weight"].t(), theirs[b + ".bias"]
        w, bias = theirs["attn.c_attn.weight"].t(), theirs["attn.c_attn.bias"]  # (3·dim, dim): q, k, v stacked
        out[ours + "attn.q.weight"], out[ours + "attn.kv.weight"] = w[:dim], w[dim:]
        out[ours + "attn.q.bias"], out[ours + "attn.kv.bias"] = bias[:dim], bias[dim:]
    decoder.load_state_dict(out, strict=True)  # raises on any missing, extra or misshapen tensor
    return decoder


def gpt2_config_for(cfg, image_tokens=0):
    """The transformers GPT2Config with the same shape as our DecoderConfig (for proofs and benchmarks).

    image_tokens: a prefix decoder's, whose positions cover the image tokens before the text.
    """
    from transformers import GPT2Config

    return GPT2Config(vocab_size=cfg.vocab_size, n_positions=image_tokens + cfg.block_size, n_embd=cfg.dim,
                      n_layer=cfg.depth, n_head=cfg.num_heads, n_inner=int(cfg.dim * cfg.mlp_ratio),
                      add_cross_attention=cfg.cross_attention_every > 0,
                      resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None, eos_token_id=None)
