# %% [markdown]
# # 09 · Three ways to let text see
#
# Since notebook 04 our captioner has read the image one way: the decoder's text **cross-attends** to the
# patch embeddings, the design of Flamingo and Llama 3.2 Vision. The multimodal models you have heard of
# split, broadly, three ways (NVLM's paper compares the first two at scale, with a hybrid of them; Fuyu is the
# third):
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
import matplotlib.pyplot as plt
import torch
from matplotlib.colors import ListedColormap
from torch.utils.flop_counter import FlopCounterMode
from transformers import GPT2LMHeadModel

from crossmodal import viz
from crossmodal.checks import check, exercise  # a claim about a measured result; an exercise's check
from crossmodal.nn.config import FUSIONS
from crossmodal.nn.decoder import KVCache, gpt2_config_for, load_gpt2_weights
from crossmodal.nn.fusion import comparable_configs, with_fusion
from crossmodal.pretrained import load_fusion, record
from crossmodal.tasks.captions import CaptionBatches, caption_tokens, captioner_config, new_captioner
from crossmodal.training import TrainConfig, train

torch.manual_seed(0)
torch.set_num_threads(2)  # fixed, so every run gives the same numbers
plt.rcParams["figure.dpi"] = 100

train_images, train_labels = crossmodal.load_mnist(train=True)
test_images, test_labels = crossmodal.load_mnist(train=False)
configs = comparable_configs(captioner_config())
for name, config in configs.items():
    model = new_captioner(config)
    print(f"{name:6s}: {sum(p.numel() for p in model.parameters()):>8,} parameters, decoder depth "
          f"{config.decoder.depth}, image tokens in the decoder's sequence: {model.decoder.image_tokens}")

# %% [markdown]
# One setting, `VLMConfig.fusion`, picks the design; `comparable_configs` gives the three at about
# the same size. The prefix model has no cross-attention, so one more decoder layer buys its parameters
# back; the raw model has no ViT (160,224 parameters gone), so its decoder is three times as deep: it has
# to do the encoder's work too.

# %% [markdown]
# ## 0 · The three at a glance
#
# One picture says what differs: **who may attend to whom** inside the decoder, drawn for a toy
# image of 6 patches and a text of 5 tokens (rows are queries, columns the keys they may read). In the
# cross-attention design only text tokens are queries, and the image's columns belong to a *separate*
# attention layer. In the two prefix designs the image tokens are part of the one causal sequence: they are
# queries too, they go through every decoder layer, and each text token's softmax shares its weight
# between image and text. Above each panel, **where the parameters sit**, counted in the three models above.

# %%
def who_sees_whom(fusion, N=6, T=5):
    """Rows: the decoder's queries; columns: the keys each may read. 0: none, 1: a text key, 2: an image key."""
    if fusion == "cross":  # causal self-attention over the text; cross-attention (its own layer) to every patch
        return torch.cat([torch.full((T, N), 2.0), torch.ones(T, T).tril()], dim=1)  # (T, N + T)
    causal = torch.ones(N + T, N + T).tril()  # one sequence: image first, then text
    kind = torch.cat([torch.full((N,), 2.0), torch.ones(T)])  # what each key is
    return causal * kind  # (N + T, N + T)


def parameter_split(model):
    d = model.decoder
    cross = sum(p.numel() for n, p in d.named_parameters() if "cross" in n)
    return {"vision encoder": sum(p.numel() for p in model.encoder.parameters()),
            "projector": sum(p.numel() for p in model.projector.parameters()),
            "decoder": sum(p.numel() for p in d.parameters()) - cross, "cross-attention": cross}


colours = ListedColormap(["white", "tab:blue", "tab:orange"])  # none, text key, image key
fig, axes = plt.subplots(1, 3, figsize=(11, 4), layout="constrained")
for ax, name in zip(axes, FUSIONS):
    pattern = who_sees_whom(name)
    ax.imshow(pattern, cmap=colours, vmin=0, vmax=2)
    ax.set_xticks(range(pattern.size(1)), ["i"] * 6 + ["t"] * 5)
    ax.set_yticks(range(pattern.size(0)), (["i"] * 6 if name != "cross" else []) + ["t"] * 5)
    if name == "cross":
        ax.axvline(5.5, color="black", lw=2)  # two different layers read these two blocks of keys
    torch.manual_seed(0)
    split = parameter_split(new_captioner(configs[name]))
    ax.set_title(name + "\n" + "\n".join(f"{k} {v:,}" for k, v in split.items() if v), fontsize=8)
    ax.set_xlabel("keys (i: image, t: text)")
axes[0].set_ylabel("queries")
plt.show()

# %% [markdown]
# In the cross design the image keys (orange) sit left of a black line: a cross-attention layer reads them,
# and the text's own causal self-attention (blue) is the one of notebook 03. In the prefix and raw designs
# the orange block is inside the causal triangle. The two have the same pattern: they differ only in how the
# image tokens are made, a ViT and a projector (prefix) or one linear map of the pixels (raw), which is
# where the raw model's 160,224 missing encoder parameters went back into its decoder.

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
prefix_model = new_captioner(configs["prefix"]).eval()
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
raw_model = new_captioner(configs["raw"]).eval()
enc = raw_model.encoder
x = (images - enc.mean[0]) / enc.std[0]  # MNIST's normalisation, as the encoder does in encode_images
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
# share, measured from the raw self-attention weights of an untrained prefix model (trained ones: section 8).
# Untrained, attention is close to uniform over the keys a token may read, so the share is about the image's
# share of those keys: 49 image tokens against the 1 to 26 text tokens before each character.

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
# The three designs, each trained for the same 50 steps of 64 captions, with the same seed, data order
# and augmentation: the start of a training, enough to see two things. Plotted against steps, the curves
# say how fast each design *learns*; against seconds, what each step *costs* on this CPU.

# %%
# NBVAL_IGNORE_OUTPUT
# (losses and seconds come out of training: they differ between CPUs)
runs = {}
for name, config in configs.items():
    torch.manual_seed(0)
    model = new_captioner(config)
    history = train(model, TrainConfig(epochs=1, batch_size=64, warmup_steps=10),
                    CaptionBatches(train_images[: 64 * 50], train_labels[: 64 * 50], model.tokenizer))
    runs[name] = history
    print(f"{name:6s}: {len(history['loss'])} steps in {history['train_seconds']:.0f} s "
          f"({len(history['loss']) / history['train_seconds']:.2f} steps/s), "
          f"last 10 steps' loss {sum(history['loss'][-10:]) / 10:.3f}")

fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3))
for name, history in runs.items():
    seconds = torch.linspace(0, history["train_seconds"], len(history["loss"]))
    a.plot(history["loss"], lw=0.8, label=name)
    b.plot(seconds, history["loss"], lw=0.8, label=name)
a.set_xlabel("step"), b.set_xlabel("seconds of training"), a.set_ylabel("loss (nats per character)")
a.legend(), a.set_yscale("log"), b.set_yscale("log")
plt.show()

# %%
first, last = ({n: sum(h["loss"][s]) / len(h["loss"][s]) for n, h in runs.items()} for s in (slice(0, 5), slice(-10, None)))
check("every design learns: each run's last 10 losses average below a third of its first 5",
      all(last[n] < first[n] / 3 for n in runs), ", ".join(f"{n} {first[n]:.2f} → {last[n]:.2f}" for n in runs))
freq = torch.bincount(train_labels, minlength=10).float() / len(train_labels)  # notebook 05's floor
per_caption = torch.tensor([len(crossmodal.caption_for(d)) + 1 for d in range(10)]).float()  # characters + <eos>
blind_floor = (-(freq * freq.log()).sum() / (freq @ per_caption)).item()
check(f"none reads the digit yet: every run's last losses are above the blind floor ({blind_floor:.3f})",
      min(last.values()) > blind_floor, ", ".join(f"{n} {last[n]:.3f}" for n in runs))

# %% [markdown]
# Fifty steps buy every design the shared words, "This is the number " and the full stop, and per *step* the
# three curves fall together. None reads the digit yet: their losses are still above the blind floor, the
# lowest loss a captioner that cannot see could reach (notebook 05). Per *second* they part: a cross-attention
# step is the cheapest, because its decoder's sequence is the text alone (fifty steps on a shared machine time
# it roughly; section 6's record, over 938 steps, is checked).

# %% [markdown]
# ## 6 · The measured comparison
#
# Fifty steps show the start. The benchmark `tests/benchmarks/compare_fusions.py` trains each design for two
# whole epochs of augmented MNIST (938 steps of 128 captions: the default recipe, the same seed) and measures the rest.
# The three models it trained ship with the library (`crossmodal.pretrained.load_fusion`), each with its
# record: the command, the machine, and every number below.

# %%
records = {name: record(f"fusion-{name}") for name in FUSIONS}
print(records["cross"]["command"], f"({records['cross']['device']}, torch {records['cross']['torch']})\n")
rows = [("parameters", "parameters", "{:,}"), ("exact_match_first_epoch", "exact match after epoch 1", "{:.2%}"),
        ("exact_match_last_epoch", "exact match after epoch 2", "{:.2%}"),
        ("steps_per_second", "training steps per second", "{:.2f}"),
        ("caption_latency_ms", "one caption, ms", "{:.0f}"), ("decoder_positions", "decoder positions", "{}"),
        ("caption_mflops", "MFLOP per caption", "{:.1f}"), ("kv_cache_kib", "KV cache, KiB", "{:.0f}"),
        ("saved_activations_mib", "activations per batch, MiB", "{:.0f}"),
        ("attention_on_ink", "digit word's attention on ink", "{:.1%}"), ("ink_chance", "  chance (ink patches)", "{:.1%}")]
print(f"{'':30s}" + "".join(f"{name:>10s}" for name in FUSIONS))
for key, label, fmt in rows:
    print(f"{label:30s}" + "".join(f"{fmt.format(records[n][key]):>10s}" for n in FUSIONS))

# %%
check("after two epochs, cross-attention and prefix both caption at least 97% of the test set exactly",
      min(records[n]["exact_match_last_epoch"] for n in ("cross", "prefix")) >= 0.97)
longer = records["raw"]["longer_run"]
print(longer["command"], f"({longer['device']})")
print("raw, exact match after each of 5 epochs:", ", ".join(f"{e['exact_match']:.2%}" for e in longer["evaluations"]))
check("given five epochs, the raw design passes 97% too", longer["exact_match_last_epoch"] >= 0.97)
ink = {n: records[n]["attention_on_ink"] - records[n]["ink_chance"] for n in FUSIONS}  # points above uniform
check("cross and prefix put less than 10 points more of the digit word's attention on ink than a uniform map",
      all(0 < ink[n] < 0.10 for n in ("cross", "prefix")), str(ink))
check("the raw model at least 10 points more", ink["raw"] >= 0.10, f"{ink['raw']:.3f}")
check("a cross-attention training step is the fastest of the three", records["cross"]["steps_per_second"]
      > max(records[n]["steps_per_second"] for n in ("prefix", "raw")))
check("the raw design is the slowest learner: lowest after epoch 1 and after epoch 2",
      all(records["raw"][k] < min(records[n][k] for n in ("cross", "prefix"))
          for k in ("exact_match_first_epoch", "exact_match_last_epoch")))

# %% [markdown]
# What the table says:
#
# - **Accuracy.** With a ViT in front, it hardly matters how the decoder reads the image: cross-attention
#   and prefix end within a few hundredths of a point of each other. The raw design learns slowest (88% after
#   one epoch, 95% after two, below the 97% the others pass): its decoder has to learn to see from pixels,
#   with no encoder built for it. Is it the budget or the design? The benchmark trained it once more for five
#   epochs (printed above): it passes 97% in its fourth. It needs about twice the steps for the same accuracy.
# - **Speed.** A prefix model's decoder runs over 49 image positions plus the text, where a cross model's
#   runs over the text alone: fewer training steps per second, more MFLOP per caption, a longer KV cache,
#   more activations to keep for the backward pass. Its one-caption latency came out lowest all the same
#   (70 ms against 92), and nothing in how the two write a caption explains that: the next cell looks.
# - **Where they look.** The last two rows: of the attention of the digit word's characters (averaged over
#   layers and heads), the share that falls on patches holding any stroke (a pixel above 0.1), and those
#   patches' share of the grid, which is what a map that looks everywhere alike would score. The cross and
#   prefix models are only a few points above it; the raw model is clearly above. One reading: the raw model's
#   image tokens are the patches themselves, each carrying only its own pixels, while the ViT's tokens have
#   mixed information between patches for four layers, so a token whose own patch is blank can already tell
#   something about the digit, and attention need not sit on the strokes. (Notebook 06 measures the shipped
#   captioner's maps with a stricter ink rule, a pixel above 0.5, which marks fewer patches: its shares are
#   not comparable with these.)

# %% [markdown]
# Both write one position per character from the KV cache, so the prefix model pays for its 49 image positions
# once, in the prefill; after that each of its steps runs three decoder layers, and each of the cross model's
# two, each of them with a cross-attention over the image's 49 cached keys. Counted for one caption of the
# shipped models: the FLOPs, and the PyTorch operations it runs (each has a cost of its own beyond its
# arithmetic, which at this size is most of the time). Then the time, the two designs in turns, twenty each.

# %%
# NBVAL_IGNORE_OUTPUT
# (why: operation counts can change with PyTorch's version, and times with the machine; the claim is checked below)
import statistics
import time

from torch.utils._python_dispatch import TorchDispatchMode


class CountOperations(TorchDispatchMode):
    """Counts the PyTorch operations (aten ops) that run inside it."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


trained = {name: load_fusion(name) for name in FUSIONS}
digit, work, seconds = test_images[0], {}, {"cross": [], "prefix": []}
for name in seconds:
    with FlopCounterMode(display=False) as flop_counter, CountOperations() as operations:
        text = trained[name].caption(digit).text
    work[name] = flop_counter.get_total_flops() / 1e6, operations.count
    print(f"{name:6s}: {text!r}: {work[name][0]:.1f} MFLOP in {work[name][1]:,} PyTorch operations")
for _ in range(20):
    for name in seconds:  # in turns, so that whatever else the machine does falls on both
        start = time.perf_counter()
        trained[name].caption(digit)
        seconds[name].append(time.perf_counter() - start)
print("one caption, median of 20: " + ", ".join(f"{n} {1000 * statistics.median(t):.0f} ms" for n, t in seconds.items()))

# %%
check("per caption the prefix model does more work than the cross model: more FLOPs and more PyTorch operations",
      all(work["prefix"][i] > work["cross"][i] for i in (0, 1)), str(work))

# %% [markdown]
# The prefix model does more arithmetic and runs more operations per caption, so the record's latency row does not
# measure what the designs cost. On the record's machine a caption took 70 to 120 ms, for 23 to 44 MFLOP that a
# CPU core does in a few milliseconds: most of the time is the fixed cost of each of some three thousand
# operations, not arithmetic. And a median of twenty on a 2-core machine shifts with whatever else the machine
# runs (the times above are this build's: run the cell again, or on another machine, and they move). Read that
# row as "each design writes a caption in a tenth of a second or less", and the FLOP, position and cache rows as
# what each design costs.

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
        config = with_fusion(config, name)  # a copy: the image size changes below
        config.vision.image_size = size
        torch.manual_seed(0)
        model = new_captioner(config).eval()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.rand(1, 1, size, size), tokens[:1])
        flops[name].append(counter.get_total_flops() / 1e6)
patches = [(s // 4) ** 2 for s in sizes]
for name in configs:
    print(f"{name:6s}: " + ", ".join(f"{n} patches {f:,.0f} MFLOP" for n, f in zip(patches, flops[name])))
fig, ax = plt.subplots(figsize=(7.5, 4))
for name in configs:
    ax.plot(patches, flops[name], "o-", label=name)
ax.set_xlabel("patches"), ax.set_ylabel("MFLOP, one caption's forward"), ax.legend()
plt.show()

ratio = [p / c for p, c in zip(flops["prefix"], flops["cross"])]
print("prefix ÷ cross:", ", ".join(f"{r:.2f}" for r in ratio))
check("a prefix costs over 1.5 times cross-attention at every size, and the gap widens with the patches",
      min(ratio) > 1.5 and ratio == sorted(ratio), ", ".join(f"{r:.2f}" for r in ratio))

# %% [markdown]
# At these sizes all three grow about linearly with the number of patches: at width 64 the linear layers
# still outweigh attention's N² term. The prefix designs cost more at every size, because every decoder
# layer runs over the N image positions too, where the cross model's decoder runs over the text and reads
# the image only in its cross-attention. The raw design saves the encoder but runs a six-layer decoder over
# the same N positions, and lands where the prefix does. Scale the widths and patch counts up to a real
# model's and the sequence term wins: this is why LLaVA-style models work so hard to cut image tokens
# (pooling, resamplers), and why NVLM put its high-resolution tiles behind cross-attention.

# %% [markdown]
# ## 8 · The three trained models' maps, for the same image
#
# The same viewer serves all three: cross-attention maps, and the prefix models' text-to-image attention
# renormalised over the 49 patches. One row per design, one panel per character of the digit's name (the
# characters that need the image), each the mean over the design's layers and heads, all on **one colour
# scale**, so a brighter patch means more weight whichever design drew it.

# %%
image = test_images[0]
start = len("This is the number ")  # the first character of the digit's name
captions = {name: model.caption(image) for name, model in trained.items()}
for name, caption in captions.items():
    print(f"{name:6s} ({trained[name].decoder.image_layers} layers of maps, averaged): {caption.text!r}")
shown = 6  # "seven." for this test image
maps = {name: viz.caption_maps(c)[start : start + shown] for name, c in captions.items()}  # (6, 7, 7) each
vmax = max(m.max() for m in maps.values())
fig, axes = plt.subplots(len(maps), shown, figsize=(2.1 * shown, 2.3 * len(maps)), layout="constrained")
for row, (name, m) in enumerate(maps.items()):
    text = captions[name].text[start : start + shown]
    for col, (ax, ch) in enumerate(zip(axes[row], text)):
        ax.imshow(viz.overlay(image, m[col], vmax=vmax), interpolation="nearest")
        ax.set(xticks=[], yticks=[])
        ax.set_title(f"writing {ch!r}", fontsize=10)
    axes[row, 0].set_ylabel(name, fontsize=12)
fig.colorbar(plt.cm.ScalarMappable(plt.Normalize(0, vmax), viz.CMAP), ax=axes, shrink=0.8,
             label="attention weight over the 49 patches (mean of layers and heads)")
plt.show()

# %% [markdown]
# For this seven, the brightest panels of the cross and prefix designs are the first letter's: "s" is where the
# digit is decided, and the letters after it follow from the spelling, so their maps are flatter. The raw
# design, whose decoder also does the encoder's work, spreads its weight over the strokes for every letter.

# %% [markdown]
# And what renormalising hid: how much of its attention each trained prefix model's text gives the image
# at all, per decoder layer (section 4's measurement, now on trained models, for 64 test sevens and the
# caption "This is the number seven.").

# %%
sevens = test_images[test_labels == 7][:64]
for name in ("prefix", "raw"):
    seven = caption_tokens(trained[name].tokenizer)[7][None, :-1].expand(len(sevens), -1)  # <bos> + the caption
    shares = image_share(trained[name], sevens, seven)
    print(f"{name:6s}: share of the text's attention on the image, per layer: " + ", ".join(f"{s:.0%}" for s in shares))

# %% [markdown]
# Trained, the share is still high in every layer, although most characters of the caption ("This is the
# number ", the final ".") need no image at all. So a large share is not evidence that the model *uses* the
# image for that character: attention has to go somewhere, and 49 image keys are most of what there is to
# read (the same lesson as the attention sinks and the erasure test of notebook 06). Whether the image is
# used is measured by what changes when it changes, not by where the attention lands.

# %% [markdown]
# ## 9 · What the real systems chose, and why
#
# - **Flamingo** (2022) kept a large language model frozen and added gated cross-attention layers: the LM's
#   text ability is untouched, and the image costs only where the new layers read it. Its Perceiver
#   resampler cut each image to 64 tokens first.
# - **LLaVA** (2023) chose the prefix: a linear projector (an MLP from LLaVA-1.5 on) from CLIP's ViT into
#   Vicuna's embedding space. Nothing in the LM changes shape, so any LM works, and the image tokens take
#   part in all the LM's reasoning, at the price of a longer sequence: 256 image tokens in LLaVA, 576 in
#   LLaVA-1.5 (a higher resolution).
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
    return None  # ← your code here


def check_kv_cache(answer):
    for name, config in configs.items():
        torch.manual_seed(0)
        model = new_captioner(config).eval()
        cache = KVCache(config.decoder.depth)
        with torch.no_grad():
            model.decoder(tokens[:1], model.encode_images(images[:1]), cache)
        measured = sum(t.numel() for kv in cache.self_kv + cache.cross_kv if kv is not None for t in kv)
        assert answer(config, 49, tokens.size(1)) == measured, f"{name}: the cache holds {measured:,} floats"


attempted = exercise("Exercise (your formula counts every design's cache)", check_kv_cache, kv_cache_floats,
                     solution_kv_cache_floats)

# %% [markdown]
# ## Exercise — how many pairs each design scores
#
# In one forward pass over an image of N patches and T text tokens, every attention layer of the decoder scores
# each query against each key it may read: section 0's picture is one layer of it. Write
# `scored_pairs(config, N, T)`: how many (query, key) pairs all the decoder's attention layers read together,
# counted for one head, for each fusion. The check counts the weights that are not zero in real models' attention
# (a masked pair gets exactly 0 after the softmax). Then look at what your formula says for N = 576, LLaVA-1.5's
# image tokens, and a 50-token answer.

# %% [solution]
# Solution (collapsed: click to expand)
def solution_scored_pairs(config, N, T):
    d = config.decoder
    if config.fusion == "cross":  # causal self-attention over the text in every layer, all N patches in the cross layers
        cross_layers = sum(d.has_cross_attention(i) for i in range(d.depth))
        return d.depth * T * (T + 1) // 2 + cross_layers * T * N
    S = N + T  # one causal sequence, the image first, in every layer
    return d.depth * S * (S + 1) // 2

# %%
def scored_pairs(config, N, T):
    return None  # ← your code here


def count_scored_pairs(config, N, T):
    """The pairs a real decoder's attention reads, from its weights (inputs random: only the masks matter)."""
    torch.manual_seed(0)
    d = new_captioner(config).eval().decoder
    cross, dim = config.fusion == "cross", config.decoder.dim
    x, memory = torch.randn(1, T if cross else N + T, dim), torch.randn(1, N, dim)
    counted = 0
    with torch.no_grad():
        for block in d.blocks:
            _, weights = block(x, memory if cross else None, need_weights=True, weights_of="self")
            counted += int((weights[0, 0] > 0).sum())
            if block.cross_attn is not None:
                counted += int((block(x, memory, need_weights=True)[1][0, 0] > 0).sum())
    return counted


def check_scored_pairs(answer):
    for name, config in configs.items():
        for N, T in [(49, 27), (49, 5), (16, 11)]:
            mine, counted = answer(config, N, T), count_scored_pairs(config, N, T)
            assert mine == counted, f"{name}, N={N}, T={T}: you count {mine:,}, its attention reads {counted:,}"


if exercise("Exercise (the pairs each design scores)", check_scored_pairs, scored_pairs, solution_scored_pairs):
    for name, config in configs.items():
        print(f"{name:7s} N=576, T=50: {scored_pairs(config, 576, 50):,} pairs")

# %% [markdown]
# ## Exercise — Fuyu's row ends
#
# The raw design of section 2 tells the decoder where a patch lies with a learned row and column vector. Fuyu
# does it differently: after each row of patches it puts a special **newline** token in the sequence, as text
# has line breaks, so any image shape reads like lines of text. Write `with_row_ends(patch_tokens, grid_w,
# newline)`: patch tokens (B, N, D) in rows of `grid_w`, and a newline vector (D,), to (B, N + N / grid_w, D)
# with the newline after every row. The check tries a 7 × 7 grid and a 4 × 16 one (notebook 07's numbers).

# %% [solution]
# Solution (collapsed: click to expand)
def solution_with_row_ends(patch_tokens, grid_w, newline):
    B, N, D = patch_tokens.shape
    rows = patch_tokens.view(B, N // grid_w, grid_w, D)  # (B, rows, grid_w, D)
    ends = newline.expand(B, N // grid_w, 1, D)  # one newline per row
    return torch.cat([rows, ends], dim=2).flatten(1, 2)  # (B, rows · (grid_w + 1), D)

# %%
def with_row_ends(patch_tokens, grid_w, newline):
    return None  # ← your code here


def check_with_row_ends(answer):
    for grid_h, grid_w in [(7, 7), (4, 16)]:
        patches = torch.randn(2, grid_h * grid_w, 8)
        newline = torch.randn(8)
        out = answer(patches, grid_w, newline)
        assert tuple(out.shape) == (2, grid_h * (grid_w + 1), 8), f"shape {tuple(out.shape)} for a {grid_h}×{grid_w} grid"
        lines = out.view(2, grid_h, grid_w + 1, 8)
        assert torch.equal(lines[:, :, -1], newline.expand(2, grid_h, 8)), "each row should end with the newline"
        assert torch.equal(lines[:, :, :-1].flatten(1, 2), patches), "the patches should keep their order, row by row"


attempted = exercise("Exercise (a newline after every row)", check_with_row_ends, with_row_ends, solution_with_row_ends)

# %% [markdown]
# ## Try it
#
# - **A resampler.** Flamingo's Perceiver resampler and many LLaVA successors shrink the image to fewer
#   tokens before the decoder. Average-pool the prefix model's 7 × 7 grid of patch embeddings to 4 × 4
#   (`torch.nn.functional.adaptive_avg_pool2d` on the (B, dim, 7, 7) grid) inside `encode_images`, train
#   section 5 again, and compare steps per second and the loss.
# - **Freeze the decoder.** Real systems often keep the language model frozen. Train the prefix design with
#   `requires_grad_(False)` on the decoder (only the ViT and projector learn): how far does the loss get?

# %% [markdown]
# ## Summary
#
# - Cross-attention, a prefix and raw patches are three answers to one question: where does the image
#   enter the language model?
# - A prefix needs no new layer (GPT-2 takes it through `inputs_embeds`) but lengthens every sequence by N;
#   raw patches drop the encoder and make the decoder do the seeing.
# - Compared at the same size, data and budget, cross-attention and prefix caption equally well; raw patches
#   learn slowest, because the decoder must learn to see. They differ in cost per step and per caption, and in
#   how that cost grows with the number of patches: a prefix grows the decoder's sequence, cross-attention
#   only its cross layers' keys.
# - A prefix model's maps are part of one softmax shared with the text: renormalised over the patches they
#   look like cross-attention maps, and the share they came from has to be reported beside them.
#
# **Next:** [10 · Giving GPT-2 eyes](10_gpt2_eyes.ipynb) — cross-attention as Flamingo meant it: gated layers in a
# *pretrained*, frozen language model, and what it read in text, used about a picture.
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
