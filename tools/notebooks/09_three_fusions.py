# DRAFT of notebook 09 (issue #12), not built yet: `build.py` builds only files named NN_*.py. It needs the
# three trained models of `python tests/benchmarks/compare_fusions.py --save DIR` shipped (FUSIONS below), then
# rename to 09_three_fusions.py, build, and time it (bar: <= 3 min on the 2-core CPU). Sections 5 and 6 are the
# slow ones: measure them first.

# %% [markdown]
# # 09 · Three ways to let text see
#
# Since notebook 04 our captioner has read the image one way: the decoder's text **cross-attends** to the
# patch embeddings, the design of Flamingo and Llama 3.2 Vision. The multimodal models you have heard of
# split three ways, and NVLM's paper compares exactly these three:
#
# - **cross-attention** (Flamingo, Llama 3.2 Vision): new attention layers in the decoder read the image;
#   the image never enters the text's sequence;
# - **a prefix** (LLaVA, and most open models since): the encoder's patch embeddings, projected to the
#   decoder's width, are placed *before* the text as extra tokens, and the decoder's ordinary causal
#   self-attention sees them. No new layer: any decoder-only language model can take them;
# - **raw patches** (Fuyu): no vision encoder at all. Each patch's pixels, flattened, go through one linear
#   layer and straight into the decoder as prefix tokens. The decoder does all the seeing.
#
# This notebook builds the two new ones from scratch, proves them equal to the library (and the prefix
# design to Hugging Face's GPT-2), trains the three side by side on the same task with the same budget,
# and measures what each costs and gives.

# %% [markdown]
# ## What you will learn
#
# - Put an image into a decoder-only transformer as tokens: positions, the causal mask, where the logits
#   are read.
# - Why a prefix is "free" in parameters but not in compute: every text token's attention gets N keys
#   longer, and the image tokens go through every decoder layer.
# - Prefill the image once into the KV cache, so generation stays one position per character.
# - Read a prefix model's attention maps out of its *self*-attention, and what renormalising them hides.
# - Compare designs honestly: same parameter count (within 10%), same data, recipe and steps.

# %%
%matplotlib inline
%config InlineBackend.figure_format = "png"
import json
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode
from transformers import GPT2LMHeadModel

import crossmodal
from crossmodal import viz
from crossmodal.checks import check
from crossmodal.data import caption_tokens
from crossmodal.decoder import KVCache, gpt2_config_for, load_gpt2_weights
from crossmodal.fusion import comparable_configs, with_fusion
from crossmodal.train import TrainConfig, default_model_config, train

torch.manual_seed(0)
torch.set_num_threads(2)  # fixed, so every run gives the same numbers
plt.rcParams["figure.dpi"] = 100

train_images, train_labels = crossmodal.load_mnist(train=True)
test_images, test_labels = crossmodal.load_mnist(train=False)
configs = comparable_configs(default_model_config())
for name, config in configs.items():
    model = crossmodal.Captioner.for_mnist(config)
    print(f"{name:6s}: {sum(p.numel() for p in model.parameters()):>8,} parameters, decoder depth "
          f"{config.decoder.depth}, image tokens in the decoder's sequence: {model.decoder.image_tokens}")

# %% [markdown]
# One setting, `CaptionerConfig.fusion`, picks the design; `comparable_configs` gives the three at about
# the same size. The prefix model has no cross-attention, so one more decoder layer buys its parameters
# back; the raw model has no ViT (160,224 parameters gone), so its decoder is three times as deep: it has
# to do the encoder's work too.

# %% [markdown]
# ## 1 · A prefix, from scratch
#
# LLaVA's recipe in four lines: encode the image, project each patch to the decoder's width, put the N
# patch vectors before the token embeddings, add positions 0 … N + T − 1, and run the decoder's blocks as
# usual. The causal mask needs no change: the image comes first, so every text token sees all of it, and
# each image token sees the image tokens before it. The logits we train on are the text's: position
# N + t predicts token t + 1.

# %%
torch.manual_seed(0)
prefix_model = crossmodal.Captioner.for_mnist(configs["prefix"]).eval()
images = test_images[:4]
tokens = caption_tokens(prefix_model.tokenizer)[test_labels[:4]][:, :-1]  # (4, T): <bos> + caption


def prefix_logits(model, images, tokens):
    d = model.decoder
    memory = model.encode_images(images)  # (B, N, dim): the ViT's patches, projected
    x = torch.cat([memory, d.wte(tokens)], dim=1)  # (B, N + T, dim): the image first
    x = x + d.wpe.weight[: x.size(1)]  # positions 0 … N + T − 1
    for block in d.blocks:
        x = block(x)  # causal self-attention over image and text together
    return d.lm_head(d.ln_f(x[:, memory.size(1) :]))  # (B, T, vocab): the text's predictions only


with torch.no_grad():
    mine, library = prefix_logits(prefix_model, images, tokens), prefix_model(images, tokens)
difference = (mine - library).abs().max().item()
print(f"from scratch vs the library: {difference:.1e}")
check("the prefix model built here equals the library's", difference < 1e-5, f"{difference:.2e}")

# %% [markdown]
# And the decoder part equals Hugging Face's GPT-2 fed `inputs_embeds`: image embeddings, then the token
# embeddings. This is exactly how LLaVA's code hands an image to a language model.

# %%
gpt2 = GPT2LMHeadModel(gpt2_config_for(prefix_model.config.decoder, prefix_model.decoder.image_tokens)).eval()
load_gpt2_weights(prefix_model.decoder, gpt2)  # GPT-2's random weights into our decoder
with torch.no_grad():
    memory = prefix_model.encode_images(images)
    embeds = torch.cat([memory, gpt2.transformer.wte(tokens)], dim=1)
    theirs = gpt2(inputs_embeds=embeds).logits[:, memory.size(1) :]
    ours = prefix_model.decoder(tokens, memory)
difference = (theirs - ours).abs().max().item()
print(f"our prefix decoder vs GPT-2 with inputs_embeds: {difference:.1e}")
check("equal to GPT-2 with inputs_embeds", difference < 1e-4, f"{difference:.2e}")

# %% [markdown]
# ## 2 · Raw patches, from scratch
#
# Fuyu throws the encoder away. A patch of 4 × 4 pixels is 16 numbers; one linear layer maps them to the
# decoder's width. Where the patch lies must be added, or the decoder would read a bag of patches:
# `RawPatches` adds a learned vector for its row and one for its column (Fuyu marks the end of each row
# with a special newline token instead; both tell the decoder where a row ends).

# %%
torch.manual_seed(0)
raw_model = crossmodal.Captioner.for_mnist(configs["raw"]).eval()
enc = raw_model.encoder
x = (images - enc.mean[0]) / enc.std[0]  # MNIST's normalisation, as encode_images does
p = raw_model.config.vision.patch_size
patches = x.unfold(2, p, p).unfold(3, p, p)  # (B, 1, 7, 7, p, p)
patches = patches.flatten(1, 3).flatten(2)  # (B, 49, p·p): rows of patches, read left to right
W, b = enc.patch_embed.proj.weight.flatten(1), enc.patch_embed.proj.bias  # the conv is this linear map
position = (enc.row[:, None] + enc.column[None]).flatten(0, 1)  # (49, dim): row + column
mine = patches @ W.T + b + position
with torch.no_grad():
    difference = (mine - raw_model.encode_images(images)).abs().max().item()
print(f"from scratch vs RawPatches: {difference:.1e}")
check("the raw patch embedding built here equals the library's", difference < 1e-5, f"{difference:.2e}")

# %% [markdown]
# ## 3 · Generation: prefill the image once
#
# With a prefix, the first call of the decoder reads N image tokens and `<bos>`; their keys and values go
# into the KV cache like any token's, and every later step feeds one new character. The cache of a prefix
# model is N positions longer than a cross-attention model's self-attention cache; the cross-attention
# model keeps the image's keys and values too, but only in its cross-attention layers.

# %%
cache = KVCache(prefix_model.config.decoder.depth)
with torch.no_grad():
    memory = prefix_model.encode_images(images[:1])
    prefix_model.decoder(tokens[:1, :1], memory, cache)  # the prefill: 49 image tokens + <bos>
    after_prefill = cache.length
    prefix_model.decoder(tokens[:1, 1:2], memory, cache)  # one new character
print(f"after the prefill the cache holds {after_prefill} positions; after one more character, {cache.length}")
check("the prefill caches the image and <bos>", after_prefill == prefix_model.decoder.image_tokens + 1)
same = all(torch.equal(m.generate(test_images[:16]), m.generate(test_images[:16], use_cache=False))
           for m in (prefix_model, raw_model))
check("cached generation writes what uncached generation writes, for both new designs", same)

# %% [markdown]
# ## 4 · Where a prefix model looks
#
# A cross-attention map sums to 1 over the patches: the layer has nothing else to look at. A prefix
# model's text attends to the image tokens *and* to the text before it, in one softmax. The library's maps
# for it are the image part of that softmax, **renormalised** to sum to 1 over the patches, so the same
# viewers work; what renormalising hides is *how much* the text looked at the image at all. Here is that
# share, measured from the raw self-attention weights of an untrained prefix model (a trained one: below).

# %%
def image_share(model, images, tokens):
    """Share of each text token's self-attention that goes to the image tokens, per layer: (layers,)."""
    d, shares = model.decoder, []
    with torch.no_grad():
        x = torch.cat([model.encode_images(images), d.wte(tokens)], dim=1)
        x = x + d.wpe.weight[: x.size(1)]
        N = d.image_tokens
        for block in d.blocks:
            _, _, w = block.attn(block.ln_1(x), is_causal=True, need_weights=True)  # (B, H, N + T, N + T)
            shares.append(w[:, :, N:, :N].sum(-1).mean().item())
            x = block(x)
    return shares


print("untrained prefix model, share of attention on the image per layer:",
      [f"{s:.0%}" for s in image_share(prefix_model, images, tokens)])

# %% [markdown]
# ## 5 · Side by side, on the same budget
#
# The three designs, each trained for the same 150 steps of 64 captions, with the same seed, data order
# and augmentation. Watch the loss against steps *and* against seconds: the designs cost differently per
# step.

# %%
# NBVAL_IGNORE_OUTPUT
# (losses and seconds come out of training: they differ between CPUs)
runs = {}
for name, config in configs.items():
    torch.manual_seed(0)
    model = crossmodal.Captioner.for_mnist(config)
    history = train(model, TrainConfig(epochs=1, batch_size=64, warmup_steps=30),
                    (train_images[: 64 * 150], train_labels[: 64 * 150]))
    runs[name] = history
    print(f"{name:6s}: {len(history['loss'])} steps in {history['train_seconds']:.0f} s, "
          f"last 20 steps' loss {sum(history['loss'][-20:]) / 20:.3f}")

fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3))
for name, history in runs.items():
    seconds = torch.linspace(0, history["train_seconds"], len(history["loss"]))
    a.plot(history["loss"], lw=0.8, label=name)
    b.plot(seconds, history["loss"], lw=0.8, label=name)
a.set_xlabel("step"), b.set_xlabel("seconds of training"), a.set_ylabel("loss (nats per character)")
a.legend(), a.set_yscale("log"), b.set_yscale("log")
plt.show()

# %%
check("every design learns: each run's last losses are below a quarter of its first",
      all(sum(h["loss"][-20:]) / 20 < sum(h["loss"][:5]) / 5 / 4 for h in runs.values()))

# %% [markdown]
# ## 6 · The measured comparison
#
# The short runs above show the start. The benchmark `tests/benchmarks/compare_fusions.py` trains each
# design for whole epochs with the default recipe and measures the rest. Its results, stored with the three
# trained models:

# %%
FUSIONS = crossmodal.pretrained.CHECKPOINTS / "fusions"  # written by compare_fusions.py --save
record = json.loads((FUSIONS / "compare_fusions.json").read_text())
print(record["command"], f"({record['device']})")
rows = record["compare"]
for key in ("parameters", "exact_match_first_epoch", "exact_match_last_epoch", "steps_per_second",
            "caption_latency_ms", "decoder_positions", "caption_mflops", "kv_cache_kib", "saved_activations_mib",
            "attention_on_ink", "ink_chance"):
    print(f"{key:24s}" + "".join(f"{rows[n][key]:>14.4g}" for n in rows))

# %% [markdown]
# ## 7 · Cost against the number of patches
#
# MNIST's 49 patches are few. Real images have hundreds (LLaVA-1.5: 576 per image) to thousands, and this
# is where the designs part ways. FLOPs are counted exactly (no timing noise): one caption's forward pass
# for images of 28 to 112 pixels, 49 to 784 patches.

# %%
sizes, flops = (28, 56, 84, 112), {name: [] for name in configs}
for size in sizes:
    for name, config in configs.items():
        config = with_fusion(config, name)
        config.vision.image_size = size
        torch.manual_seed(0)
        model = crossmodal.Captioner.for_mnist(config).eval()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.rand(1, 1, size, size), tokens[:1])
        flops[name].append(counter.get_total_flops() / 1e6)
patches = [(s // 4) ** 2 for s in sizes]
for name in configs:
    print(f"{name:6s}: " + ", ".join(f"{n} patches {f:,.0f} MFLOP" for n, f in zip(patches, flops[name])))
fig, ax = plt.subplots(figsize=(5, 3))
for name in configs:
    ax.plot(patches, flops[name], "o-", label=name)
ax.set_xlabel("patches"), ax.set_ylabel("MFLOP, one caption's forward"), ax.legend()
plt.show()

# %% [markdown]
# ## 8 · The three trained models' maps, for the same image

# %%
trained = {name: crossmodal.Captioner.from_pretrained(FUSIONS / name) for name in configs}
image = test_images[0]
for name, model in trained.items():
    caption = model.caption(image)
    print(name, repr(caption.text))
    viz.plot_caption_strip(caption)
    plt.show()

# %% [markdown]
# ## 9 · What the real systems chose, and why
#
# - **Flamingo** (2022) kept a large language model frozen and added gated cross-attention layers: the LM's
#   text ability is untouched, and the image costs only where the new layers read it. Its Perceiver
#   resampler cut each image to 64 tokens first.
# - **LLaVA** (2023) chose the prefix: a linear projector (an MLP from LLaVA-1.5 on) from CLIP's ViT into
#   Vicuna's embedding space. Nothing in the LM changes shape, so any LM works, and the image tokens take
#   part in all the LM's reasoning, at the price of a sequence 576 tokens longer.
# - **Fuyu** (2023) dropped the encoder: raw patches linearly projected, any resolution, one transformer.
# - **Llama 3.2 Vision** (2024) went back to cross-attention adapters on a frozen Llama 3.1, to keep its text
#   behaviour exactly.
# - **NVLM** (2024) compared them at scale: the decoder-only prefix was better at OCR and reasoning,
#   cross-attention cheaper on high-resolution images; its hybrid puts a thumbnail in the sequence and the
#   tiles behind cross-attention.

# %% [markdown]
# ## Exercise — the KV cache by formula
#
# Write `kv_cache_floats(config, N, T)`: how many floats a model's KV cache holds after reading an image
# of N patches and T text tokens, for each fusion. Each cached layer keeps one key and one value vector of
# the decoder's width per position. Check it against the cache a real model fills.

# %% [solution]
# Solution (collapsed: click to expand)
def solution_kv_cache_floats(config, N, T):
    d = config.decoder
    if config.fusion == "cross":
        cross_layers = sum(d.has_cross_attention(i) for i in range(d.depth))
        return 2 * d.dim * (d.depth * T + cross_layers * N)  # text in every layer, the image in the cross layers
    return 2 * d.dim * d.depth * (N + T)  # image and text in every layer

# %%
def kv_cache_floats(config, N, T):
    return solution_kv_cache_floats(config, N, T)  # ← replace with your code


for name, config in configs.items():
    torch.manual_seed(0)
    model = crossmodal.Captioner.for_mnist(config).eval()
    cache = KVCache(config.decoder.depth)
    with torch.no_grad():
        model.decoder(tokens[:1], model.encode_images(images[:1]), cache)
    measured = sum(t.numel() for kv in cache.self_kv + cache.cross_kv if kv is not None for t in kv)
    assert kv_cache_floats(config, 49, tokens.size(1)) == measured, f"{name}: the cache holds {measured:,} floats"
print("Exercise ✓ — your formula counts every design's cache")

# %% [markdown]
# ## Summary
#
# - Cross-attention, a prefix and raw patches are three answers to one question: where does the image
#   enter the language model?
# - A prefix needs no new layer (GPT-2 takes it through `inputs_embeds`) but lengthens every sequence by N;
#   raw patches drop the encoder and make the decoder do the seeing.
# - Compared at the same size, data and budget, they differ in what they cost per step and per caption,
#   and in how that cost grows with the number of patches.
#
# ## References
#
# - Alayrac et al. (2022), [Flamingo: a Visual Language Model for Few-Shot Learning](https://arxiv.org/abs/2204.14198)
# - Liu et al. (2023), [Visual Instruction Tuning](https://arxiv.org/abs/2304.08485) — LLaVA
# - Liu et al. (2023), [Improved Baselines with Visual Instruction Tuning](https://arxiv.org/abs/2310.03744) — LLaVA-1.5
# - Bavishi et al. (2023), [Fuyu-8B: A Multimodal Architecture for AI Agents](https://www.adept.ai/blog/fuyu-8b)
# - Dai et al. (2024), [NVLM: Open Frontier-Class Multimodal LLMs](https://arxiv.org/abs/2409.11402)
# - Grattafiori et al. (2024), [The Llama 3 Herd of Models](https://arxiv.org/abs/2407.21783) — Llama 3.2 Vision's adapters
# - Laurençon et al. (2024), [What matters when building vision-language models?](https://arxiv.org/abs/2405.02246) — Idefics2: cross-attention vs fully autoregressive
