"""Pretrained-style encoders as Flamingo's eyes: OpenCLIP's image tower (crossmodal/clip_encoder.py) and a timm ViT
(crossmodal/vit.py's TimmEncoder), each normalising with its own mean/std. Towers are tiny and random; nothing is
downloaded."""

import os
import sys
from importlib.util import find_spec

import pytest
import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel

from crossmodal import TimmEncoder
from crossmodal.nn.encoders import OpenClipEncoder
from crossmodal.nn.flamingo import Flamingo

VOCAB = 30
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)  # OpenAI's
needs_open_clip = pytest.mark.skipif(find_spec("open_clip") is None and not os.environ.get("CI"),
                                     reason='needs OpenCLIP: pip install "crossmodal[clip]"')  # CI must have it


def tiny_lm(seed=0):
    """A random GPT-2 of 4 blocks, with dropout, so a model left in train mode would show."""
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=VOCAB, n_positions=32, n_embd=32, n_layer=4, n_head=2, bos_token_id=None,
                        eos_token_id=None)
    return GPT2LMHeadModel(config).eval()


def tiny_clip(seed=1, **vision):
    """ViT-B-32's recipe at toy size: 32 × 32 pictures in 8 × 8 patches (4 × 4 = 16), width 32, one layer."""
    torch.manual_seed(seed)
    vision_cfg = dict(image_size=32, patch_size=8, width=32, layers=1, head_width=16, **vision)
    text_cfg = dict(context_length=8, vocab_size=64, width=16, heads=2, layers=1)  # built by OpenCLIP, then dropped
    return OpenClipEncoder("ViT-B-32", embed_dim=16, vision_cfg=vision_cfg, text_cfg=text_cfg)


def batch(seed=2, B=4, T=12):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(B, 1, 28, 28, generator=g), torch.randint(VOCAB, (B, T), generator=g)


@needs_open_clip
@pytest.mark.parametrize("vision", [{}, dict(pool_type="avg", final_ln_after_pool=True, no_ln_pre=True)],
                         ids=["clip", "clipa"])
def test_clip_gives_normalised_patch_tokens_and_its_own_mean_std(vision):
    encoder = tiny_clip(**vision)
    assert (encoder.image_size, encoder.grid_size, encoder.in_chans) == ((32, 32), (4, 4), 3)
    assert encoder.embed_dim == 32 and encoder.num_prefix_tokens == 0  # the token width, not the joint space's 16
    assert encoder.mean == pytest.approx(CLIP_MEAN) and encoder.std == pytest.approx(CLIP_STD)  # not MNIST's 0.13
    tokens = encoder.forward_features(torch.rand(2, 1, 28, 28))  # grey 28 × 28: resized, repeated to RGB
    assert tokens.shape == (2, 16, 32)
    # ln_post (weight 1, bias 0 at initialisation) has normalised each token, in CLIP and in CLIPA alike
    torch.testing.assert_close(tokens.mean(-1), torch.zeros(2, 16), rtol=0, atol=1e-5)
    torch.testing.assert_close(tokens.var(-1, unbiased=False), torch.ones(2, 16), rtol=0, atol=1e-3)
    with pytest.raises(ValueError, match="attention weights"):
        encoder.forward_features(torch.rand(2, 3, 32, 32), need_weights=True)


@needs_open_clip
def test_flamingo_with_clip_eyes_is_the_frozen_lm_at_first_and_normalises_as_clip():
    lm = tiny_lm()
    model = Flamingo(lm, tiny_clip(), cross_attention_every=2).train()  # train mode: the LM must not drop out
    images, ids = batch()
    logits, loss, maps = model(images, ids, labels=ids, need_weights=True)
    reference = lm(input_ids=ids, labels=ids)
    assert (loss - reference.loss).abs().item() <= 1e-6
    assert (logits - reference.logits).abs().max().item() <= 1e-6
    assert [tuple(m.shape) for m in maps] == [(4, 2, 12, 16)] * 2  # (B, heads, T, N): the 16 patches

    model.eval()  # by hand: resize as OpenCLIP does, repeat to RGB, CLIP's normalisation, the tower, the projector
    x = F.interpolate(images, size=(32, 32), mode="bicubic", align_corners=False).expand(-1, 3, -1, -1)
    x = (x - torch.tensor(CLIP_MEAN).view(3, 1, 1)) / torch.tensor(CLIP_STD).view(3, 1, 1)
    torch.testing.assert_close(model.encode_images(images), model.projector(model.encoder.visual(x)[1]))


@needs_open_clip
def test_training_moves_projector_gates_and_clip_but_never_the_lm():
    model = Flamingo(tiny_lm(), tiny_clip(), cross_attention_every=2).train()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=1e-2)
    images, ids = batch()
    for _ in range(2):
        loss = model(images, ids, labels=ids)[1]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    moved = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert {n.split(".")[0] for n in moved} == {"encoder", "projector", "lm"}
    assert all(".xattn." in n for n in moved if n.startswith("lm."))  # only the gated layers inside the LM
    assert any(".xattn.attn." in n for n in moved) and any(".xattn.ffn." in n for n in moved)
    assert (model.gates().abs() > 0).all()


@needs_open_clip
def test_a_tower_without_one_token_per_patch_is_refused():
    with pytest.raises(ValueError, match="no plain ViT image tower.*attention pooling"):
        tiny_clip(attentional_pool=True, attn_pooler_queries=4, attn_pooler_heads=2)  # CoCa's: 4 pooled tokens


def test_without_open_clip_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "open_clip", None)  # `import open_clip` now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "crossmodal\[clip\]"'):
        OpenClipEncoder()


def test_a_timm_encoder_normalises_with_timms_mean_std():
    import timm

    torch.manual_seed(0)
    encoder = TimmEncoder("vit_tiny_patch16_224", img_size=32, patch_size=8, in_chans=3, depth=1)  # 4 × 4 patches
    data = timm.data.resolve_model_data_config(encoder.model)  # its pretrained_cfg (augreg): 0.5, not ImageNet's
    assert encoder.mean == tuple(data["mean"]) == (0.5, 0.5, 0.5) and encoder.std == tuple(data["std"])
    model = Flamingo(tiny_lm(), encoder, cross_attention_every=4).eval()
    images, _ = batch()
    x = F.interpolate(images, size=(32, 32), mode="bilinear", align_corners=False).expand(-1, 3, -1, -1)
    x = (x - 0.5) / 0.5  # by hand: resize, repeat to RGB, timm's normalisation, the ViT, its patch tokens
    features = encoder.model.forward_features(x)[:, encoder.model.num_prefix_tokens :]
    torch.testing.assert_close(model.encode_images(images), model.projector(features))
