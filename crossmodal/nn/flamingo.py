"""Give a pretrained language model eyes: Flamingo's gated cross-attention inserted into a frozen GPT-2.

    image (B, C, H, W) → encoder → (B, N, vision dim) → projector → image tokens (B, N, n_embd)
                                                                          ↓ gated cross-attention
    token ids (B, T) → GPT-2: wte + wpe → [gated layer →] block 0 … [gated layer →] block L-1 → ln_f → logits

The language model (a transformers GPT2LMHeadModel, tasks/text.py) keeps every weight it learnt from text:
it is frozen. New layers are put between its blocks, each a Flamingo GATED XATTN-DENSE layer
(Alayrac et al. 2022, fig. 4):

    x = x + tanh(α_attn) · CrossAttention(LN(x), image tokens)
    x = x + tanh(α_ffn)  · FFN(LN(x))

with both gates α starting at 0. tanh(0) = 0, so at initialisation every new layer adds exactly zero and the
model *is* the frozen language model: same logits, same text loss. Training opens the gates as far as the
image helps. Only the new layers, the vision encoder and the projector learn (`trainable_parameters`).

Where the layers go: one before block k-1, 2k-1, … of GPT-2 (every k-th block, counted from 1), as
OpenFlamingo places its FlamingoLayer and as this library's decoder places cross-attention
(DecoderConfig.cross_attention_every). Flamingo put a gated layer before each chosen LM block (every block
for the 3B model, every 7th for the 80B). Llama 3.2 Vision (transformers' Mllama) does the same thing by
another bookkeeping: its 40 decoder layers *are* 32 text layers and 8 separate cross-attention layers, one
every fifth. Before the block rather than after: the block's self-attention then mixes what each token read
from the image into the tokens after it.

Simplified from Flamingo: a linear projector instead of the Perceiver Resampler (49 patches are few enough
to attend to all of them); one image per sequence, so every token sees every image token (Flamingo masks each
token to the latest image before it); generation is greedy.
"""

import copy
import inspect
from contextlib import contextmanager
from dataclasses import asdict

import torch
from torch import nn
from transformers import GPT2LMHeadModel

from ..images import to_image_batch
from .attention import MultiHeadAttention
from .config import VisionConfig, check_vision, gpt2_config_from_json
from .layers import Mlp, init_weights, pair
from .vit import VisionTransformer

# what GPT-2's forward calls its KV cache: `past_key_values`, renamed `cache` in recent transformers
CACHE_ARGUMENT = "cache" if "cache" in inspect.signature(GPT2LMHeadModel.forward).parameters else "past_key_values"


class GatedCrossAttentionLayer(nn.Module):
    """Flamingo's GATED XATTN-DENSE: tanh-gated cross-attention to the image, then a tanh-gated feed-forward.

    gated=False keeps the same two sub-layers with plain residuals (x + y): at initialisation they already
    change what the language model computes, which is what the gates are there to prevent.
    """

    def __init__(self, dim, num_heads, mlp_ratio=4.0, gated=True):
        super().__init__()
        self.norm_attn = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, num_heads)  # queries: the text; keys and values: the image tokens
        self.norm_ffn = nn.LayerNorm(dim)
        self.ffn = Mlp(dim, int(dim * mlp_ratio), approximate="tanh")
        self.apply(init_weights)
        # Flamingo's α_xattn and α_dense (Mllama: cross_attn_attn_gate, cross_attn_mlp_gate): closed at 0
        self.attn_gate = nn.Parameter(torch.zeros(1)) if gated else None
        self.ffn_gate = nn.Parameter(torch.zeros(1)) if gated else None

    def forward(self, x, image_tokens, need_weights=False):
        """x (B, T, dim), image_tokens (B, N, dim) -> (B, T, dim); need_weights: also (B, heads, T, N)."""
        if need_weights:
            y, _, weights = self.attn(self.norm_attn(x), image_tokens, need_weights=True)
        else:
            y, weights = self.attn(self.norm_attn(x), image_tokens), None
        x = x + self._gated(self.attn_gate, y)  # reading the image
        x = x + self._gated(self.ffn_gate, self.ffn(self.norm_ffn(x)))  # thinking about what was read
        return (x, weights) if need_weights else x

    @staticmethod
    def _gated(gate, y):
        return torch.tanh(gate) * y if gate is not None else y


class FlamingoLayer(nn.Module):
    """One of GPT-2's blocks with a gated cross-attention layer run before it (OpenFlamingo's name).

    It takes GPT-2's block call as it is (`*args, **kwargs`, whatever this transformers version passes) and
    returns what the block returns. GPT-2's blocks take no argument for an image, so the Flamingo model hands
    the image tokens to this layer for the length of one call (`Flamingo._looking_at`, like OpenFlamingo's
    `condition_vis_x`). With none, the block runs alone: `model.lm` called directly is the text-only LM.
    """

    def __init__(self, xattn, block):
        super().__init__()
        self.xattn, self.block = xattn, block
        self.image_tokens, self.need_weights = None, False  # set by Flamingo for one call
        self.attention = None  # the cross-attention weights (B, heads, T, N) of the last call that asked

    def forward(self, hidden_states, *args, **kwargs):
        if self.image_tokens is not None:
            out = self.xattn(hidden_states, self.image_tokens, need_weights=self.need_weights)
            hidden_states, self.attention = out if self.need_weights else (out, None)
        return self.block(hidden_states, *args, **kwargs)


class Flamingo(nn.Module):
    """A frozen GPT2LMHeadModel that sees: vision encoder → projector → gated layers before every k-th block.

    lm: a transformers GPT2LMHeadModel (tasks.text.build_text_lm). It is copied, so the caller's stays as it was.
    encoder: a VisionTransformer (default: VisionConfig() at image_size) or a vit.TimmEncoder, used as given
    (not copied: e.g. a trained captioner's `encoder`).
    cross_attention_every: k, 1 … n_layer; gated: Flamingo's tanh gates (False: plain residuals).
    image_size, in_chans: the pictures the model is given (a timm encoder resizes them to its own size).
    freeze_encoder: keep a pretrained encoder as it is, as Flamingo kept its NFNet (only projector and new
    layers learn). freeze_lm=False trains the language model too: a from-scratch captioner of the same shape,
    the control that never read a fact (tasks/eyes.py).
    """

    def __init__(self, lm, encoder=None, cross_attention_every=2, gated=True, image_size=28, in_chans=1,
                 freeze_encoder=False, freeze_lm=True):
        super().__init__()
        n_layer, dim = lm.config.n_layer, lm.config.n_embd
        k = cross_attention_every
        if not isinstance(k, int) or not 1 <= k <= n_layer:
            raise ValueError(f"cross_attention_every must be 1 … {n_layer} (this LM's number of blocks): "
                             f"k puts a gated layer before blocks k-1, 2k-1, …; got {k!r}")
        self.image_size, self.in_chans = pair(image_size), in_chans
        self.encoder = encoder if encoder is not None else VisionTransformer(
            VisionConfig(image_size=image_size, in_chans=in_chans))
        self.projector = nn.Linear(self.encoder.embed_dim, dim)  # to the LM's width
        self.lm = copy.deepcopy(lm)
        self.cross_attention_every, self.freeze_encoder, self.freeze_lm = k, freeze_encoder, freeze_lm
        for part, frozen in ((self.encoder, freeze_encoder), (self.lm, freeze_lm)):
            for p in part.parameters():
                p.requires_grad_(not frozen)  # frozen: what it learnt stays
        blocks = self.lm.transformer.h
        for i in range(k - 1, n_layer, k):
            blocks[i] = FlamingoLayer(GatedCrossAttentionLayer(dim, lm.config.n_head, gated=gated), blocks[i])
        self.train()  # a new module trains, but the frozen parts never drop out (see train)

    def train(self, mode=True):
        """The projector, new layers (and what is not frozen) train; a frozen LM or encoder stays in eval mode
        (no dropout), so the model's text loss stays the frozen LM's exactly while the gates are closed."""
        super().train(mode)
        if self.freeze_encoder:
            self.encoder.eval()
        if self.freeze_lm:
            self.lm.eval()
            for layer in self.flamingo_layers:
                layer.xattn.train(mode)  # the new layers inside it do as asked
        return self

    @property
    def flamingo_layers(self):
        """The LM blocks that carry a gated layer, in order."""
        return [b for b in self.lm.transformer.h if isinstance(b, FlamingoLayer)]

    def gates(self):
        """tanh of each layer's two gates, (layers, 2): how far its cross-attention and its feed-forward are
        open (0 closed, ±1 wide open); None for an ungated model."""
        xattns = [layer.xattn for layer in self.flamingo_layers]
        if xattns[0].attn_gate is None:
            return None
        return torch.tanh(torch.cat([torch.cat([x.attn_gate, x.ffn_gate]) for x in xattns]).view(-1, 2).detach())

    def trainable_parameters(self):
        """What learns: the projector, the gated layers and the vision encoder unless frozen. Never the weights
        of a frozen LM."""
        return [p for p in self.parameters() if p.requires_grad]

    @property
    def device(self):
        return self.projector.weight.device

    def encode_images(self, images):
        """(B, C, H, W) in [0, 1] -> image tokens (B, N, n_embd); the encoder normalises the pixels itself."""
        x = to_image_batch(images, self.image_size, self.in_chans).to(self.device)
        return self.projector(self.encoder.patch_tokens(x))  # (B, N, n_embd): one per patch

    @contextmanager
    def _looking_at(self, image_tokens, need_weights=False):
        """For the length of one LM call, every FlamingoLayer reads these image tokens."""
        for layer in self.flamingo_layers:
            layer.image_tokens, layer.need_weights = image_tokens, need_weights
        try:
            yield
        finally:  # an error half way must not leave an image behind in the LM
            for layer in self.flamingo_layers:
                layer.image_tokens, layer.need_weights = None, False

    def forward(self, images, input_ids, labels=None, need_weights=False):
        """Logits (B, T, vocab); with labels (B, T), also the next-token loss (GPT-2's: labels are shifted
        inside, -100 is ignored). need_weights: also each gated layer's cross-attention, (B, heads, T, N)."""
        input_ids = self._check_ids(input_ids)
        image_tokens = self.encode_images(images)
        if image_tokens.size(0) != input_ids.size(0):
            raise ValueError(f"got {image_tokens.size(0)} images for {input_ids.size(0)} rows of token ids: "
                             "give one image per row")
        out = self._lm(image_tokens, input_ids, labels, need_weights)
        logits, loss = out.logits, out.loss
        maps = [layer.attention for layer in self.flamingo_layers] if need_weights else None
        result = (logits,) + ((loss,) if labels is not None else ()) + ((maps,) if need_weights else ())
        return result[0] if len(result) == 1 else result

    def _lm(self, image_tokens, input_ids, labels=None, need_weights=False):
        with self._looking_at(image_tokens, need_weights):
            return self.lm(input_ids=input_ids, labels=labels, use_cache=False)

    def _check_ids(self, input_ids):
        input_ids = torch.as_tensor(input_ids, device=self.device)
        if input_ids.dim() != 2 or input_ids.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"input_ids must be integer token ids shaped (B, T), got {input_ids.dtype} "
                             f"{tuple(input_ids.shape)}")
        vocab, n_pos = self.lm.config.vocab_size, self.lm.config.n_positions
        if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= vocab):
            raise ValueError(f"token ids must be 0 … {vocab - 1} (the LM's vocabulary), got {input_ids.min()} … "
                             f"{input_ids.max()}")
        if input_ids.size(1) > n_pos:
            raise ValueError(f"{input_ids.size(1)} tokens exceed the LM's {n_pos} positions")
        return input_ids

    @torch.inference_mode()
    def generate(self, images, prompt_ids, max_new_tokens=32, eos_id=None, use_cache=True):
        """Greedy continuation: (B, T) prompt ids -> (B, new) ids, one image per row.

        The image is encoded once. With use_cache (GPT-2's own KV cache), each step runs
        the newest token only: exact, because the LM's self-attention is causal and the gated layers work on
        each position alone (their keys and values are the image's, which do not change). use_cache=False
        reruns the whole sequence each step. A row that wrote eos_id keeps writing it; the loop ends when all
        have.
        """
        ids = self._check_ids(prompt_ids)
        image_tokens = self.encode_images(images)
        if image_tokens.size(0) != ids.size(0):
            raise ValueError(f"got {image_tokens.size(0)} images for {ids.size(0)} prompts: give one image per row")
        start, done = ids.size(1), torch.zeros(ids.size(0), dtype=torch.bool, device=ids.device)
        past = None
        for _ in range(min(max_new_tokens, self.lm.config.n_positions - start)):
            with self._looking_at(image_tokens):
                if use_cache:  # the prompt once, then one token a step; GPT-2 counts positions from the cache
                    new = ids if past is None else ids[:, -1:]
                    out = self.lm(input_ids=new, use_cache=True, **{CACHE_ARGUMENT: past})
                    past = out[CACHE_ARGUMENT]
                else:
                    out = self.lm(input_ids=ids, use_cache=False)
            next_id = out.logits[:, -1].argmax(dim=-1)  # (B,)
            if eos_id is not None:
                next_id = torch.where(done, eos_id, next_id)
                done |= next_id == eos_id
            ids = torch.cat([ids, next_id[:, None]], dim=1)  # (B, T + 1)
            if done.all():
                break
        return ids[:, start:]

    # ---- checkpoints (serialization.py): the whole model, the frozen LM included, so a folder is self-contained

    def config_json(self):
        if not isinstance(self.encoder, VisionTransformer):
            raise ValueError("a Flamingo is saved with crossmodal's VisionTransformer encoder; a timm or OpenCLIP "
                             "encoder is rebuilt from its own name: save the state_dict yourself")
        return {"architectures": [type(self).__name__], "lm": self.lm.config.to_dict(),
                "vision": asdict(self.encoder.config), "cross_attention_every": self.cross_attention_every,
                "gated": self.gates() is not None, "freeze_encoder": self.freeze_encoder, "freeze_lm": self.freeze_lm,
                "image_size": list(self.image_size), "in_chans": self.in_chans}

    @staticmethod
    def config_from_json(values):
        values = dict(values)
        if not isinstance(values.get("lm"), dict) or not isinstance(values.get("vision"), dict):
            raise ValueError("a Flamingo's config needs an 'lm' and a 'vision' object")
        lm = gpt2_config_from_json(values.pop("lm"))
        vision = VisionConfig(**values.pop("vision"))
        check_vision(vision)  # the encoder's sizes and its pixels' normalisation, as a captioner's are checked
        kinds = {"cross_attention_every": int, "gated": bool, "freeze_encoder": bool, "freeze_lm": bool,
                 "image_size": list, "in_chans": int}
        if set(values) - set(kinds):
            raise ValueError(f"unknown fields {sorted(set(values) - set(kinds))}; expected some of {sorted(kinds)}")
        wrong = [k for k, kind in kinds.items() if k in values and type(values[k]) is not kind]
        if wrong:
            raise ValueError(f"{wrong[0]} must be of type {kinds[wrong[0]].__name__}, got {values[wrong[0]]!r}")
        if pair(tuple(values.get("image_size", [28, 28]))) != pair(vision.image_size) or \
                values.get("in_chans", 1) != vision.in_chans:
            raise ValueError(f"image_size and in_chans ({values.get('image_size')}, {values.get('in_chans')}) must be "
                             f"the encoder's (vision.image_size {vision.image_size!r}, vision.in_chans "
                             f"{vision.in_chans})")
        return {"lm": lm, "vision": vision, **values}

    @classmethod
    def from_config(cls, config, tokenizer=None):
        if tokenizer is not None and len(tokenizer) != config["lm"].vocab_size:
            raise ValueError(f"the tokenizer has {len(tokenizer)} tokens but the LM {config['lm'].vocab_size}: the "
                             "files come from different checkpoints")
        lm = GPT2LMHeadModel(config["lm"])
        lm.loss_type = "ForCausalLM"  # transformers cannot guess it from the class name, and warns otherwise
        options = {k: v for k, v in config.items() if k not in ("lm", "vision")}
        return cls(lm, VisionTransformer(config["vision"]), **options)
