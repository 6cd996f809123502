"""The captioner: a ViT sees the digit, a projector maps patches to the decoder's width, and a
GPT-style decoder writes the caption while cross-attending to the patches.

    image (B, 1, 28, 28) → encoder → (B, 49, vision.dim) → projector → (B, 49, decoder.dim)
                                                                            ↓ cross-attention
    "<bos>This is the number" → decoder → next-character logits (B, T, vocab)
"""

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import load_captioner, replacing, write_model
from .config import CaptionerConfig, check_fusion
from .decoder import Decoder, KVCache
from .decoding import beam_search, check_beam_settings
from .fusion import RawPatches
from .inputs import check_mnist_like, check_not_blank, to_image_batch
from .layers import pair
from .tokenizer import build_char_tokenizer, check_text
from .vit import TimmEncoder, VisionTransformer


@dataclass
class Caption:
    """One image's caption and where the model looked while writing it.

    attention: (len(text), cross-attention layers, heads, grid_h, grid_w) — for each character,
    the cross-attention weights of the step that produced it; each map sums to 1 over the patches.
    """

    text: str
    attention: torch.Tensor
    image: torch.Tensor  # (C, H, W), what the model saw: (1, 28, 28) for MNIST
    probs: torch.Tensor | None = None  # (len(text),) from score(): the probability given to each character


class Captioner(nn.Module):
    def __init__(self, config=None, tokenizer=None):
        super().__init__()
        self.config = config = config or CaptionerConfig()
        v = config.vision
        check_fusion(config)  # before building anything: a wrong setting gets its own message
        if config.fusion == "raw":  # Fuyu: no encoder; the patches' own linear map is the projection
            self.encoder, self.projector = RawPatches(v, config.decoder.dim), nn.Identity()
        else:
            self.encoder = TimmEncoder(v.timm_model) if v.timm_model else VisionTransformer(v)
            self.projector = nn.Linear(self.encoder.embed_dim, config.decoder.dim)
        gh, gw = self.encoder.grid_size
        self.decoder = Decoder(config.decoder, image_tokens=gh * gw if config.fusion != "cross" else 0)
        self.tokenizer = tokenizer

    @classmethod
    def for_mnist(cls, config=None):
        """A fresh captioner with the character tokenizer of the ten MNIST captions."""
        from .data import ALL_CAPTIONS

        return cls._with_tokenizer(build_char_tokenizer(ALL_CAPTIONS), config or CaptionerConfig())

    @classmethod
    def for_numbers(cls, config=None, max_digits=4):
        """A fresh reader of handwritten numbers: it writes the digit string ("2026"), one token per digit.

        config: default numbers.reader_config(max_digits), images of 28 × 28·max_digits.
        """
        from .numbers import reader_config

        return cls._with_tokenizer(build_char_tokenizer("0123456789"), config or reader_config(max_digits))

    @classmethod
    def _with_tokenizer(cls, tokenizer, config):
        config = copy.deepcopy(config)  # the caller's stays as it was
        config.decoder.vocab_size = len(tokenizer)
        config.bos_id, config.eos_id = tokenizer.bos_token_id, tokenizer.eos_token_id
        config.pad_id = tokenizer.pad_token_id
        return cls(config, tokenizer)

    @property
    def device(self):
        return next(self.parameters()).device

    def image_batch(self, images):
        """Check and convert the images a caller hands over (see inputs.to_image_batch), on this model's device.

        The input size is the config's image size (a timm encoder then resizes to its own).
        """
        v = self.config.vision
        return to_image_batch(images, pair(v.image_size), v.in_chans).to(self.device)

    def encode_images(self, images, need_weights=False):
        """(B, C, H, W) in [0, 1] -> patch embeddings (B, N, decoder.dim).

        The pixels are normalised with the encoder's own mean and std. need_weights: also return
        the encoder's self-attention weights, one (B, H, T, T) per block.
        """
        mean = torch.tensor(self.encoder.mean, device=images.device).view(-1, 1, 1)  # (C, 1, 1)
        std = torch.tensor(self.encoder.std, device=images.device).view(-1, 1, 1)
        x = (images - mean) / std  # (B, C, H, W); a 1-channel image meets a 3-channel mean as 3 channels
        features = self.encoder.forward_features(x, need_weights)
        features, maps = features if need_weights else (features, None)
        memory = self.projector(features[:, self.encoder.num_prefix_tokens :])  # (B, N, decoder.dim): patches only
        return (memory, maps) if need_weights else memory

    def forward(self, images, tokens, targets=None):
        """Next-token logits (B, T, vocab); with targets (B, T), also the mean loss over non-<pad> targets."""
        # A blind decoder (no cross-attention layer) cannot use the patches: skip the encoder's work
        memory = self.encode_images(images) if self.decoder.sees_image else None
        logits = self.decoder(tokens, memory)
        if targets is None:
            return logits
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=self.config.pad_id)
        return logits, loss

    @torch.inference_mode()
    def generate(self, images, max_new_tokens=None, temperature=0.0, top_k=None, generator=None,
                 use_cache=True, return_attention=False, prompt=None, num_beams=1, return_scores=False):
        """Write captions for a batch: (B, T) new token ids, each row <eos>-terminated then <pad>.

        Every row starts with <bos>, then its prompt if one is given: a list of token ids for
        every row, or one list per row (lengths may differ), which the model reads before writing.
        temperature 0 is greedy; above 0 samples (from the top_k most likely, if given).
        max_new_tokens: at most this many new tokens per row (default: as many as fit in block_size).
        return_attention: also return cross-attention weights (B, T, layers, heads, N).
        num_beams > 1: beam search (decoding.py), the likeliest sequence among num_beams kept at each step
        instead of the likeliest token at each step; prompts must then be of one length.
        return_scores: also return each row's log-probability (B,), for greedy or beam search.
        """
        x = self.image_batch(images)
        check_beam_settings(num_beams, temperature, top_k, return_attention)
        if num_beams == 1 and not return_scores:
            return self._generate(x, max_new_tokens, temperature, top_k, generator, use_cache, return_attention,
                                  prompt)
        if return_scores and (temperature != 0 or return_attention):
            raise ValueError("return_scores is for greedy decoding and beam search (temperature=0), "
                             "without return_attention")
        cfg, starts = self.config, self._prompt_rows(prompt, x.size(0))
        room = cfg.decoder.block_size - max(map(len, starts))
        _check_generation(max_new_tokens, temperature, top_k, room)
        tokens, scores = beam_search(self.decoder, self.encode_images(x), starts, num_beams,
                                     room if max_new_tokens is None else max_new_tokens, cfg.eos_id, cfg.pad_id,
                                     use_cache)  # one beam: greedy decoding, with its scores
        return (tokens, scores) if return_scores else tokens

    @torch.inference_mode()
    def _generate(self, images, max_new_tokens, temperature, top_k, generator, use_cache, return_attention, prompt):
        """generate() for images already checked by image_batch, so caption() checks them only once."""
        cfg, B, device = self.config, images.size(0), images.device
        starts = self._prompt_rows(prompt, B)  # each row's <bos> + prompt
        longest = max(map(len, starts))
        _check_generation(max_new_tokens, temperature, top_k, cfg.decoder.block_size - longest)
        lengths = torch.tensor([len(r) for r in starts], device=device)  # (B,)
        room = cfg.decoder.block_size - lengths  # (B,): each row's sequence must fit in block_size
        limit = room if max_new_tokens is None else torch.full_like(room, max_new_tokens)  # new tokens per row
        forced = torch.tensor([r + [cfg.pad_id] * (longest - len(r)) for r in starts], device=device)  # (B, P_max)

        # All rows run side by side, position by position. A row with a longer prompt goes on reading it
        # while shorter ones already write, so each row is written exactly as it would be alone.
        memory = self.encode_images(images)  # (B, N, dim)
        pos = int(lengths.min())  # the position of the next token
        tokens = forced[:, :pos]  # (B, P_min): what every row reads before anything is written
        cache = KVCache(cfg.decoder.depth) if use_cache else None
        written = torch.zeros(B, dtype=torch.long, device=device)  # new tokens per row so far
        finished = written >= limit  # (B,); all True when max_new_tokens is 0
        out, maps = [], []
        while not finished.all():
            if return_attention:
                logits, weights = self.decoder(tokens, memory, cache, need_weights=True)
                maps.append(torch.stack([w[:, :, -1] for w in weights], dim=1) if weights  # (B, L, H, N)
                            else memory.new_zeros(B, 0, cfg.decoder.num_heads, memory.size(1)))  # blind: L = 0
            else:
                logits = self.decoder(tokens, memory, cache)  # (B, T, vocab); with a cache, T = the newest only
            next_token = _pick(logits[:, -1], temperature, top_k, generator)  # (B,)
            reading = pos < lengths  # rows still inside their prompt take the prompt's token
            next_token = torch.where(reading, forced[:, min(pos, longest - 1)], next_token)
            next_token = next_token.masked_fill(finished, cfg.pad_id)
            out.append(next_token)
            written += ~reading
            finished |= ~reading & ((next_token == cfg.eos_id) | (written >= limit))
            tokens = next_token[:, None] if use_cache else torch.cat([tokens, next_token[:, None]], dim=1)
            pos += 1

        steps = torch.stack(out, dim=1) if out else forced.new_zeros(B, 0)  # (B, S); S = 0 if max_new_tokens is 0
        shift = lengths - lengths.min()  # (B,): the steps each row spent reading its prompt
        generated = _left_align(steps, shift, written, cfg.pad_id)  # (B, T): each row's new tokens
        if not return_attention:
            return generated
        L = self.decoder.image_layers
        maps = torch.stack(maps, dim=1) if maps else memory.new_zeros(B, 0, L, cfg.decoder.num_heads, memory.size(1))
        return generated, _left_align(maps, shift, written, 0.0)  # (B, T, L, H, N)

    def _prompt_rows(self, prompt, batch_size):
        """<bos> + prompt as a list of token-id lists, one per row, each checked against the vocabulary."""
        bos, vocab = self.config.bos_id, self.config.decoder.vocab_size
        if prompt is None:
            return [[bos]] * batch_size
        rows = prompt.tolist() if isinstance(prompt, torch.Tensor) else list(prompt)
        if all(isinstance(t, int) for t in rows):
            rows = [rows] * batch_size  # one prompt for every row
        if len(rows) != batch_size or any(isinstance(r, int) for r in rows):
            raise ValueError(f"prompt must be one list of token ids, or one list per image ({batch_size}), "
                             f"got {len(rows)} rows")
        rows = [list(r) for r in rows]
        bad = sorted({t for r in rows for t in r if not isinstance(t, int) or not 0 <= t < vocab}, key=str)
        if bad:
            raise ValueError(f"prompt token ids {bad} are not in the vocabulary (whole numbers 0 to {vocab - 1})")
        return [[bos] + r for r in rows]

    def decode(self, generated):
        """Token ids (B, T) -> list of strings, one character per token, stopping at <eos>.

        A special token before <eos> (only an untrained model writes one) shows as "�", so
        the text has one character per generated token and per attention map. A row that ran out
        of room before its <eos> ends at its last token: the <pad>s after it only fill the batch.
        """
        tokenizer = self._tokenizer()
        ids = generated.tolist() if isinstance(generated, torch.Tensor) else [list(r) for r in generated]
        vocab = len(tokenizer)
        bad = sorted({i for row in ids for i in row if not 0 <= i < vocab})
        if bad:
            raise ValueError(f"token ids {bad} are not in the vocabulary of {vocab} tokens (0 to {vocab - 1})")
        specials = set(tokenizer.all_special_ids)
        return ["".join("�" if i in specials else tokenizer.convert_ids_to_tokens(i)
                        for i in _until_eos(row, self.config.eos_id, self.config.pad_id)) for row in ids]

    def caption(self, images, temperature=0.0, top_k=None, generator=None):
        """Caption images of the config's size: for MNIST (28, 28), (1, 28, 28) or a batch (B, 1, 28, 28),
        in [0, 1] or uint8.

        Returns a Caption (or a list, for a batch) with the text and the cross-attention maps.
        Raises BlankImageError for an image with no ink, rather than captioning noise; warns
        (inputs.NotMNISTLikeWarning) for a one-channel image with a bright edge (inverted, noise).
        """
        self._tokenizer()  # before any work: decode() needs it
        x = self.image_batch(images)
        single = not (hasattr(images, "dim") and images.dim() == 4 or getattr(images, "ndim", 0) == 4)
        check_not_blank(x)  # the same rule as preprocess_drawing's
        if self.config.vision.in_chans == 1:  # a grey digit on a dark margin, as MNIST: warn of inverted or noisy ones
            check_mnist_like(x)
        generated, maps = self._generate(x, None, temperature, top_k, generator, use_cache=True,
                                         return_attention=True, prompt=None)
        gh, gw = self.encoder.grid_size
        results = []
        for text, attn, image in zip(self.decode(generated), maps, x):
            n = len(text)
            results.append(Caption(text, attn[:n].unflatten(-1, (gh, gw)).cpu(), image.cpu()))  # (n, L, H, gh, gw)
        return results[0] if single else results

    @torch.inference_mode()
    def score(self, image, text):
        """Read a given caption against one image: how likely each character is, and where the
        model looks while reading it (teacher forcing). Returns a Caption with `probs` filled.
        """
        check_text(self._tokenizer(), text)
        x = self.image_batch(image)
        if x.size(0) != 1:
            raise ValueError(f"score() reads one image at a time, got a batch of {x.size(0)}")
        ids = torch.tensor([self.tokenizer(text)["input_ids"]], device=x.device)  # (1, T + 2): <bos> text <eos>
        if ids.size(1) - 1 > self.config.decoder.block_size:
            raise ValueError(f"text of {len(text)} characters is longer than the model can read "
                             f"({self.config.decoder.block_size - 1})")
        T, memory = len(text), self.encode_images(x)
        logits, weights = self.decoder(ids[:, :-1], memory, need_weights=True)  # weights: L × (1, H, T + 1, N)
        logits = logits[0, :T]  # (T, vocab): the predictions of each character
        maps = (torch.stack([w[0, :, :T] for w in weights]) if weights  # (L, H, T, N)
                else logits.new_zeros(0, self.config.decoder.num_heads, T, memory.size(1)))
        probs = logits.softmax(dim=-1).gather(1, ids[0, 1 : T + 1, None]).squeeze(1)
        attention = maps.permute(2, 0, 1, 3).unflatten(-1, self.encoder.grid_size)  # (T, L, H, gh, gw)
        return Caption(text, attention.cpu(), x[0].cpu(), probs.cpu())

    def _tokenizer(self):
        if self.tokenizer is None:
            raise ValueError("this captioner has no tokenizer, so it cannot read or write text: build it with "
                             "Captioner.for_mnist(config), or pass one as Captioner(config, tokenizer)")
        return self.tokenizer

    def save_pretrained(self, folder):
        """Write model.safetensors, config.json and the tokenizer files into `folder`, replacing them as a unit."""
        with replacing(folder) as new:
            write_model(self, new)

    @classmethod
    def from_pretrained(cls, folder, device="cpu"):
        """Rebuild a captioner from save_pretrained's folder, with clear errors for broken ones (see checkpoint.py)."""
        return load_captioner(cls, folder, device)


def _check_generation(max_new_tokens, temperature, top_k, room):
    """Refuse generation settings that cannot work, saying why. room: the new tokens the longest row has room for."""
    if room < 0:
        raise ValueError(f"the prompt does not fit: with <bos> it is {-room} tokens longer than block_size")
    if max_new_tokens is None:
        max_new_tokens = room
    if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a whole number ≥ 0, got {max_new_tokens!r}")
    if max_new_tokens > room:
        raise ValueError(f"max_new_tokens={max_new_tokens} does not fit: <bos>, the prompt and the new tokens must "
                         f"fit in block_size, which leaves room for {max(room, 0)} new tokens")
    if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a finite number ≥ 0 (0 is greedy), got {temperature!r}")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
        raise ValueError(f"top_k must be None (no limit) or a whole number ≥ 1, got {top_k!r}")


def _left_align(steps, shift, count, pad):
    """steps (B, S, ...) -> (B, T, ...): row i's `count[i]` values from step `shift[i]` on, then `pad`."""
    T = int(count.max())
    extra = [1] * (steps.dim() - 2)  # the trailing dims, for broadcasting
    index = (shift[:, None] + torch.arange(T, device=steps.device)).clamp(max=steps.size(1) - 1)  # (B, T)
    index = index.view(*index.shape, *extra).expand(-1, -1, *steps.shape[2:])
    keep = (torch.arange(T, device=steps.device) < count[:, None]).view(len(count), T, *extra)
    return steps.gather(1, index).masked_fill(~keep, pad)


def _pick(logits, temperature, top_k, generator):
    if temperature <= 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_k:
        kth = logits.topk(min(top_k, logits.size(-1)), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(1)


def _until_eos(ids, eos_id, pad_id):
    if eos_id in ids:
        return ids[: ids.index(eos_id)]
    while ids and ids[-1] == pad_id:  # no <eos>: it ran out of room, and the batch's padding follows
        ids = ids[:-1]
    return ids
