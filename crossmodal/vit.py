"""Vision Transformer, with timm's names: PatchEmbed → Block → VisionTransformer.

`forward_features` turns images into one embedding per patch (the captioner's "memory");
`forward_head` pools them for classification. `load_timm_weights` copies a timm ViT of the same
shape into ours (the proof they are the same model); `TimmEncoder` lets any timm ViT serve as
the captioner's encoder.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .attention import MultiHeadAttention


class PatchEmbed(nn.Module):
    """Cut the image into patch_size × patch_size squares and embed each one linearly.

    A Conv2d whose kernel and stride equal the patch size is exactly that linear map.
    """

    def __init__(self, image_size, patch_size, in_chans, dim):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
        self.grid_size = image_size // patch_size
        self.num_patches = self.grid_size**2
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):  # (B, C, H, W)
        x = self.proj(x)  # (B, dim, H/p, W/p)
        return x.flatten(2).transpose(1, 2)  # (B, N, dim), patches in reading order


class Mlp(nn.Module):
    def __init__(self, dim, hidden, approximate="none"):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU(approximate=approximate)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm encoder block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim, num_heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)  # timm's ViT uses eps 1e-6
        self.attn = MultiHeadAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    def __init__(self, cfg, num_classes=0):
        super().__init__()
        self.patch_embed = PatchEmbed(cfg.image_size, cfg.patch_size, cfg.in_chans, cfg.dim)
        self.grid_size = self.patch_embed.grid_size
        self.embed_dim = cfg.dim
        self.num_prefix_tokens = int(cfg.class_token)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.dim)) if cfg.class_token else None
        num_tokens = self.patch_embed.num_patches + self.num_prefix_tokens
        self.pos_embed = nn.Parameter(torch.randn(1, num_tokens, cfg.dim) * 0.02)  # learned
        self.blocks = nn.Sequential(*[Block(cfg.dim, cfg.num_heads, cfg.mlp_ratio) for _ in range(cfg.depth)])
        self.norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.head = nn.Linear(cfg.dim, num_classes) if num_classes else nn.Identity()
        self.apply(_init_weights)

    def forward_features(self, images):
        """(B, C, H, W) -> (B, prefix + N, dim): one embedding per patch (after any class token)."""
        x = self.patch_embed(images)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.size(0), -1, -1), x], dim=1)
        x = x + self.pos_embed
        return self.norm(self.blocks(x))

    def forward_head(self, x):
        pooled = x[:, 0] if self.cls_token is not None else x.mean(dim=1)
        return self.head(pooled)

    def forward(self, images):
        return self.forward_head(self.forward_features(images))


def _init_weights(module):
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


@torch.no_grad()
def load_timm_weights(vit, timm_vit):
    """Copy a timm VisionTransformer of the same shape into `vit`; every tensor must match.

    timm packs q, k and v into one `qkv` Linear; we keep q apart from the packed k, v.
    """
    src = timm_vit.state_dict()
    dst = {}
    for name, value in src.items():
        if name.endswith(("attn.qkv.weight", "attn.qkv.bias")):
            prefix, kind = name.rsplit(".qkv.", 1)
            q, kv = value.split([value.size(0) // 3, 2 * value.size(0) // 3])
            dst[f"{prefix}.q.{kind}"], dst[f"{prefix}.kv.{kind}"] = q, kv
        elif name.startswith(("fc_norm", "head")) and name not in vit.state_dict():
            continue  # a classification head we were not built with
        else:
            dst[name] = value
    vit.load_state_dict(dst, strict=True)  # raises on any missing, extra or misshapen tensor
    return vit


class TimmEncoder(nn.Module):
    """Any timm ViT as the captioner's encoder: resizes and repeats channels to fit its input.

    `pretrained=True` downloads hub weights (needs the internet); tests use random small configs.
    """

    def __init__(self, model_name, pretrained=False, **timm_kwargs):
        super().__init__()
        import timm  # optional at import time: only this adapter needs it

        self.model = timm.create_model(model_name, pretrained=pretrained, num_classes=0, **timm_kwargs)
        self.in_chans = self.model.patch_embed.proj.in_channels
        self.image_size = tuple(self.model.patch_embed.img_size)
        self.grid_size = self.model.patch_embed.grid_size[0]
        self.embed_dim = self.model.embed_dim
        self.num_prefix_tokens = 0  # forward_features below already drops them

    def forward_features(self, images):  # (B, C, H, W) -> (B, N, embed_dim), patch tokens only
        if tuple(images.shape[-2:]) != self.image_size:
            images = F.interpolate(images, size=self.image_size, mode="bilinear", align_corners=False)
        if images.size(1) != self.in_chans:
            images = images.expand(-1, self.in_chans, -1, -1)  # grey → RGB
        return self.model.forward_features(images)[:, self.model.num_prefix_tokens :]
