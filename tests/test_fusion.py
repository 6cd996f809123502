"""The three fusions (fusion.py): a prefix decoder equals GPT-2 fed `inputs_embeds`; every fusion generates
the same with and without the KV cache, batched and one by one, and saves and loads; bad settings are refused."""

import pytest
import torch
from transformers import GPT2LMHeadModel

from crossmodal import Decoder, DecoderConfig, KVCache, VisionLanguageModel
from crossmodal.nn.config import check_config
from crossmodal.nn.decoder import gpt2_config_for, load_gpt2_weights
from crossmodal.nn.fusion import comparable_configs, with_fusion
from crossmodal.tasks.captions import captioner_config, new_captioner

from .conftest import tiny_config

FUSIONS = ["cross", "prefix", "raw"]


def model_for(fusion, seed=0):
    torch.manual_seed(seed)
    return new_captioner(with_fusion(tiny_config(), fusion)).eval()


@pytest.mark.parametrize("dim, depth, heads, image_tokens", [(32, 1, 2, 16), (48, 3, 4, 49), (64, 2, 8, 7)])
def test_prefix_decoder_equals_gpt2_with_inputs_embeds(dim, depth, heads, image_tokens):
    """LLaVA's recipe on GPT-2: image embeddings then token embeddings, one causal sequence."""
    torch.manual_seed(0)
    cfg = DecoderConfig(vocab_size=40, block_size=24, dim=dim, depth=depth, num_heads=heads, cross_attention_every=0)
    gpt2 = GPT2LMHeadModel(gpt2_config_for(cfg, image_tokens)).eval()
    ours = load_gpt2_weights(Decoder(cfg, image_tokens), gpt2).eval()
    tokens, memory = torch.randint(0, 40, (3, 20)), torch.randn(3, image_tokens, dim)
    with torch.no_grad():
        embeds = torch.cat([memory, gpt2.transformer.wte(tokens)], dim=1)  # (B, N + T, dim)
        expected = gpt2(inputs_embeds=embeds).logits[:, image_tokens:]  # the text's predictions
        assert (ours(tokens, memory) - expected).abs().max() <= 1e-4


def test_prefix_decoder_cached_steps_equal_one_pass():
    """Prefill the image and a prompt, then one token at a time: the logits of one uncached pass."""
    torch.manual_seed(1)
    cfg = DecoderConfig(vocab_size=30, block_size=12, dim=32, depth=2, num_heads=4, cross_attention_every=0)
    decoder, memory, tokens = Decoder(cfg, 9).eval(), torch.randn(2, 9, 32), torch.randint(0, 30, (2, 8))
    with torch.no_grad():
        whole, whole_maps = decoder(tokens, memory, need_weights=True)
        cache = KVCache(cfg.depth)
        first, first_maps = decoder(tokens[:, :3], memory, cache, need_weights=True)
        steps = [first] + [decoder(tokens[:, t : t + 1], memory, cache) for t in range(3, 8)]
    assert cache.length == 9 + 8  # the image's tokens are cached too
    assert torch.allclose(torch.cat(steps, dim=1), whole, atol=1e-5)
    assert len(whole_maps) == cfg.depth and whole_maps[0].shape == (2, 4, 8, 9)
    assert torch.allclose(first_maps[1], whole_maps[1][:, :, :3], atol=1e-5)
    assert torch.allclose(whole_maps[0].sum(-1), torch.ones(2, 4, 8), atol=1e-5)  # renormalised over the image


@pytest.mark.parametrize("fusion", FUSIONS)
def test_cached_equals_uncached_and_batched_equals_single(fusion):
    model = model_for(fusion)
    images = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    cached, maps = model.generate(images, return_attention=True)
    uncached, uncached_maps = model.generate(images, use_cache=False, return_attention=True)
    assert torch.equal(cached, uncached)
    assert torch.allclose(maps, uncached_maps, atol=1e-5)
    assert maps.shape[2] == model.decoder.image_layers == 2  # cross: 2 cross-attention layers; prefix: 2 layers
    single = torch.cat([model.generate(images[i : i + 1], max_new_tokens=cached.size(1)) for i in range(5)])
    assert torch.equal(single[:, : cached.size(1)], cached)
    beams = model.generate(images, num_beams=3)
    assert torch.equal(beams, model.generate(images, num_beams=3, use_cache=False))


@pytest.mark.parametrize("fusion", FUSIONS)
def test_every_fusion_reads_the_image(fusion):
    """Two different images give different logits: the image reaches the text, whichever the route."""
    model = model_for(fusion)
    tokens = torch.tensor([[model.config.bos_id, 5, 6]])
    a, b = (model(torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(s)), tokens) for s in (0, 1))
    assert (a - b).abs().max() > 1e-4


@pytest.mark.parametrize("fusion", FUSIONS)
def test_caption_maps_and_round_trip(fusion, tmp_path):
    model = model_for(fusion)
    image = torch.zeros(28, 28)
    image[8:20, 12:16] = 1.0
    caption = model.caption(image)
    assert caption.attention.shape[1:] == (model.decoder.image_layers, 2, 4, 4)  # (chars, L, H, grid)
    if caption.text:
        assert torch.allclose(caption.attention.sum((-2, -1)), torch.ones(()), atol=1e-5)
    model.save_pretrained(tmp_path / "m")
    again = VisionLanguageModel.from_pretrained(tmp_path / "m")
    assert again.config.fusion == fusion
    assert torch.equal(again.generate(image[None, None]), model.generate(image[None, None]))


def test_raw_fusion_has_no_vision_transformer():
    model = model_for("raw")
    names = [n for n, _ in model.named_parameters() if n.startswith(("encoder", "projector"))]
    assert sorted(names) == ["encoder.column", "encoder.patch_embed.proj.bias", "encoder.patch_embed.proj.weight",
                             "encoder.row"]
    assert model.decoder.wpe.num_embeddings == 16 + model.config.decoder.block_size  # 4 × 4 patches first


def test_bad_fusion_settings_are_refused():
    config = tiny_config()
    config.fusion = "late"
    with pytest.raises(ValueError, match="fusion must be one of"):
        check_config(config)
    with pytest.raises(ValueError, match="fusion must be one of"):
        new_captioner(config)
    with pytest.raises(ValueError, match="fusion must be one of"):
        with_fusion(tiny_config(), "late")
    config.fusion = "prefix"  # with the tiny config's cross-attention in every layer
    with pytest.raises(ValueError, match="cross_attention_every to 0"):
        check_config(config)
    with pytest.raises(ValueError, match="cross_attention_every to 0"):
        new_captioner(config)
    raw = with_fusion(tiny_config(), "raw")
    raw.vision.stem, raw.vision.patch_size = "conv", 4
    with pytest.raises(ValueError, match="no vision encoder"):
        check_config(raw)
    raw = with_fusion(tiny_config(), "raw")
    raw.vision.timm_model = "vit_tiny_patch16_224"  # refused before anything is built (no timm call)
    with pytest.raises(ValueError, match="no vision encoder"):
        new_captioner(raw)


def test_a_prefix_decoder_maps_every_layer():
    config = tiny_config(cross_attention_every=2)
    config.decoder.depth = 3
    assert new_captioner(config).decoder.image_layers == 1  # one cross-attention layer, in layer 1
    prefix = with_fusion(config, "prefix")
    assert new_captioner(prefix).decoder.image_layers == 3  # its self-attention, in each layer


def test_prefix_decoder_needs_the_image():
    model = model_for("prefix")
    tokens = torch.tensor([[model.config.bos_id]])
    with pytest.raises(ValueError, match="first 16 tokens"):
        model.decoder(tokens)
    with pytest.raises(ValueError, match="first 16 tokens"):
        model.decoder(tokens, torch.zeros(1, 15, 32))


def test_comparable_configs_have_about_the_same_parameter_count():
    counts = {name: sum(p.numel() for p in new_captioner(config).parameters())
              for name, config in comparable_configs(captioner_config()).items()}
    # the default captioner (captioner_config), trained by `python -m crossmodal.train`
    assert counts["cross"] == 310_880
    assert max(counts.values()) <= 1.1 * min(counts.values()), counts
