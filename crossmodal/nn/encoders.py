"""Encoders from elsewhere behind the interface of layers.ImageEncoder: a timm ViT, or CLIP's image tower.

`TimmEncoder` lets any timm ViT read the captioner's images; `OpenClipEncoder` gives a Flamingo the eyes
Flamingo itself had: an encoder contrastively pretrained to match pictures with sentences (Alayrac et al.
2022 used an NFNet trained CLIP-style; OpenCLIP, `pip install "crossmodal[clip]"`, has CLIP's towers and
their weights: OpenAI's, LAION's, DataComp's ...). Both hand over one token per image patch, resize grey
28 × 28 digits to a colour picture of their own size, and normalise with their own mean and std (timm's
pretrained_cfg, OpenCLIP's preprocess config), not MNIST's. Tests build tiny random ones; `pretrained`
downloads real weights (needs the internet).
"""

import torch.nn.functional as F

from .layers import ImageEncoder


def check_built_in(model_name):
    """Refuse a timm model name that timm does not have built in (an "hf-hub:..." name): building it would fetch its
    configuration from the hub, and reading a checkpoint never downloads."""
    import timm

    if not timm.is_model(model_name):
        raise ValueError(f"vision.timm_model {model_name!r} is not built into timm (a typo, or an hf-hub: name, "
                         "which needs the internet): a checkpoint or a training run here never downloads; build "
                         "TimmEncoder(name) yourself where there is internet, or pick one of timm.list_models('vit*')")


class TimmEncoder(ImageEncoder):
    """Any timm ViT as the captioner's encoder: resizes and repeats channels to fit its input.

    `pretrained=True` downloads hub weights (needs the internet); tests use random small configs.
    """

    def __init__(self, model_name, pretrained=False, **timm_kwargs):
        super().__init__()
        import timm  # a dependency, imported here as it takes seconds to load and only this adapter needs it

        self.model = timm.create_model(model_name, pretrained=pretrained, num_classes=0, **timm_kwargs)
        if not hasattr(self.model, "patch_embed") or not hasattr(self.model, "num_prefix_tokens"):
            raise ValueError(f"timm's {model_name!r} is a {type(self.model).__name__}, not a Vision Transformer: "
                             "the encoder hands over one token per patch, so it takes a ViT (timm.list_models('vit*'))")
        self.in_chans = self.model.patch_embed.proj.in_channels
        self.image_size = tuple(self.model.patch_embed.img_size)
        self.grid_size = tuple(self.model.patch_embed.grid_size)  # (grid_h, grid_w)
        self.embed_dim = self.model.embed_dim
        data = timm.data.resolve_model_data_config(self.model)  # timm's pretrained_cfg
        self.mean, self.std = tuple(data["mean"]), tuple(data["std"])  # one per channel
        self.num_prefix_tokens = 0  # forward_features below already drops them

    def forward_features(self, images, need_weights=False):  # (B, C, H, W) -> (B, N, embed_dim), patch tokens only
        if need_weights:
            raise ValueError(f"a timm encoder ({type(self.model).__name__}) does not return its attention weights; "
                             "use crossmodal's VisionTransformer encoder for them")
        if tuple(images.shape[-2:]) != self.image_size:
            images = F.interpolate(images, size=self.image_size, mode="bilinear", align_corners=False)
        if images.size(1) != self.in_chans:
            images = images.expand(-1, self.in_chans, -1, -1)  # grey → RGB
        return self.model.forward_features(images)[:, self.model.num_prefix_tokens :]


class OpenClipEncoder(ImageEncoder):
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
                             "per patch from OpenCLIP's own ViT (for a timm tower, use TimmEncoder)")
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
