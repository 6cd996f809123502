"""Flamingo's gated cross-attention in a frozen GPT-2 (crossmodal/nn/flamingo.py) and the text LM's code path
(crossmodal/tasks/text.py): closed gates change nothing, training never touches the LM, bad input is refused.
Everything is random and tiny; nothing is downloaded."""

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

from crossmodal import TimmEncoder, VisionConfig, VisionTransformer
from crossmodal.data import ALL_CAPTIONS
from crossmodal.data.facts import all_facts
from crossmodal.nn.flamingo import Flamingo, FlamingoLayer
from crossmodal.tasks import text as text_lm
from crossmodal.tasks.text import build_text_lm, complete, encode

from .test_eyes import pretrain  # the text task's training: its TrainConfig, FactBatches and loss, through train()

VOCAB, N_LAYER = 30, 4


def tiny_lm(seed=0, dropout=0.1):
    """A random GPT-2 of 4 blocks; dropout as the hub's GPT-2 has it, so a model left in train mode would show."""
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=VOCAB, n_positions=32, n_embd=32, n_layer=N_LAYER, n_head=2, resid_pdrop=dropout,
                        embd_pdrop=dropout, attn_pdrop=dropout, bos_token_id=None, eos_token_id=None)
    return GPT2LMHeadModel(config).eval()


def tiny_encoder(seed=1):
    torch.manual_seed(seed)
    return VisionTransformer(VisionConfig(dim=24, depth=1, num_heads=2, patch_size=7))  # 4 × 4 = 16 patches


def batch(seed=2, B=4, T=12):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(B, 1, 28, 28, generator=g), torch.randint(VOCAB, (B, T), generator=g)


def test_closed_gates_give_the_frozen_lms_text_loss_exactly():
    lm = tiny_lm()
    model = Flamingo(lm, tiny_encoder(), cross_attention_every=2).train()  # train mode: the LM must not drop out
    assert [i for i, b in enumerate(model.lm.transformer.h) if isinstance(b, FlamingoLayer)] == [1, 3]
    images, ids = batch()
    logits, loss, maps = model(images, ids, labels=ids, need_weights=True)
    reference = lm(input_ids=ids, labels=ids)
    assert (loss - reference.loss).abs().item() <= 1e-6
    assert (logits - reference.logits).abs().max().item() <= 1e-6
    # the gated layers did run and did look at the 16 patches: the loss is equal because tanh(0) = 0
    assert [tuple(m.shape) for m in maps] == [(4, 2, 12, 16)] * 2
    assert torch.allclose(maps[0].sum(-1), torch.ones(4, 2, 12))
    with torch.no_grad():
        for layer in model.flamingo_layers:
            layer.xattn.attn_gate.fill_(1.0)
    opened = model(images, ids, labels=ids)[1]
    assert (opened - reference.loss).abs().item() > 1e-4
    assert (model(images.flip(0), ids, labels=ids)[1] - opened).abs().item() > 1e-6  # now the image matters


def test_without_gates_the_new_layers_change_the_lm_at_once():
    lm = tiny_lm()
    images, ids = batch()
    reference = lm(input_ids=ids, labels=ids).loss
    ungated = Flamingo(lm, tiny_encoder(), cross_attention_every=1, gated=False).eval()
    assert ungated.gates() is None
    assert (ungated(images, ids, labels=ids)[1] - reference).abs().item() > 1e-4


def test_a_timm_vit_can_be_the_eyes():
    lm = tiny_lm()
    torch.manual_seed(0)
    encoder = TimmEncoder("vit_tiny_patch16_224", img_size=32, patch_size=8, in_chans=3, depth=1)  # 4 × 4 patches
    model = Flamingo(lm, encoder, cross_attention_every=4).eval()
    images, ids = batch()  # grey 28 × 28: the encoder resizes them and repeats the channel
    logits, loss, maps = model(images, ids, labels=ids, need_weights=True)
    assert (loss - lm(input_ids=ids, labels=ids).loss).abs() <= 1e-6 and maps[0].shape == (4, 2, 12, 16)


def test_training_moves_the_new_layers_and_never_the_lm():
    lm = tiny_lm()
    model = Flamingo(lm, tiny_encoder(), cross_attention_every=2).train()
    frozen = {name: p.detach().clone() for name, p in model.lm.named_parameters() if ".xattn." not in name}
    new = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    trainable = {id(p) for p in model.trainable_parameters()}
    lm_params = [p for name, p in model.lm.named_parameters() if ".xattn." not in name]
    assert len(frozen) == len(list(lm.parameters()))  # every tensor of the LM (lm_head is wte, counted once)
    assert not trainable & {id(p) for p in lm_params} and all(not p.requires_grad for p in lm_params)
    assert any(n.startswith("encoder.") for n in new) and any(n.startswith("projector.") for n in new)

    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=1e-2, weight_decay=0.1)
    images, ids = batch()
    for _ in range(3):
        loss = model(images, ids, labels=ids)[1]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    after = dict(model.lm.named_parameters())
    assert all(torch.equal(after[name], value) for name, value in frozen.items())  # bit-equal
    assert (model.gates().abs() > 0).all()  # every gate opened a little
    moved = {name for name, p in model.named_parameters() if p.requires_grad and not torch.equal(p, new[name])}
    assert {n.split(".")[0] for n in moved} == {"encoder", "projector", "lm"}
    assert any(".xattn.attn." in n for n in moved) and any(".xattn.ffn." in n for n in moved)
    # the LM called on its own (no image) is still the LM it was: the FlamingoLayers let the text through
    torch.testing.assert_close(model.lm(input_ids=ids).logits, lm(input_ids=ids).logits, rtol=0, atol=0)


def test_greedy_generation_with_closed_gates_is_the_lms_own():
    lm = tiny_lm()
    model = Flamingo(lm, tiny_encoder(), cross_attention_every=4).eval()
    images, prompt = batch(T=5)
    ours = model.generate(images, prompt, max_new_tokens=7)
    theirs = lm.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=7, do_sample=False,
                         pad_token_id=0)[:, 5:]
    assert ours.shape == (4, 7) and torch.equal(ours, theirs)
    stopped = model.generate(images, prompt, max_new_tokens=7, eos_id=int(ours[0, 0]))
    assert (stopped[0] == ours[0, 0]).all()  # row 0 wrote eos first and kept writing it


def test_bad_input_is_refused_with_a_reason():
    lm = tiny_lm()
    for k in (0, N_LAYER + 1, 1.5):
        with pytest.raises(ValueError, match="cross_attention_every must be 1 … 4"):
            Flamingo(lm, tiny_encoder(), cross_attention_every=k)
    model = Flamingo(lm, tiny_encoder())
    images, ids = batch()
    with pytest.raises(ValueError, match="28×28"):
        model(torch.rand(4, 1, 32, 32), ids)
    with pytest.raises(ValueError, match="colour"):
        model(torch.rand(4, 28, 28, 3), ids)
    with pytest.raises(ValueError, match="one image per row"):
        model(images[:3], ids)
    with pytest.raises(ValueError, match="vocabulary"):
        model(images, ids + VOCAB)
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        model(images, ids.float())
    with pytest.raises(ValueError, match="positions"):
        model(images, torch.zeros(4, 33, dtype=torch.long))
    assert all(layer.image_tokens is None for layer in model.flamingo_layers)  # no image left behind


def test_the_character_lm_encodes_bos_text_eos_and_learns():
    lm, tokenizer = build_text_lm(n_embd=32, n_layer=2, n_head=2)
    ids, labels = encode(tokenizer, ["seven is odd.", ALL_CAPTIONS[7]])
    assert ids[0, 0] == tokenizer.bos_token_id and ids[0, 14] == tokenizer.eos_token_id  # 13 characters between
    assert tokenizer.decode(ids[0, 1:14]) == "seven is odd." and (labels[0, 15:] == -100).all()
    assert (labels[1] != -100).all() and encode(tokenizer, ["seven."], eos=False)[0].shape == (1, 7)
    losses = pretrain(lm, tokenizer, steps=20, batch_size=16, lr=3e-3)
    assert sum(losses[-5:]) / 5 < losses[0] - 0.5
    assert isinstance(complete(lm, tokenizer, "seven is"), str)


def gpt2_like_tokenizer():
    """A byte-level BPE as GPT-2's is (one special token, <|endoftext|>, as bos and eos; no pad), trained here."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer, tok.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    tok.train_from_iterator(all_facts(), trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return GPT2TokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                             unk_token="<|endoftext|>")


def test_the_hub_path_runs_offline_on_a_tiny_random_gpt2(monkeypatch):
    tokenizer = gpt2_like_tokenizer()
    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")  # GPT-2's 50256
    torch.manual_seed(0)
    tiny = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                                      bos_token_id=eot, eos_token_id=eot))
    asked = []
    monkeypatch.setattr(text_lm.GPT2LMHeadModel, "from_pretrained", lambda name: asked.append(name) or tiny)
    monkeypatch.setattr(text_lm.GPT2TokenizerFast, "from_pretrained", lambda name: asked.append(name) or tokenizer)
    monkeypatch.setattr(text_lm, "check_hub", lambda: None)  # the hub counts as reached: nothing goes to the network
    lm, tok = build_text_lm(hub=True)
    assert asked == ["gpt2", "gpt2"] and lm is tiny and tok.pad_token_id is None

    ids, labels = encode(tok, ["seven is odd.", "the number after nine is ten."])
    assert ids[0, 0] == eot and tok.decode(ids[0, 1:]).startswith("seven is odd.")
    assert (ids[0][labels[0] == -100] == eot).all()  # padded with <|endoftext|>, which the loss ignores
    losses = pretrain(lm, tok, steps=2, batch_size=8)
    assert all(torch.isfinite(torch.tensor(losses)))
    model = Flamingo(lm, tiny_encoder(), cross_attention_every=1).eval()
    images = torch.rand(2, 1, 28, 28)
    assert (model(images, ids, labels=labels)[1] - lm(input_ids=ids, labels=labels).loss).abs() <= 1e-6


def test_cached_generation_equals_rerunning_the_whole_sequence():
    lm = tiny_lm(dropout=0.0)
    model = Flamingo(lm, tiny_encoder(), cross_attention_every=2).eval()
    with torch.no_grad():
        for layer in model.flamingo_layers:  # open, so the image changes what is written
            layer.xattn.attn_gate.fill_(2.0), layer.xattn.ffn_gate.fill_(1.0)
    images, prompt = batch(T=5)
    cached = model.generate(images, prompt, max_new_tokens=12)
    assert torch.equal(cached, model.generate(images, prompt, max_new_tokens=12, use_cache=False))
    assert not torch.equal(cached, model.generate(images.flip(0), prompt, max_new_tokens=12))  # the image matters
    assert model.generate(images, prompt, max_new_tokens=40).shape == (4, 32 - 5)  # stops at the last position
