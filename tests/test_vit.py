"""Our Vision Transformer equals timm's VisionTransformer with the same weights."""

import pytest
import timm
import torch

from crossmodal import DecoderConfig, TimmEncoder, VisionConfig, VisionTransformer, VLMConfig, viz
from crossmodal.images import NotMNISTLikeWarning
from crossmodal.nn.vit import load_timm_weights
from crossmodal.tasks.captions import new_captioner

CONFIGS = [  # (patch_size, depth, dim, heads, class_token)
    (4, 2, 32, 2, False),
    (7, 3, 48, 4, False),
    (14, 1, 64, 8, True),
    (4, 4, 96, 4, True),
]


@pytest.mark.parametrize("patch, depth, dim, heads, class_token", CONFIGS)
def test_equals_timm(patch, depth, dim, heads, class_token):
    torch.manual_seed(0)
    ref = timm.models.vision_transformer.VisionTransformer(
        img_size=28, patch_size=patch, in_chans=1, num_classes=10, embed_dim=dim, depth=depth, num_heads=heads,
        mlp_ratio=2.0, class_token=class_token, global_pool="token" if class_token else "avg", fc_norm=False,
    ).eval()
    ours = VisionTransformer(VisionConfig(patch_size=patch, dim=dim, depth=depth, num_heads=heads,
                                          class_token=class_token), num_classes=10).eval()
    load_timm_weights(ours, ref)
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        assert (ours.forward_features(x) - ref.forward_features(x)).abs().max() <= 1e-5
        assert (ours(x) - ref(x)).abs().max() <= 1e-5


def test_patch_embed_is_a_linear_map_of_flattened_patches():
    vit = VisionTransformer(VisionConfig(patch_size=7, dim=16))
    x = torch.randn(2, 1, 28, 28)
    patches = x.unfold(2, 7, 7).unfold(3, 7, 7).reshape(2, 16, 49)  # (B, 4·4 patches, 7·7 pixels)
    w = vit.patch_embed.proj.weight.reshape(16, 49)
    expected = patches @ w.T + vit.patch_embed.proj.bias
    assert (vit.patch_embed(x) - expected).abs().max() <= 1e-5


def test_mismatched_timm_model_is_refused():
    ref = timm.models.vision_transformer.VisionTransformer(img_size=28, patch_size=4, in_chans=1, embed_dim=32,
                                                           depth=2, num_heads=2, class_token=False, fc_norm=False,
                                                           global_pool="avg", num_classes=0)
    ours = VisionTransformer(VisionConfig(patch_size=4, dim=48, depth=2, num_heads=2))
    with pytest.raises(RuntimeError, match="size mismatch"):
        load_timm_weights(ours, ref)


def test_any_timm_vit_serves_as_encoder():
    """A small random timm ViT (no download) plugged into the captioner via TimmEncoder."""
    torch.manual_seed(0)
    encoder = TimmEncoder("vit_tiny_patch16_224", img_size=32, patch_size=8, in_chans=3, depth=1)
    assert encoder.forward_features(torch.rand(2, 1, 28, 28)).shape == (2, 16, 192)
    config = VLMConfig(VisionConfig(timm_model="vit_tiny_patch16_224"))
    # the named model expects 224×224 RGB: the adapter resizes and repeats the grey channel
    model = new_captioner(config).eval()
    assert model.encode_images(torch.rand(1, 1, 28, 28)).shape == (1, 196, config.decoder.dim)


def test_equals_timm_on_rectangular_images():
    """Height × width: a 7 × 14 grid of patches, with timm's own non-square img_size."""
    torch.manual_seed(0)
    ref = timm.models.vision_transformer.VisionTransformer(
        img_size=(28, 56), patch_size=4, in_chans=1, num_classes=10, embed_dim=32, depth=2, num_heads=2,
        mlp_ratio=2.0, class_token=True, global_pool="token", fc_norm=False,
    ).eval()
    ours = VisionTransformer(VisionConfig(image_size=(28, 56), patch_size=4, dim=32, depth=2, num_heads=2,
                                          class_token=True), num_classes=10).eval()
    assert ours.grid_size == tuple(ref.patch_embed.grid_size) == (7, 14)
    load_timm_weights(ours, ref)
    x = torch.randn(2, 1, 28, 56)
    with torch.no_grad():
        assert (ours.forward_features(x) - ref.forward_features(x)).abs().max() <= 1e-5
        assert (ours(x) - ref(x)).abs().max() <= 1e-5
    with pytest.raises(ValueError, match=r"height × width \(28, 56\)"):
        ours(torch.randn(1, 1, 56, 28))


def test_a_captioner_of_rectangular_images_draws_rectangular_maps():
    torch.manual_seed(0)
    config = VLMConfig(VisionConfig(image_size=[28, 56], patch_size=7, dim=32, depth=1, num_heads=2),
                             DecoderConfig(dim=32, depth=1, num_heads=2, block_size=8))
    model = new_captioner(VLMConfig.from_dict(config.to_dict())).eval()  # a pair survives config.json
    with pytest.warns(NotMNISTLikeWarning):  # noise, on purpose: the maps' shape is what is checked
        caption = model.caption(torch.rand(1, 28, 56))
    assert caption.attention.shape[-2:] == (4, 8) and caption.image.shape == (1, 28, 56)
    assert viz.overlay(caption.image, viz.attention_map(caption, 0)).shape == (28, 56, 3)
    with pytest.raises(ValueError, match="expected 28×56 grayscale"):
        model.caption(torch.rand(28, 28))


def test_timm_model_with_fc_norm_is_refused_with_the_reason():
    ref = timm.models.vision_transformer.VisionTransformer(img_size=28, patch_size=4, in_chans=1, embed_dim=32,
                                                           depth=1, num_heads=2, class_token=False,
                                                           global_pool="avg", num_classes=0)  # fc_norm by default
    with pytest.raises(ValueError, match="fc_norm=False"):
        load_timm_weights(VisionTransformer(VisionConfig(dim=32, depth=1, num_heads=2)), ref)


def test_a_timm_encoder_normalises_with_its_own_mean_and_std():
    torch.manual_seed(0)
    config = VLMConfig(VisionConfig(timm_model="vit_tiny_patch16_224"),
                             DecoderConfig(dim=32, depth=1, num_heads=2))
    model = new_captioner(config).eval()
    assert model.encoder.mean == model.encoder.model.pretrained_cfg["mean"] != VisionConfig().mean
    images = torch.rand(1, 1, 28, 28)
    mean, std = torch.tensor(model.encoder.mean).view(3, 1, 1), torch.tensor(model.encoder.std).view(3, 1, 1)
    with torch.no_grad():
        expected = model.projector(model.encoder.model.forward_features(
            torch.nn.functional.interpolate((images.expand(-1, 3, -1, -1) - mean) / std, size=(224, 224),
                                            mode="bilinear", align_corners=False))[:, 1:])  # patches only
        assert (model.encode_images(images) - expected).abs().max() <= 1e-5


def test_conv_stem_keeps_the_patch_grid():
    """Early convolutions (the command line's default captioner) give one token per 4×4 patch, like PatchEmbed."""
    torch.manual_seed(0)
    vit = VisionTransformer(VisionConfig(stem="conv", image_size=(28, 56), dim=32, depth=1, num_heads=2)).eval()
    assert vit.grid_size == (7, 14)
    x = torch.rand(2, 1, 28, 56)
    assert vit.forward_features(x).shape == (2, 7 * 14, 32)
    # each token sees its own patch and a few pixels around it, not the whole image: locality, as in a CNN
    changed = x.clone()
    changed[:, :, :, 40:] = 0  # blank the right part of the image
    moved = (vit.patch_embed(changed) - vit.patch_embed(x)).abs().amax(dim=(0, 2)).view(7, 14)
    assert moved[:, :9].max() == 0 and moved[:, 10:].min() > 0


def test_conv_stem_refuses_a_patch_that_is_not_square():
    with pytest.raises(ValueError, match="needs a square patch"):
        VisionTransformer(VisionConfig(stem="conv", patch_size=(4, 2)))


@pytest.mark.parametrize("patch, layers", [(4, 10), (7, 4), (8, 13)])
def test_conv_stem_halves_for_each_factor_2_of_the_patch_then_covers_the_rest(patch, layers):
    """Patch 4: a full-resolution convolution, two halvings, a 1×1 map; patch 7 (the reader's 4 × 16 grid on 28 × 112):
    the full-resolution convolution, then a 7×7 one of stride 7; patch 8: three halvings."""
    vit = VisionTransformer(VisionConfig(stem="conv", stem_channels=8, image_size=(56, 112), patch_size=patch, dim=32,
                                         depth=1, num_heads=2))
    assert len(vit.patch_embed.proj) == layers
    assert vit.forward_features(torch.rand(2, 1, 56, 112)).shape == (2, (56 // patch) * (112 // patch), 32)


def test_a_captioner_with_the_conv_stem_draws_7x7_maps():
    torch.manual_seed(0)
    model = new_captioner(VLMConfig(VisionConfig(stem="conv", dim=32, depth=1, num_heads=2),
                                                DecoderConfig(dim=32, depth=1, num_heads=2))).eval()
    with pytest.warns(NotMNISTLikeWarning):  # noise, on purpose
        result = model.caption(torch.rand(28, 28))
    assert result.attention.shape[-2:] == (7, 7)
