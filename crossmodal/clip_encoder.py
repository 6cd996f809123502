"""A CLIP image tower as Flamingo's eyes: OpenCLIP's VisionTransformer behind TimmEncoder's interface.

Flamingo (Alayrac et al. 2022) read images with a contrastively pretrained encoder (an NFNet trained CLIP-style):
an encoder that learnt to match pictures with sentences already sees what captions talk about. OpenCLIP
(`pip install "crossmodal[clip]"`) has CLIP's towers and their weights (OpenAI's, LAION's, DataComp's ...).
`OpenClipEncoder` keeps the image tower only and hands Flamingo its patch tokens, one per image patch, as
`vit.TimmEncoder` does for a timm ViT: same attributes, the same resizing of grey 28 × 28 digits to a
colour picture of the tower's size. It normalises with CLIP's own mean/std (OpenCLIP's preprocess config),
not MNIST's. Tests build tiny random towers; `pretrained` downloads real weights.
"""

import torch.nn.functional as F
from torch import nn


class OpenClipEncoder(nn.Module):
    """OpenCLIP's image tower, `open_clip.create_model(model_name, pretrained, **kwargs).visual`.

    pretrained: None (random weights) or an OpenCLIP tag, e.g. "laion2b_s34b_b79k" (downloads them; see
    `open_clip.list_pretrained()`). OpenAI's weights were trained with QuickGELU: ask for "ViT-B-32-quickgelu"
    with pretrained="openai" (or pass force_quick_gelu=True), or the tower computes something else.
    kwargs: anything `open_clip.create_model` takes, e.g. vision_cfg=dict(...), which replaces the named
    model's vision config as a whole (how the tests build a tiny tower).
    """

    def __init__(self, model_name="ViT-B-32", pretrained=None, **kwargs):
        super().__init__()
        try:
            import open_clip  # optional: only this adapter needs it, and it takes seconds to import
        except ImportError as err:
            raise ImportError('OpenClipEncoder needs OpenCLIP: pip install "crossmodal[clip]" '
                              "(or pip install open_clip_torch)") from err

        visual = open_clip.create_model(model_name, pretrained=pretrained, **kwargs).visual  # the text tower goes
        is_vit = isinstance(visual, open_clip.transformer.VisionTransformer)
        if not is_vit or visual.attn_pool is not None:  # CoCa's attention pooler returns queries, not patches
            kind = "attention pooling" if is_vit else type(visual).__name__
            raise ValueError(f"{model_name!r} has no plain ViT image tower ({kind}): OpenClipEncoder takes one token "
                             "per patch from OpenCLIP's own ViT (for a timm tower, use crossmodal.vit.TimmEncoder)")
        visual.output_tokens = True  # forward then returns (pooled (B, output_dim), patch tokens (B, N, width))
        self.visual = visual
        self.in_chans = visual.conv1.in_channels  # 3: CLIP sees colour
        self.image_size = tuple(visual.image_size)
        self.grid_size = tuple(visual.grid_size)  # (grid_h, grid_w)
        self.embed_dim = visual.transformer.width  # the tokens' width, not the joint image-text space's
        cfg = visual.preprocess_cfg  # what OpenCLIP's own transforms use: CLIP's mean/std, or the tag's
        self.mean, self.std = tuple(cfg["mean"]), tuple(cfg["std"])  # one per channel
        self.num_prefix_tokens = 0  # forward_features below drops the class token

    def forward_features(self, images, need_weights=False):  # (B, C, H, W) -> (B, N, embed_dim), patch tokens
        if need_weights:
            raise ValueError("an OpenCLIP encoder does not return its attention weights; "
                             "use crossmodal's VisionTransformer encoder for them")
        if tuple(images.shape[-2:]) != self.image_size:
            # bicubic, as OpenCLIP's preprocessing resizes
            images = F.interpolate(images, size=self.image_size, mode="bicubic", align_corners=False)
        if images.size(1) != self.in_chans:
            images = images.expand(-1, self.in_chans, -1, -1)  # grey → RGB
        _, tokens = self.visual(images)  # (B, N, width): the patches, class token dropped
        # Standard CLIP ViTs put every token through ln_post, the LayerNorm its pooled class token also sees,
        # before pooling: these tokens have had it. Towers that norm only after pooling (final_ln_after_pool,
        # CLIPA) return them raw: we give them ln_post too, so the projector always reads normalised tokens.
        return self.visual.ln_post(tokens) if self.visual.final_ln_after_pool else tokens
