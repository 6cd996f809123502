"""The captioner: a ViT sees the digit, a projector maps patches to the decoder's width, and a
GPT-style decoder writes the caption while cross-attending to the patches.

    image (B, 1, 28, 28) → encoder → (B, 49, vision.dim) → projector → (B, 49, decoder.dim)
                                                                            ↓ cross-attention
    "<bos>This is the number" → decoder → next-character logits (B, T, vocab)
"""

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import load_captioner, replacing, write_model
from .config import CaptionerConfig
from .data import MNIST_MEAN, MNIST_STD, BlankImageError, to_image_batch
from .decoder import Decoder, KVCache
from .tokenizer import build_char_tokenizer, check_text
from .vit import TimmEncoder, VisionTransformer


@dataclass
class Caption:
    """One image's caption and where the model looked while writing it.

    attention: (len(text), cross-attention layers, heads, grid, grid) — for each character, the
    cross-attention weights of the step that produced it; each map sums to 1 over the patches.
    """

    text: str
    attention: torch.Tensor
    image: torch.Tensor  # (1, 28, 28), what the model saw
    probs: torch.Tensor | None = None  # (len(text),) from score(): the probability given to each character


class Captioner(nn.Module):
    def __init__(self, config=None, tokenizer=None):
        super().__init__()
        self.config = config = config or CaptionerConfig()
        v = config.vision
        self.encoder = TimmEncoder(v.timm_model) if v.timm_model else VisionTransformer(v)
        self.projector = nn.Linear(self.encoder.embed_dim, config.decoder.dim)
        self.decoder = Decoder(config.decoder)
        self.tokenizer = tokenizer

    @classmethod
    def for_mnist(cls, config=None):
        """A fresh captioner with the character tokenizer of the ten MNIST captions."""
        from .data import ALL_CAPTIONS

        tokenizer = build_char_tokenizer(ALL_CAPTIONS)
        config = copy.deepcopy(config) if config is not None else CaptionerConfig()  # the caller's stays as it was
        config.decoder.vocab_size = len(tokenizer)
        config.bos_id, config.eos_id = tokenizer.bos_token_id, tokenizer.eos_token_id
        config.pad_id = tokenizer.pad_token_id
        return cls(config, tokenizer)

    def encode_images(self, images):
        """(B, 1, 28, 28) in [0, 1] -> patch embeddings (B, N, decoder.dim)."""
        x = (images - MNIST_MEAN) / MNIST_STD
        patches = self.encoder.forward_features(x)[:, self.encoder.num_prefix_tokens :]  # (B, N, vision.dim)
        return self.projector(patches)

    def forward(self, images, tokens, targets=None):
        """Next-token logits (B, T, vocab); with targets (B, T), also the mean loss over non-<pad> targets."""
        logits = self.decoder(tokens, self.encode_images(images))
        if targets is None:
            return logits
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=self.config.pad_id)
        return logits, loss

    @torch.inference_mode()
    def generate(self, images, max_new_tokens=None, temperature=0.0, top_k=None, generator=None,
                 use_cache=True, return_attention=False):
        """Write captions for a batch: (B, T) token ids after <bos>, each row <eos>-terminated then <pad>.

        temperature 0 is greedy; above 0 samples (from the top_k most likely, if given).
        return_attention: also return cross-attention weights (B, T, layers, heads, N).
        """
        cfg = self.config
        images = to_image_batch(images)
        B = images.size(0)
        memory = self.encode_images(images)
        max_new_tokens = max_new_tokens or cfg.decoder.block_size - 1
        tokens = torch.full((B, 1), cfg.bos_id, dtype=torch.long, device=images.device)
        cache = KVCache(cfg.decoder.depth) if use_cache else None
        layers = self.decoder.cross_attention_layers
        for m in layers:
            m.keep_weights = return_attention
        finished = torch.zeros(B, dtype=torch.bool, device=images.device)
        out, maps = [], []
        try:
            for _ in range(max_new_tokens):
                logits = self.decoder(tokens, memory, cache)[:, -1]  # (B, vocab); with a cache, tokens = the newest
                next_token = _pick(logits, temperature, top_k, generator)
                next_token = next_token.masked_fill(finished, cfg.pad_id)
                out.append(next_token)
                if return_attention:  # (B, L, H, N); L = 0 for a blind decoder
                    maps.append(torch.stack([m.weights[:, :, -1] for m in layers], dim=1) if layers
                                else memory.new_zeros(B, 0, cfg.decoder.num_heads, memory.size(1)))
                finished |= next_token == cfg.eos_id
                if finished.all():
                    break
                tokens = next_token[:, None] if use_cache else torch.cat([tokens, next_token[:, None]], dim=1)
        finally:
            for m in layers:
                m.keep_weights, m.weights = False, None
        generated = torch.stack(out, dim=1)
        return (generated, torch.stack(maps, dim=1)) if return_attention else generated

    def decode(self, generated):
        """Token ids (B, T) -> list of strings, one character per token, stopping at <eos>.

        A special token before <eos> (only an untrained model writes one) shows as "�", so
        the text always has one character per generated token and per attention map.
        """
        specials = set(self.tokenizer.all_special_ids)
        return ["".join("�" if i in specials else self.tokenizer.convert_ids_to_tokens(i)
                        for i in _until_eos(row, self.config.eos_id)) for row in generated.tolist()]

    def caption(self, images, temperature=0.0, top_k=None, generator=None):
        """Caption MNIST-like images ((28, 28), (1, 28, 28) or a batch (B, 1, 28, 28), in [0, 1] or uint8).

        Returns a Caption (or a list, for a batch) with the text and the cross-attention maps.
        Raises BlankImageError for an image with no ink, rather than captioning noise.
        """
        x = to_image_batch(images).to(next(self.parameters()).device)
        single = not (hasattr(images, "dim") and images.dim() == 4 or getattr(images, "ndim", 0) == 4)
        contrast = (x.amax(dim=(1, 2, 3)) - x.amin(dim=(1, 2, 3))).tolist()
        blank = [i for i, c in enumerate(contrast) if c < 0.1]
        if blank:
            raise BlankImageError(f"image {blank[0]} is blank (no ink to caption): draw or pick a digit first")
        generated, maps = self.generate(x, temperature=temperature, top_k=top_k, generator=generator,
                                        return_attention=True)
        g = self.encoder.grid_size
        results = []
        for text, attn, image in zip(self.decode(generated), maps, x):
            n = len(text)
            L, H, N = attn.shape[1:]
            results.append(Caption(text, attn[:n].reshape(n, L, H, g, N // g).cpu(), image.cpu()))
        return results[0] if single else results

    @torch.inference_mode()
    def score(self, image, text):
        """Read a given caption against one image: how likely each character is, and where the
        model looks while reading it (teacher forcing). Returns a Caption with `probs` filled.
        """
        check_text(self.tokenizer, text)
        x = to_image_batch(image).to(next(self.parameters()).device)
        if x.size(0) != 1:
            raise ValueError(f"score() reads one image at a time, got a batch of {x.size(0)}")
        ids = torch.tensor([self.tokenizer(text)["input_ids"]], device=x.device)  # (1, T + 2): <bos> text <eos>
        if ids.size(1) - 1 > self.config.decoder.block_size:
            raise ValueError(f"text of {len(text)} characters is longer than the model can read "
                             f"({self.config.decoder.block_size - 1})")
        layers = self.decoder.cross_attention_layers
        for m in layers:
            m.keep_weights = True
        try:
            logits = self(x, ids[:, :-1])[0, : len(text)]  # (T, vocab): predictions of each character
            maps = (torch.stack([m.weights[0, :, : len(text)] for m in layers]) if layers  # (L, H, T, N)
                    else logits.new_zeros(0, self.config.decoder.num_heads, len(text), self.encoder.grid_size**2))
        finally:
            for m in layers:
                m.keep_weights, m.weights = False, None
        probs = logits.softmax(dim=-1).gather(1, ids[0, 1 : len(text) + 1, None]).squeeze(1)
        g = self.encoder.grid_size
        attention = maps.permute(2, 0, 1, 3).reshape(len(text), len(layers), maps.size(1), g, maps.size(-1) // g)
        return Caption(text, attention.cpu(), x[0].cpu(), probs.cpu())

    def save_pretrained(self, folder):
        """Write model.safetensors, config.json and the tokenizer files into `folder`, replacing them as a unit."""
        with replacing(folder) as new:
            write_model(self, new)

    @classmethod
    def from_pretrained(cls, folder, device="cpu"):
        """Rebuild a captioner from save_pretrained's folder, with clear errors for broken ones (see checkpoint.py)."""
        return load_captioner(cls, folder, device)


def _pick(logits, temperature, top_k, generator):
    if temperature <= 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_k:
        kth = logits.topk(min(top_k, logits.size(-1)), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(1)


def _until_eos(ids, eos_id):
    return ids[: ids.index(eos_id)] if eos_id in ids else ids
