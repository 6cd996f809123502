"""The vision-language model: a vision encoder sees the image, a projector maps its patches to the decoder's
width, and a GPT-style decoder writes text while looking at them.

    image (B, 1, 28, 28) → encoder → (B, 49, vision.dim) → projector → (B, 49, decoder.dim)
                                                                            ↓ cross-attention
    "<bos>This is the number" → decoder → next-character logits (B, T, vocab)

It knows no task: trained on captions it is the captioner of notebooks 04–06, on numbers the reader (07), on
questions the answerer (08); what it writes comes from its tokenizer and its training. `config.fusion` says
how the text sees the image (fusion.py): by cross-attention, with the patches as a prefix, or spliced in at the
<image> tokens of its chat template (splice.py).

`generate_text` is the one door for writing with maps: it checks the images and the prompts once, writes,
decodes, and returns each text with the maps over the image of every token it wrote.
"""

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..folders import replacing
from ..images import check_mnist_like, check_not_blank, to_image_batch
from .config import SPLICE, VLMConfig, check_config, check_fusion
from .decoder import Decoder
from .decoding import beam_search, check_beam_settings, check_generation, sample
from .encoders import TimmEncoder, check_built_in
from .fusion import RawPatches
from .layers import pair
from .memory import beam_bytes, check_fits
from .serialization import read_model, write_model
from .splice import check_placeholders
from .text_io import check_tokenizer, decode_rows, prompt_ids, with_image
from .tokenizer import check_text, image_token_id
from .vit import VisionTransformer

IGNORE_INDEX = -100  # targets the loss skips: PyTorch's and transformers' convention (padding, a question's prompt)


@dataclass
class Generation:
    """One image's text and where the model looked while writing it.

    attention: (tokens, image layers, heads, grid_h, grid_w) — for each token written, the attention weights
    over the patches of the step that wrote it; each map sums to 1 over the patches. With a character tokenizer
    there is one token per character of text; `pieces` says what each token reads as, whichever the tokenizer.
    """

    text: str
    attention: torch.Tensor
    image: torch.Tensor  # (C, H, W), what the model saw: (1, 28, 28) for MNIST
    probs: torch.Tensor | None = None  # (tokens,): the probability the model gave each token it wrote
    pieces: list | None = None  # what each token written reads as (tokenizer.decode_pieces); None: one per character

    @property
    def sureness(self):
        """How sure the model was of the whole text: the product of its tokens' probabilities (1 for none)."""
        return float(self.probs.prod()) if self.probs is not None else None


class VisionLanguageModel(nn.Module):
    def __init__(self, config=None, tokenizer=None):
        super().__init__()
        self.config = config = config or VLMConfig()
        v = config.vision
        check_fusion(config)  # before building anything: a wrong setting gets its own message
        if config.fusion == "raw":  # Fuyu: no encoder; the patches' own linear map is the projection
            self.encoder, self.projector = RawPatches(v, config.decoder.dim), nn.Identity()
        else:
            self.encoder = TimmEncoder(v.timm_model) if v.timm_model else VisionTransformer(v)
            self.projector = nn.Linear(self.encoder.embed_dim, config.decoder.dim)
        gh, gw = self.encoder.grid_size
        if config.fusion == SPLICE:  # the image at its <image> tokens: ordinary positions, no prefix
            if config.decoder.block_size <= gh * gw:
                raise ValueError(f"fusion 'splice' reads the image's {gh * gw} tokens in the text's sequence: "
                                 f"decoder.block_size ({config.decoder.block_size}) must hold them and the text")
            self.decoder = Decoder(config.decoder, image_token_id=config.image_id)
        else:
            self.decoder = Decoder(config.decoder, image_tokens=gh * gw if config.fusion != "cross" else 0)
        if not self.decoder.sees_image:  # a blind decoder never uses them: they neither learn nor decay
            self.encoder.requires_grad_(False)
            self.projector.requires_grad_(False)
        self.tokenizer = tokenizer

    @classmethod
    def for_tokenizer(cls, tokenizer, config=None):
        """A fresh model that writes with `tokenizer`: the config's vocabulary size and special ids set from it
        (a copy of `config`: the caller's stays as it was)."""
        config = copy.deepcopy(config or VLMConfig())
        config.decoder.vocab_size = len(tokenizer)
        config.bos_id, config.eos_id = tokenizer.bos_token_id, tokenizer.eos_token_id
        config.pad_id = tokenizer.pad_token_id
        config.image_id = image_token_id(tokenizer) if image_token_id(tokenizer) is not None else -1
        return cls(config, tokenizer)

    @property
    def device(self):
        return next(self.parameters()).device

    def image_batch(self, images):
        """Check and convert the images a caller hands over (see images.to_image_batch), on this model's device.

        The input size is the config's image size (a timm encoder then resizes to its own).
        """
        v = self.config.vision
        return to_image_batch(images, pair(v.image_size), v.in_chans).to(self.device)

    def encode_images(self, images, need_weights=False):
        """(B, C, H, W) in [0, 1] -> patch embeddings (B, N, decoder.dim), the encoder normalising the pixels itself.

        need_weights: also return the encoder's self-attention weights, one (B, H, T, T) per block.
        """
        out = self.encoder.patch_tokens(images, need_weights)
        tokens, maps = out if need_weights else (out, None)
        memory = self.projector(tokens)  # (B, N, decoder.dim)
        return (memory, maps) if need_weights else memory

    def forward(self, images, tokens, targets=None):
        """Next-token logits (B, T, vocab); with targets (B, T), also the mean loss over the targets that are not
        IGNORE_INDEX. images None: text alone (a splice or cross-attention model reads it as a language model).

        A splice model's tokens hold the image's N <image> tokens where it is read (or none), its targets -100 there.
        """
        # A blind decoder (no cross-attention layer) cannot use the patches: skip the encoder's work
        memory = self.encode_images(images) if self.decoder.sees_image and images is not None else None
        if self.decoder.splices:  # LLaVA's check: as many placeholders as the image gives embeddings
            check_placeholders(tokens, self.config.image_id, self.image_token_count)
        logits = self.decoder(tokens, memory)
        if targets is None:
            return logits
        return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX)

    @torch.inference_mode()
    def generate(self, images, max_new_tokens=None, temperature=0.0, top_k=None, generator=None,
                 use_cache=True, return_attention=False, prompt=None, num_beams=1, return_scores=False):
        """Write for a batch: (B, T) new token ids, each row <eos>-terminated then <pad>.

        Every row starts with <bos>, then its prompt if one is given: a list of token ids for
        every row, or one list per row (lengths may differ), which the model reads before writing.
        temperature 0 is greedy; above 0 samples (from the top_k most likely, if given).
        max_new_tokens: at most this many new tokens per row (default: as many as fit in block_size).
        return_attention: also return the attention weights over the image (B, T, layers, heads, N).
        num_beams > 1: beam search (decoding.py), the likeliest sequence among num_beams kept at each step
        instead of the likeliest token at each step; prompts must then be of one length.
        return_scores: also return each row's log-probability (B,), for greedy or beam search.
        """
        x = self.image_batch(images)
        check_beam_settings(num_beams, temperature, top_k, return_attention)
        starts = self._prompt_rows(prompt, x.size(0))
        if num_beams == 1 and not return_scores:
            tokens, maps, _ = self._write(x, starts, max_new_tokens, temperature, top_k, generator, use_cache,
                                          return_attention)
            return (tokens, maps) if return_attention else tokens
        if return_scores and (temperature != 0 or return_attention):
            raise ValueError("return_scores is for greedy decoding and beam search (temperature=0), "
                             "without return_attention")
        cfg = self.config
        room = cfg.decoder.block_size - max(map(len, starts))
        check_generation(max_new_tokens, temperature, top_k, room)
        (gh, gw), d = self.encoder.grid_size, cfg.decoder
        check_fits(beam_bytes(x.size(0), num_beams, gh * gw, d.dim, d.depth, d.block_size, d.vocab_size),
                   f"beam search with num_beams={num_beams} for {x.size(0)} image(s)", self.device)
        tokens, scores = beam_search(self.decoder, self.encode_images(x), starts, num_beams,
                                     room if max_new_tokens is None else max_new_tokens, cfg.eos_id, cfg.pad_id,
                                     use_cache)  # one beam: greedy decoding, with its scores
        return (tokens, scores) if return_scores else tokens

    def _write(self, images, starts, max_new_tokens, temperature, top_k, generator, use_cache, return_attention):
        """decoding.sample for checked images and prompt rows, so that each is checked once: (tokens, maps, probs)."""
        cfg = self.config
        check_generation(max_new_tokens, temperature, top_k, cfg.decoder.block_size - max(map(len, starts)))
        room = cfg.decoder.block_size - torch.tensor([len(r) for r in starts], device=images.device)  # (B,)
        limit = room if max_new_tokens is None else torch.full_like(room, max_new_tokens)  # new tokens per row
        return sample(self.decoder, self.encode_images(images), starts, limit, cfg.eos_id, cfg.pad_id, temperature,
                      top_k, generator, use_cache, return_attention)

    @property
    def image_token_count(self):
        """How many tokens the image takes in a splice or prefix model's sequence: one per patch embedding."""
        gh, gw = self.encoder.grid_size
        return gh * gw

    def _prompt_rows(self, prompt, batch_size):
        """<bos> + prompt as a list of token-id lists, one per row, each checked against the vocabulary; a splice
        model's rows hold the image's placeholders (text_io.with_image)."""
        bos, vocab = self.config.bos_id, self.config.decoder.vocab_size
        if prompt is None:
            return self._with_image([[bos]] * batch_size)
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
        return self._with_image([[bos] + r for r in rows])

    def _with_image(self, rows):
        """Rows of token ids as given, or for a splice model with the image's placeholders (text_io.with_image)."""
        if not self.decoder.splices:
            return rows
        return with_image(rows, self.config.image_id, self.image_token_count)

    def prompt_ids(self, text):
        """The token ids the model reads after <bos> before it writes, for a prompt `text` (a str).

        With a chat template (an answerer), `text` is the user's turn: <|user|>text<|assistant|>; without one, it is
        read as it is. A splice model's user turn holds the image first, expanded to its placeholders. Raises
        ValueError for an empty prompt, characters outside the vocabulary, or one so long that no answer would fit.
        """
        image = self.image_token_count if self.decoder.splices else 0
        return prompt_ids(self.require_tokenizer(), text, self.config.decoder.block_size, image, self.config.image_id)

    @torch.inference_mode()
    def generate_text(self, images, prompts=None, with_maps=True, temperature=0.0, top_k=None, generator=None,
                      batch_size=500):
        """Write for each image (after its prompt, if given) and return a list of Generation: the text, the probability
        of each character it wrote (`probs`; `sureness`, their product), and with_maps the attention maps of each
        character, (chars, layers, heads, grid_h, grid_w).

        images: anything image_batch takes; each must hold ink (BlankImageError), and a one-channel image with a
        bright edge is warned about (images.NotMNISTLikeWarning). prompts: None, one str for every image, or one
        str per image (prompt_ids: a question for an answerer). Images and prompts are checked once, here.
        """
        self.require_tokenizer()
        x = self.image_batch(images)
        check_not_blank(x)
        if self.config.vision.in_chans == 1:  # a grey digit on a dark margin, as MNIST: warn of inverted or noisy ones
            check_mnist_like(x)
        if isinstance(prompts, str) or prompts is None:
            prompts = [prompts] * len(x)
        if getattr(self.tokenizer, "chat_template", None) and any(p is None for p in prompts):
            raise ValueError("this model answers questions (its tokenizer has a chat template): give every image a "
                             "question, e.g. 'What number is written?'")
        if len(prompts) != len(x):
            raise ValueError(f"one prompt per image: got {len(x)} images and {len(prompts)} prompts")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a whole number ≥ 1, got {batch_size!r}")
        ids = {p: self.prompt_ids(p) for p in set(prompts) if p is not None}  # each distinct prompt checked once
        starts = self._with_image([[self.config.bos_id] + ids.get(p, []) for p in prompts])
        grid, results = self.encoder.grid_size, []
        for i in range(0, len(x), batch_size):
            chunk = x[i : i + batch_size]
            generated, maps, probs = self._write(chunk, starts[i : i + batch_size], None, temperature, top_k,
                                                 generator, True, with_maps)
            for k, ((text, pieces), image) in enumerate(zip(self.decode_pieces(generated), chunk)):
                n = len(pieces)  # tokens written
                attention = maps[k, :n].unflatten(-1, grid).cpu() if with_maps else None  # (n, L, H, gh, gw)
                results.append(Generation(text, attention, image.cpu(), probs[k, :n].cpu(), pieces))
        return results

    def caption(self, images, temperature=0.0, top_k=None, generator=None):
        """What the model writes for images of the config's size, with no prompt: for MNIST (28, 28),
        (1, 28, 28) or a batch (B, 1, 28, 28), in [0, 1] or uint8.

        Returns a Generation (or a list, for a batch) with the text and its maps (see generate_text).
        """
        single = not (hasattr(images, "dim") and images.dim() == 4 or getattr(images, "ndim", 0) == 4)
        results = self.generate_text(images, temperature=temperature, top_k=top_k, generator=generator)
        return results[0] if single else results

    @torch.inference_mode()
    def score(self, image, text):
        """Read a given text against one image: how likely each character is, and where the model looks
        while reading it (teacher forcing). Returns a Generation with `probs` filled.
        """
        check_text(self.require_tokenizer(), text)
        x = self.image_batch(image)
        if x.size(0) != 1:
            raise ValueError(f"score() reads one image at a time, got a batch of {x.size(0)}")
        written = self.tokenizer(text, add_special_tokens=False)["input_ids"]  # T tokens
        row = self._with_image([[self.config.bos_id] + written + [self.config.eos_id]])[0]  # a splice's image first
        ids, T, skip = torch.tensor([row], device=x.device), len(written), len(row) - len(written) - 2
        if ids.size(1) - 1 > self.config.decoder.block_size:
            raise ValueError(f"text of {len(text)} characters is longer than the model can read "
                             f"({self.config.decoder.block_size - 1 - skip} tokens)")
        memory = self.encode_images(x)
        logits, weights = self.decoder(ids[:, :-1], memory, need_weights=True)  # weights: L × (1, H, skip + T + 1, N)
        logits = logits[0, skip : skip + T]  # (T, vocab): the predictions of each token (after a splice's image)
        maps = (torch.stack([w[0, :, skip : skip + T] for w in weights]) if weights  # (L, H, T, N)
                else logits.new_zeros(0, self.config.decoder.num_heads, T, memory.size(1)))
        probs = logits.softmax(dim=-1).gather(1, ids[0, skip + 1 : skip + T + 1, None]).squeeze(1)
        attention = maps.permute(2, 0, 1, 3).unflatten(-1, self.encoder.grid_size)  # (T, L, H, gh, gw)
        return Generation(text, attention.cpu(), x[0].cpu(), probs.cpu(), self.decode_pieces([written])[0][1])

    def decode(self, generated):
        """Token ids (B, T) -> list of strings, stopping at <eos>.

        A special token before <eos> (only an untrained model writes one) shows as "�", so with a character
        tokenizer the text has one character per generated token and per attention map. A row that ran out
        of room before its <eos> ends at its last token: the <pad>s after it only fill the batch.
        """
        return [text for text, _ in self.decode_pieces(generated)]

    def decode_pieces(self, generated):
        """As decode, each row as (text, pieces): pieces, what each token up to <eos> reads as (text_io.decode_rows)."""
        return decode_rows(self.require_tokenizer(), generated, self.config.eos_id, self.config.pad_id)

    def require_tokenizer(self):
        """The model's tokenizer, or a ValueError saying how to give it one."""
        if self.tokenizer is None:
            raise ValueError("this model has no tokenizer, so it cannot read or write text: build it with "
                             "VisionLanguageModel.for_tokenizer(tokenizer, config), or a task's factory "
                             "(crossmodal.tasks.captions.new_captioner)")
        return self.tokenizer

    # ---- checkpoints (serialization.py): one folder format for every model

    def save_pretrained(self, folder):
        """Write model.safetensors, config.json and the tokenizer files into `folder`, replacing them as a unit."""
        with replacing(folder) as new:
            write_model(self, new, self.tokenizer)

    @classmethod
    def from_pretrained(cls, folder, device="cpu"):
        """Rebuild a model from save_pretrained's folder, every file checked before anything is built."""
        return read_model(folder, cls, device)[0]

    def config_json(self):
        return {"architectures": [type(self).__name__], **self.config.to_dict()}

    @staticmethod
    def config_from_json(values):
        config = VLMConfig.from_dict(values)
        check_config(config)
        if config.vision.timm_model:
            check_built_in(config.vision.timm_model)  # before anything is built: a checkpoint never downloads
        return config

    @classmethod
    def from_config(cls, config, tokenizer=None):
        """The model of `config`, with `tokenizer` checked against it (its size and special tokens' ids)."""
        if tokenizer is not None:
            check_tokenizer(config, tokenizer)
        return cls(config, tokenizer)
