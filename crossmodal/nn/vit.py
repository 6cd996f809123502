"""Vision Transformer, with timm's names: PatchEmbed → Block → VisionTransformer.

`forward_features` turns normalised images into one embedding per patch (the captioner's "memory");
`patch_tokens` (layers.ImageEncoder) does the same from pixels in [0, 1], normalising them with the
encoder's own mean and std; `forward_head` pools them for classification. `load_timm_weights` copies a
timm ViT of the same shape into ours (the proof they are the same model); encoders.py lets any timm or
OpenCLIP ViT serve instead. Images may be any height × width: the patches form a grid_h × grid_w grid,
read row by row, as in timm.
"""

import torch
from torch import nn

from .attention import MultiHeadAttention
from .layers import ImageEncoder, Mlp, init_weights, pair


class PatchEmbed(nn.Module):
    """Cut the image into patch_size squares (or ph × pw rectangles) and embed each one linearly.

    A Conv2d whose kernel and stride equal the patch size is exactly that linear map.
    """

    def __init__(self, image_size, patch_size, in_chans, dim):
        super().__init__()
        self.image_size, patch = pair(image_size), pair(patch_size)
        if self.image_size[0] % patch[0] or self.image_size[1] % patch[1]:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size {patch} "
                             "in both height and width")
        self.grid_size = (self.image_size[0] // patch[0], self.image_size[1] // patch[1])  # (grid_h, grid_w)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = self.projection(patch, in_chans, dim)

    def projection(self, patch, in_chans, dim):
        """(B, in_chans, H, W) -> (B, dim, grid_h, grid_w): here one linear map per patch."""
        return nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch)

    def forward(self, x):  # (B, C, H, W)
        if tuple(x.shape[-2:]) != self.image_size:
            raise ValueError(f"expected images of height × width {self.image_size}, got {tuple(x.shape[-2:])}")
        x = self.proj(x)  # (B, dim, grid_h, grid_w)
        return x.flatten(2).transpose(1, 2)  # (B, N, dim), patches in reading order


class ConvStem(PatchEmbed):
    """Early convolutions instead of one big patch projection (Xiao et al. 2021, "Early convolutions help
    transformers see better"): optionally a 3×3 convolution at full resolution (`stem_channels` wide), then 3×3
    convolutions of stride 2 that halve the image while the patch size has a factor 2 left, then one convolution
    that maps what is left of each patch to `dim` (1×1 when nothing is: patch 4 is two halvings; patch 7 is none,
    then a 7×7 convolution of stride 7). The tokens keep the patch grid (7×7 for 28×28 and patch 4), so the
    attention maps stay as sharp; the convolutions bring a CNN's prior for strokes and edges, which is what
    makes the captioner learn fast (docs/results.md, "Time to accuracy").
    """

    def __init__(self, image_size, patch_size, in_chans, dim, stem_channels=0):
        self.stem_channels = stem_channels
        super().__init__(image_size, patch_size, in_chans, dim)

    def projection(self, patch, in_chans, dim):
        if patch[0] != patch[1]:
            raise ValueError(f"the convolutional stem needs a square patch, got {patch}")
        halvings = (patch[0] & -patch[0]).bit_length() - 1  # the factors of 2 in the patch size: 4 -> 2, 7 -> 0
        rest = patch[0] >> halvings  # what the last convolution covers: 4 -> 1, 7 -> 7
        layers, channels = [], in_chans
        widths = [self.stem_channels] if self.stem_channels else []
        widths += [dim // 2 ** (halvings - 1 - i) for i in range(halvings)]  # widths double on the way: ..., dim
        for i, width in enumerate(widths):
            stride = 1 if self.stem_channels and i == 0 else 2
            layers += [nn.Conv2d(channels, width, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU(inplace=True)]
            channels = width
        layers.append(nn.Conv2d(channels, dim, rest, stride=rest))
        return nn.Sequential(*layers)


class Block(nn.Module):
    """Pre-norm encoder block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim, num_heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)  # timm's ViT uses eps 1e-6
        self.attn = MultiHeadAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x, need_weights=False):
        """(B, T, dim) -> (B, T, dim); with need_weights, also the attention weights (B, H, T, T)."""
        if need_weights:
            y, _, weights = self.attn(self.norm1(x), need_weights=True)
        else:
            y, weights = self.attn(self.norm1(x)), None
        x = x + y
        x = x + self.mlp(self.norm2(x))
        return (x, weights) if need_weights else x


class VisionTransformer(ImageEncoder):
    def __init__(self, cfg, num_classes=0):
        super().__init__()
        if cfg.stem not in ("patch", "conv"):
            raise ValueError(f"vision.stem must be 'patch' or 'conv', got {cfg.stem!r}")
        self.config = cfg  # what rebuilds it (a Flamingo's checkpoint saves it)
        if cfg.stem == "conv":
            self.patch_embed = ConvStem(cfg.image_size, cfg.patch_size, cfg.in_chans, cfg.dim, cfg.stem_channels)
        else:
            self.patch_embed = PatchEmbed(cfg.image_size, cfg.patch_size, cfg.in_chans, cfg.dim)
        self.grid_size = self.patch_embed.grid_size  # (grid_h, grid_w)
        self.embed_dim = cfg.dim
        self.mean, self.std = tuple(cfg.mean), tuple(cfg.std)  # the pixel normalisation it was trained with
        self.num_prefix_tokens = int(cfg.class_token)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.dim)) if cfg.class_token else None
        num_tokens = self.patch_embed.num_patches + self.num_prefix_tokens
        self.pos_embed = nn.Parameter(torch.randn(1, num_tokens, cfg.dim) * 0.02)  # learned
        self.blocks = nn.Sequential(*[Block(cfg.dim, cfg.num_heads, cfg.mlp_ratio) for _ in range(cfg.depth)])
        self.norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.head = nn.Linear(cfg.dim, num_classes) if num_classes else nn.Identity()
        self.apply(init_weights)

    def forward_features(self, images, need_weights=False):
        """(B, C, H, W) -> (B, prefix + N, dim): one embedding per patch (after any class token).

        need_weights: also return each block's attention weights, a list of (B, H, T, T).
        """
        x = self.patch_embed(images)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.size(0), -1, -1), x], dim=1)
        x = x + self.pos_embed
        if not need_weights:
            return self.norm(self.blocks(x))
        maps = []
        for block in self.blocks:
            x, weights = block(x, need_weights=True)
            maps.append(weights)
        return self.norm(x), maps

    def forward_head(self, x):
        pooled = x[:, 0] if self.cls_token is not None else x.mean(dim=1)
        return self.head(pooled)

    def forward(self, images):
        return self.forward_head(self.forward_features(images))


@torch.no_grad()
def load_timm_weights(vit, timm_vit):
    """Copy a timm VisionTransformer of the same shape into `vit`; every tensor must match.

    timm packs q, k and v into one `qkv` Linear; we keep q apart from the packed k, v.
    """
    src = timm_vit.state_dict()
    if "fc_norm.weight" in src:
        raise ValueError("this timm ViT normalises after pooling (fc_norm, timm's default with global_pool='avg'), "
                         "crossmodal's VisionTransformer before it (norm): build the timm model with fc_norm=False")
    dst = {}
    for name, value in src.items():
        if name.endswith(("attn.qkv.weight", "attn.qkv.bias")):
            prefix, kind = name.rsplit(".qkv.", 1)
            q, kv = value.split([value.size(0) // 3, 2 * value.size(0) // 3])
            dst[f"{prefix}.q.{kind}"], dst[f"{prefix}.kv.{kind}"] = q, kv
        elif name.startswith("head") and name not in vit.state_dict():
            continue  # a classification head we were not built with
        else:
            dst[name] = value
    vit.load_state_dict(dst, strict=True)  # raises on any missing, extra or misshapen tensor
    return vit
