"""LLaVA's splice (nn/splice.py, fusion "splice"): the image's embeddings written in at the <image> tokens equal
writing them into inputs_embeds by hand (and GPT-2 fed those), equal the prefix decoder when the placeholders
come first, and give the same tokens and maps cached and uncached, batched and one by one."""

import pytest
import torch
from transformers import GPT2LMHeadModel

from crossmodal import Decoder, DecoderConfig, KVCache, VisionLanguageModel
from crossmodal.nn.config import check_config
from crossmodal.nn.decoder import gpt2_config_for, load_gpt2_weights
from crossmodal.nn.decoding import sample
from crossmodal.nn.fusion import with_fusion
from crossmodal.nn.splice import check_placeholders, splice_image
from crossmodal.nn.tokenizer import build_byte_tokenizer
from crossmodal.training.warm_start import warm_start

from .conftest import tiny_config

IMAGE = 3  # the placeholder's id in the bare decoders below (any id the text does not use)


def splice_decoder(seed=0, vocab=40, block_size=40, depth=2, dim=32, heads=4):
    torch.manual_seed(seed)
    cfg = DecoderConfig(vocab_size=vocab, block_size=block_size, dim=dim, depth=depth, num_heads=heads,
                        cross_attention_every=0)
    return Decoder(cfg, image_token_id=IMAGE).eval()


def text_tokens(B, T, seed=0, vocab=40):
    """Random text ids that never hold the placeholder."""
    t = torch.randint(4, vocab, (B, T), generator=torch.Generator().manual_seed(seed))
    return t


def by_hand(decoder, tokens, memory):
    """inputs_embeds written the explicit way: row b's k-th placeholder gets memory[b, k], one at a time."""
    embeds = decoder.wte(tokens).clone()
    for b in range(tokens.size(0)):
        k = 0
        for t in range(tokens.size(1)):
            if tokens[b, t] == IMAGE:
                embeds[b, t] = memory[b, k]
                k += 1
    return embeds


def test_splice_image_equals_writing_the_rows_by_hand_in_one_pass_or_in_pieces():
    decoder, N = splice_decoder(), 5
    tokens = text_tokens(3, 14)
    tokens[0, 1:6] = IMAGE  # after <bos>
    tokens[1, 4:9] = IMAGE  # later, as a chat template puts it
    tokens[2, [0, 3, 7, 8, 13]] = IMAGE  # scattered: still in order
    memory = torch.randn(3, N, 32)
    with torch.no_grad():
        expected = by_hand(decoder, tokens, memory)
        whole = splice_image(decoder.wte(tokens), tokens == IMAGE, memory)
        assert torch.equal(whole, expected)
        read, pieces = torch.zeros(3, dtype=torch.long), []
        for a, b in [(0, 3), (3, 4), (4, 10), (10, 14)]:  # cuts through the image, as a cached prompt is read
            chunk = tokens[:, a:b]
            pieces.append(splice_image(decoder.wte(chunk), chunk == IMAGE, memory, read))
            read += (chunk == IMAGE).sum(1)
    assert torch.equal(torch.cat(pieces, dim=1), expected)


@pytest.mark.parametrize("depth, heads, N", [(1, 2, 4), (2, 4, 9), (3, 1, 16)])
def test_the_decoder_equals_gpt2_fed_the_spliced_inputs_embeds(depth, heads, N):
    """The proof against the reference: our splice decoder with GPT-2's weights gives GPT-2's logits for inputs_embeds
    written by hand; with no placeholder, GPT-2's logits for the plain ids (a causal LM)."""
    torch.manual_seed(depth)
    cfg = DecoderConfig(vocab_size=40, block_size=32, dim=32, depth=depth, num_heads=heads, cross_attention_every=0)
    gpt2 = GPT2LMHeadModel(gpt2_config_for(cfg)).eval()
    ours = load_gpt2_weights(Decoder(cfg, image_token_id=IMAGE), gpt2).eval()
    tokens, memory = text_tokens(2, 26, seed=depth), torch.randn(2, N, 32)
    tokens[0, 1 : 1 + N] = IMAGE
    tokens[1, 3 : 3 + N] = IMAGE
    with torch.no_grad():
        expected = gpt2(inputs_embeds=by_hand(ours, tokens, memory)).logits
        assert (ours(tokens, memory) - expected).abs().max() <= 1e-4
        text = text_tokens(2, 20, seed=9)
        assert (ours(text) - gpt2(input_ids=text).logits).abs().max() <= 1e-4


def test_placeholders_first_equal_the_prefix_decoder():
    """With the N placeholders before <bos>, the sequence is the prefix decoder's exactly: image, then <bos> text,
    the same positions and weights. The splice returns every position's logits; the prefix the text's only."""
    N, decoder = 9, splice_decoder(block_size=9 + 20)
    prefix = Decoder(DecoderConfig(vocab_size=40, block_size=20, dim=32, depth=2, num_heads=4,
                                   cross_attention_every=0), image_tokens=N).eval()
    prefix.load_state_dict(decoder.state_dict())  # the same tensors: wpe is N + 20 rows in both
    text, memory = text_tokens(3, 15), torch.randn(3, N, 32)
    spliced = torch.cat([torch.full((3, N), IMAGE), text], dim=1)
    with torch.no_grad():
        ours, our_maps = decoder(spliced, memory, need_weights=True)
        theirs, their_maps = prefix(text, memory, need_weights=True)
    assert (ours[:, N:] - theirs).abs().max() <= 1e-5
    for a, b in zip(our_maps, their_maps):
        assert (a[:, :, N:] - b).abs().max() <= 1e-5


def test_placeholders_after_bos_equal_a_prefix_of_bos_then_the_image():
    """With <bos> first and the N placeholders right after it, the sequence is a prefix decoder's of N + 1 tokens
    whose first is <bos>'s embedding: the text after them gets the same logits."""
    N, bos, decoder = 6, 1, splice_decoder(block_size=7 + 16)
    prefix = Decoder(DecoderConfig(vocab_size=40, block_size=16, dim=32, depth=2, num_heads=4,
                                   cross_attention_every=0), image_tokens=N + 1).eval()
    prefix.load_state_dict(decoder.state_dict())
    text, memory = text_tokens(2, 12, seed=3), torch.randn(2, N, 32)
    spliced = torch.cat([torch.full((2, 1), bos), torch.full((2, N), IMAGE), text], dim=1)
    with torch.no_grad():
        bos_then_image = torch.cat([decoder.wte.weight[bos].expand(2, 1, 32), memory], dim=1)  # (2, N + 1, dim)
        assert (decoder(spliced, memory)[:, N + 1 :] - prefix(text, bos_then_image)).abs().max() <= 1e-5


def test_cached_pieces_equal_one_pass_and_maps_read_the_image():
    decoder, N = splice_decoder(seed=2), 5
    tokens = text_tokens(2, 16, seed=4)
    tokens[:, 2 : 2 + N] = IMAGE
    memory = torch.randn(2, N, 32)
    with torch.no_grad():
        whole, whole_maps = decoder(tokens, memory, need_weights=True)
        cache, steps, maps = KVCache(2), [], []
        for a, b in [(0, 4), (4, 5), (5, 9)] + [(t, t + 1) for t in range(9, 16)]:  # the image read in three calls
            logits, m = decoder(tokens[:, a:b], memory, cache, need_weights=True)
            steps.append(logits)
            maps.append(m[1])
    assert cache.length == 16 and cache.image_keys.sum().item() == 2 * N
    assert torch.allclose(torch.cat(steps, dim=1), whole, atol=1e-5)
    assert torch.allclose(torch.cat(maps, dim=2), whole_maps[1], atol=1e-5)
    assert whole_maps[0].shape == (2, 4, 16, N)
    assert torch.allclose(whole_maps[0][:, :, 2:].sum(-1), torch.ones(2, 4, 14), atol=1e-5)  # from the image on
    assert (whole_maps[0][:, :, :2] == 0).all()  # before the image there is nothing of it to see


def test_sample_with_prompts_of_different_lengths_equals_each_alone():
    decoder, N = splice_decoder(seed=5), 4
    memory = torch.randn(3, N, 32)
    starts = [[1, 5] + [IMAGE] * N + [7], [1, 5] + [IMAGE] * N + [8, 9, 10, 11], [1] + [IMAGE] * N]
    limit = torch.tensor([6, 6, 6])
    cached, maps, _ = sample(decoder, memory, starts, limit, eos_id=2, pad_id=0, return_attention=True)
    uncached, uncached_maps, _ = sample(decoder, memory, starts, limit, 2, 0, use_cache=False, return_attention=True)
    assert torch.equal(cached, uncached) and torch.allclose(maps, uncached_maps, atol=1e-5)
    assert maps.shape[2:] == (2, 4, N)
    for i in range(3):
        alone, alone_maps, _ = sample(decoder, memory[i : i + 1], starts[i : i + 1], limit[:1], 2, 0,
                                      return_attention=True)
        n = alone.size(1)
        assert torch.equal(cached[i, :n], alone[0]) and torch.allclose(maps[i, :n], alone_maps[0], atol=1e-5)


def test_generation_never_writes_a_placeholder():
    """Writing <image> would ask for an image row that does not exist: it is never picked, however likely."""
    decoder, N = splice_decoder(seed=6), 4
    with torch.no_grad():
        decoder.ln_f.weight.zero_()
        decoder.ln_f.bias.copy_(torch.randn(32))
        decoder.wte.weight[IMAGE] = 50 * decoder.ln_f.bias  # tied to lm_head: <image> the likeliest token everywhere
    starts = [[1] + [IMAGE] * N]
    tokens, _, probs = sample(decoder, torch.randn(1, N, 32), starts, torch.tensor([5]), 2, 0)
    assert tokens.numel() and (tokens != IMAGE).all()


def test_wrong_placeholders_are_refused():
    decoder, memory = splice_decoder(), torch.randn(1, 4, 32)
    tokens = torch.tensor([[1] + [IMAGE] * 5])
    with pytest.raises(ValueError, match="more <image> tokens than the image"):
        decoder(tokens, memory)
    with pytest.raises(ValueError, match="no image was given"):
        decoder(torch.tensor([[1, IMAGE]]))
    with pytest.raises(ValueError, match="holds 3 <image> tokens"):
        check_placeholders(torch.tensor([[1, IMAGE, IMAGE, IMAGE, 5]]), IMAGE, 4)
    check_placeholders(torch.tensor([[1, 5, 6], [1, 7, 8]]), IMAGE, 4)  # text alone is fine
    with pytest.raises(ValueError, match="neither a prefix nor cross-attention"):
        Decoder(DecoderConfig(vocab_size=40, cross_attention_every=1), image_token_id=IMAGE)
    with pytest.raises(ValueError, match="neither a prefix nor cross-attention"):
        Decoder(DecoderConfig(vocab_size=40, cross_attention_every=0), image_tokens=4, image_token_id=IMAGE)


# ---- a VisionLanguageModel that splices (fusion "splice"), with the byte-level tokenizer

TEXTS = ["What's the second digit?", "Read the number backwards.", "Is there a 7?", "2026 has 7: no"] * 5


def splice_model(seed=0, block_size=48):
    torch.manual_seed(seed)
    config = with_fusion(tiny_config(block_size=block_size), "splice")
    return VisionLanguageModel.for_tokenizer(build_byte_tokenizer(TEXTS, vocab_size=300), config).eval()


def pictures(count, seed=0):
    x = torch.zeros(count, 1, 28, 28)
    g = torch.Generator().manual_seed(seed)
    for i in range(count):
        top, left = torch.randint(2, 14, (2,), generator=g).tolist()
        x[i, 0, top : top + 12, left : left + 4] = 1.0
    return x


def test_the_model_reads_the_image_at_its_tokens_in_the_chat_template():
    model = splice_model()
    image_id, N = model.config.image_id, model.image_token_count
    assert image_id == model.tokenizer.convert_tokens_to_ids("<image>") and N == 16
    ids = model.prompt_ids("2nd? ¿Qué? 数 😀")  # no character is refused
    user = model.tokenizer.convert_tokens_to_ids("<|user|>")
    assert ids[: N + 1] == [user] + [image_id] * N  # <|user|><image>×N, then the question
    assert ids[-1] == model.tokenizer.convert_tokens_to_ids("<|assistant|>")
    a, b = (model(pictures(1, s), torch.tensor([[model.config.bos_id] + ids])) for s in (0, 1))
    assert (a - b)[:, N + 1 :].abs().max() > 1e-4  # the text after the image sees it
    assert (a - b)[:, :2].abs().max() == 0  # <bos> and <|user|> come before it


def test_model_generation_cached_uncached_batched_and_beams():
    model = splice_model(seed=1)
    images, prompts = pictures(3), ["Is there a 7?", "Read the number backwards, please.", "ok"]
    rows = [model.prompt_ids(p) for p in prompts]
    cached, maps = model.generate(images, prompt=rows, return_attention=True, max_new_tokens=6)
    uncached, uncached_maps = model.generate(images, prompt=rows, use_cache=False, return_attention=True,
                                             max_new_tokens=6)
    assert torch.equal(cached, uncached) and torch.allclose(maps, uncached_maps, atol=1e-5)
    for i in range(3):
        alone = model.generate(images[i : i + 1], prompt=rows[i], max_new_tokens=6)
        assert torch.equal(cached[i, : alone.size(1)], alone[0])
    assert torch.equal(model.generate(images, num_beams=2, max_new_tokens=5),
                       model.generate(images, num_beams=2, max_new_tokens=5, use_cache=False))  # a caption: no prompt


def test_generate_text_score_and_round_trip(tmp_path):
    model = splice_model(seed=2)
    images = pictures(2)
    written = model.generate_text(images, ["What's the largest digit?", "Ünïcode?"])
    for w in written:
        assert w.attention.shape == (len(w.pieces), 2, 2, 4, 4) and w.probs.shape == (len(w.pieces),)
        if w.pieces:
            assert torch.allclose(w.attention.sum((-2, -1)), torch.ones(()), atol=1e-5)
    scored = model.score(images[0], "2026 has 7: no")
    assert scored.attention.shape[0] == len(scored.pieces) == len(model.tokenizer("2026 has 7: no",
                                                                                  add_special_tokens=False)["input_ids"])
    model.save_pretrained(tmp_path / "m")
    again = VisionLanguageModel.from_pretrained(tmp_path / "m")
    assert again.config.fusion == "splice" and again.config.image_id == model.config.image_id
    assert again.tokenizer.chat_template == model.tokenizer.chat_template
    assert [w.text for w in again.generate_text(images, "Is there a 7?")] == \
        [w.text for w in model.generate_text(images, "Is there a 7?")]


def test_text_alone_runs_as_a_language_model():
    model = splice_model(seed=3)
    ids = torch.tensor([model.tokenizer("Read the number backwards.")["input_ids"]])
    with torch.no_grad():
        assert torch.equal(model(None, ids), model.decoder(ids))


def test_bad_splice_settings_are_refused(tmp_path):
    config = with_fusion(tiny_config(block_size=48), "splice")
    with pytest.raises(ValueError, match="set image_id"):
        check_config(config)  # image_id -1: the tokenizer's <image> was never given
    with pytest.raises(ValueError, match="set image_id"):
        VisionLanguageModel(config)
    config.image_id = 1  # <bos>
    with pytest.raises(ValueError, match="set image_id"):
        check_config(config)
    config.image_id = 999
    with pytest.raises(ValueError, match="image_id must be -1"):
        check_config(config)
    short = with_fusion(tiny_config(block_size=16), "splice")
    with pytest.raises(ValueError, match="must hold them and the text"):
        VisionLanguageModel.for_tokenizer(build_byte_tokenizer(TEXTS, 300), short)
    model = splice_model()
    with pytest.raises(ValueError, match="holds 2 <image> tokens"):
        model.generate(pictures(1), prompt=[model.config.image_id] * 2)
    with pytest.raises(ValueError, match="holds 1 <image> tokens"):
        model(pictures(1), torch.tensor([[model.config.bos_id, model.config.image_id, 9]]))
    cross = VisionLanguageModel.for_tokenizer(model.tokenizer, tiny_config(block_size=48))
    with pytest.raises(ValueError, match="cannot warm-start a 'cross' model from a 'splice' one"):
        warm_start(cross, model)
    report = warm_start(splice_model(seed=9), model)
    assert not report["skipped"]  # a splice model from a splice model: every weight
    model.config.image_id = 4  # the config names another token (<|assistant|>) than the tokenizer's <image> (5)
    with pytest.raises(ValueError, match="image_id is 4 in the config but 5"):
        VisionLanguageModel.from_config(model.config, model.tokenizer)
