"""Three ways to let text see an image, one model: the `fusion` setting of VLMConfig (and LLaVA's as it runs today).

    "cross"  (Flamingo, Llama 3.2 Vision): a ViT encodes the patches; the decoder's text reads them
             through cross-attention layers. The image never enters the text's sequence.
    "prefix" (LLaVA): the same ViT, its patch embeddings projected to the decoder's width and placed
             before the text as N extra tokens; the decoder's causal self-attention sees them, and the
             text's positions come after theirs. No new layer in the decoder: any decoder-only LM works.
    "raw"    (Fuyu): no encoder at all. Each patch's pixels, flattened, are mapped by one linear layer
             to the decoder's width, a 2-D position added (row + column), and read as a prefix. The
             decoder does all the seeing.
    "splice" (LLaVA as transformers and nanoVLM run it; notebook 11): the prefix's embeddings, written into
             the text's sequence where its chat template put an <image> token, expanded to one per patch
             (splice.py). The image takes ordinary positions, anywhere in the user's turn; with the
             placeholders first it is the prefix. A text without <image> is plain text: the decoder is an
             ordinary causal LM, which can be pretrained on text alone before it is given the image.

What each costs: a prefix makes every text token's self-attention N keys longer and the decoder
runs over N + T positions (the image tokens go through every decoder layer); cross-attention adds
parameters but keeps the text sequence T long. Generation prefills the image tokens once into the
KV cache (decoder.py), so each new character still costs one position.
"""

import copy

import torch
from torch import nn

from .config import ALL_FUSIONS, FUSIONS
from .layers import ImageEncoder
from .vit import PatchEmbed


class RawPatches(ImageEncoder):
    """Fuyu's "encoder": each patch flattened and mapped linearly to `dim`, plus where it lies in the grid.

    It offers the encoder interface (layers.ImageEncoder: patch_tokens, grid_size, mean, std, embed_dim),
    so the model's projector after it is the identity.
    The 2-D position is a learned row vector plus a learned column vector (gh + gw vectors, not gh × gw):
    a patch's place is its row and its column. Fuyu itself marks rows with an image-newline token
    instead; both tell the decoder where a row ends, which a 1-D position alone does not.
    """

    def __init__(self, cfg, dim):
        super().__init__()
        self.patch_embed = PatchEmbed(cfg.image_size, cfg.patch_size, cfg.in_chans, dim)  # one linear map per patch
        self.grid_size = self.patch_embed.grid_size  # (grid_h, grid_w)
        self.row = nn.Parameter(torch.randn(self.grid_size[0], dim) * 0.02)
        self.column = nn.Parameter(torch.randn(self.grid_size[1], dim) * 0.02)
        self.embed_dim, self.num_prefix_tokens = dim, 0
        self.mean, self.std = tuple(cfg.mean), tuple(cfg.std)
        nn.init.trunc_normal_(self.patch_embed.proj.weight, std=0.02)  # as every other linear map here
        nn.init.zeros_(self.patch_embed.proj.bias)

    def forward_features(self, images, need_weights=False):
        """(B, C, H, W) -> (B, N, dim), patches in reading order; need_weights: also [] (it has no attention)."""
        x = self.patch_embed(images)  # (B, N, dim)
        position = (self.row[:, None] + self.column[None]).flatten(0, 1)  # (gh, 1, dim) + (1, gw, dim) -> (N, dim)
        x = x + position
        return (x, []) if need_weights else x


def with_fusion(config, fusion):
    """A copy of a VLMConfig set to read the image by `fusion` ("cross", "prefix", "raw" or "splice").

    prefix, raw and splice need a decoder without cross-attention (cross_attention_every 0); cross gets
    cross-attention in every layer unless the config already asks for another spacing. splice also needs
    image_id, the tokenizer's <image> token, which VisionLanguageModel.for_tokenizer sets, and a block_size
    that holds the image's tokens with the text.
    """
    if fusion not in ALL_FUSIONS:
        raise ValueError(f"fusion must be one of {ALL_FUSIONS}, got {fusion!r}")
    config = copy.deepcopy(config)
    config.fusion = fusion
    if fusion == "cross":
        config.decoder.cross_attention_every = config.decoder.cross_attention_every or 1
    else:
        config.decoder.cross_attention_every = 0
    if fusion == "raw":
        config.vision.stem = "patch"  # raw patches: one linear map each, nothing else
    return config


def comparable_configs(base):
    """The three fusions at about the same parameter count, from the cross-attention captioner `base`.

    With tasks.captions.captioner_config(): cross 301,600; prefix 321,184 (one more decoder layer buys back
    the cross-attention's parameters); raw 308,736 (no ViT: the decoder is 6 layers deep instead of 2,
    so it can do the seeing). tests/test_fusion.py keeps them within 10% of each other.
    """
    cross, prefix, raw = (with_fusion(base, f) for f in FUSIONS)
    prefix.decoder.depth = base.decoder.depth + 1
    raw.decoder.depth = 3 * base.decoder.depth
    return {"cross": cross, "prefix": prefix, "raw": raw}
