# %% [markdown]
# # 06 · See it think: the captioner's attention maps
#
# The captioner writes *"This is the number seven."* one character at a time. At every step, each
# cross-attention head of each decoder layer spreads one unit of attention over the image's patches:
# that distribution is an **attention map**. The model hands us these maps with every caption, so we
# can watch where it looks while it writes, and then check whether what we think we see is true.


# %% [markdown]
# ## What you will learn
#
# - Read a cross-attention map: what its numbers are, and how it is drawn on the digit.
# - Compare layers and heads, and combine them: the head mean, the layer mean, and attention
#   rollout back through the Vision Transformer, which you write out and check against the library's.
# - Measure, rather than eyeball, what the maps reveal: where the model looks while it writes the
#   fixed words and the digit word, whether it checks the strokes that tell 4 from 9, 3 from 8 and 1 from 7,
#   and whether its heads specialise.
# - Test a map by intervention: erase the patch it points at and see whether the caption changes.
# - Explore any test image in the attention explorer, and draw your own digits on the drawing pad.
#
# It uses the captioner shipped inside the package, so nothing is trained here.

# %%
%matplotlib inline
%config InlineBackend.figure_format = "png"
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from IPython.display import Image, display

from crossmodal import viz
from crossmodal.checks import check, exercise  # a claim about a measured result; an exercise's check
from crossmodal.data import caption_for
from crossmodal.widgets import AttentionExplorer, DrawingPad, enable_colab

torch.manual_seed(0)
torch.set_num_threads(2)  # fixed, so every run gives the same numbers
plt.rcParams["figure.dpi"] = 100  # sharp enough on GitHub and Colab, and the notebook stays small
in_colab = enable_colab()  # Colab needs its custom widget manager for the explorer and the pad

model = crossmodal.load_captioner()  # the shipped captioner: no training, no download
images, labels = crossmodal.load_mnist(train=False)  # the 10,000 test images, never trained on
layers, heads, (g, _) = len(model.decoder.cross_attention_layers), model.config.decoder.num_heads, model.encoder.grid_size
p = 28 // g  # patch size in pixels
print(f"{g}×{g} patches of {p}×{p} pixels; {layers} cross-attention layers of {heads} heads each")

# %% [markdown]
# ## 1 · One character, one map
#
# `model.caption(image)` returns a `Generation`: the `text`, the `image` the model saw, and `attention`,
# shaped (characters, layers, heads, grid, grid). Entry `attention[i, l, h]` is what head `h` of layer
# `l` looked at in the step that *wrote* character `i`: a softmax over the patches, so it sums to 1.
#
# Which character is worth a look first? Every caption starts with the same nineteen characters,
# *"This is the number "*. The twentieth, the digit word's first letter, is the first one that depends
# on the image: that is where the model must decide (between *two* and *three*, *four* and *five*, *six*
# and *seven*, the second letter settles it). `viz.attention_map` picks one map (or the mean
# over layers and heads) and `viz.plot_attention` draws it on the digit, each patch coloured by its weight.

# %%
seven = int((labels == 7).nonzero()[0])  # the first 7 in the test set
caption = model.caption(images[seven])
print(repr(caption.text))
print("attention:", tuple(caption.attention.shape), "= (characters, layers, heads, grid, grid)")

decide = len("This is the number ")  # position of the digit word's first letter
m = viz.attention_map(caption, decide)  # mean over layers and heads
print(f"map of {caption.text[decide]!r}: sums to {m.sum():.3f}; in percent, patch by patch:")
print(np.round(100 * m).astype(int))
viz.plot_attention(caption, decide)

# %% [markdown]
# The printed grid and the picture are the same numbers. A uniform map would give every patch
# 100 / (grid × grid) percent; the brighter a patch, the more of the step's attention it took.

# %% [markdown]
# ## 2 · Layers and heads
#
# That map was a mean over every layer and head. Each head computes its own map from its own
# queries and keys, so heads are free to look at different things. `viz.plot_heads` draws the whole
# grid: one row per layer, one column per head, the means in the last row and column.
#
# To compare maps with a number, we use the **number of patches looked at**: the exponential of the
# map's entropy. It is 1 when all attention falls on one patch and grid² when it is spread evenly, and
# in between it counts "how many patches' worth" the head is looking at.

# %%
def patches_looked_at(maps):
    # exp(entropy) of maps (..., patches), each summing to 1: 1 = one patch, grid² = spread evenly
    q = torch.as_tensor(maps).clamp_min(1e-12)
    return torch.exp(-(q * q.log()).sum(-1))

a = caption.attention[decide].flatten(-2)  # (layers, heads, grid²)
print(f"patches looked at while writing {caption.text[decide]!r} (of {g * g}):")
for layer in range(layers):
    print(f"  layer {layer}: " + "  ".join(f"head {h}: {patches_looked_at(a[layer, h]):5.1f}" for h in range(heads)))
viz.plot_heads(caption, decide)

# %% [markdown]
# ## 3 · The whole caption, character by character
#
# `viz.plot_caption_strip` draws one small map per character, all on one colour scale, so a bright
# map is a focused one and a dim map a spread-out one; `row_length` wraps it into rows after a space. (It is
# also what `python -m crossmodal.caption digit.png --attention-png maps.png` writes.)

# %%
spread = patches_looked_at(caption.attention.mean((1, 2)).flatten(-2))  # per character, mean of layers and heads
print("patches looked at, per character:")
print("  ".join(f"{ch!r}:{s:.0f}" for ch, s in zip(caption.text, spread.tolist())))
viz.plot_caption_strip(caption, row_length=13)  # two rows: 'This is the ', 'number seven.'

# %% [markdown]
# ## 4 · Attention rollout: from patch embeddings back to pixels
#
# A cross-attention map weighs the ViT's *output* embeddings, and after the ViT's self-attention layers
# "patch embedding *j*" is no longer just patch *j*: every layer mixes in the other patches. **Attention
# rollout** (Abnar & Zuidema, 2020) follows that mixing back to the input. In our captioner:
#
# - the decoder's cross-attention layers all read the *same* patch embeddings and each adds what it read
#   to the character's residual stream, so they do not chain: we combine them by averaging their
#   head-mean maps (the layer-and-head mean we have used so far);
# - the ViT's layers do chain. With Â = ½ I + ½ (head mean of a ViT layer's attention), where ½ I is the
#   residual path, the mixing is R = Â_L ··· Â_1, whose row *j* says how much of each input patch is in
#   embedding *j* (`viz.encoder_mixing`);
# - the rollout map is the mean cross-attention times R (`viz.rollout_map`): the share of each *input*
#   patch in what the character read. It still sums to 1.
#
# It leaves out one route: what a character learns about the image from earlier characters through the
# decoder's self-attention.
#
# Written out, it is a few lines. `model.encode_images(x, need_weights=True)` hands back, beside the patch
# embeddings, each ViT block's attention weights, (1, heads, T, T). A class token, if the encoder had one,
# would be row and column 0 of every matrix: it is no part of the picture, so rollout drops it at the end
# and renormalises the rows (this captioner's ViT has none, and the renormalising then changes nothing).

# %%
def rollout_by_hand(model, image, char_map):
    """(grid, grid) rollout map of `char_map` (a mean cross-attention map), and the ViT's mixing R (N, N)."""
    with torch.no_grad():
        _, weights = model.encode_images(image[None], need_weights=True)  # one (1, heads, T, T) per ViT block
    eye = torch.eye(weights[0].size(-1), dtype=torch.float64)
    mixing = eye
    for w in weights:  # first block first: R = Â_L ··· Â_1
        a_hat = 0.5 * eye + 0.5 * w[0].mean(0).double()  # the residual path, plus the head mean of this block
        mixing = a_hat @ mixing  # row j: how much of each input token is in token j after this block
    prefix = model.encoder.num_prefix_tokens  # a class token, if any: not a patch of the picture
    mixing = mixing[prefix:, prefix:]
    mixing = mixing / mixing.sum(1, keepdim=True)
    return (torch.as_tensor(char_map).reshape(-1) @ mixing).reshape(g, g), mixing


mine, my_mixing = rollout_by_hand(model, caption.image, m)
mixing = viz.encoder_mixing(model, caption.image)
rolled = viz.rollout_map(caption, decide, mixing)
print(f"max |by hand − viz.encoder_mixing| = {(my_mixing - torch.as_tensor(mixing)).abs().max():.1e}, "
      f"max |by hand − viz.rollout_map| = {(mine - torch.as_tensor(rolled)).abs().max():.1e}")
check("the rollout written here is the library's", torch.allclose(my_mixing, torch.as_tensor(mixing), atol=1e-12)
      and torch.allclose(mine, torch.as_tensor(rolled), atol=1e-12))

# %% [markdown]
# The same numbers. From here on `viz` draws them:

# %%
print(f"mixing: {mixing.shape}, rows sum to {mixing.sum(1).min():.3f}…{mixing.sum(1).max():.3f}; "
      f"share a patch keeps of itself: {np.diag(mixing).mean():.0%} on average")
print(f"rollout map sums to {rolled.sum():.3f}; it moved {0.5 * np.abs(rolled - m).sum():.0%} of the attention "
      f"(half the L1 distance to the raw mean map)")
print(f"brightest patch (row, column): raw {divmod(int(m.argmax()), g)}, rollout {divmod(int(rolled.argmax()), g)}")
viz.plot_rollout(model, caption, decide)

# %% [markdown]
# ## 5 · What the maps reveal, measured on the test set
#
# One digit is an anecdote. From here on, every claim is a number computed over a thousand test images
# (those the model captions exactly right), printed beside the question it answers.
#
# ### 5.1 Fixed words versus the digit word
#
# While the model writes *"This is the number "*, the image cannot change what comes next. Does it still
# look at the digit, and is it as focused as when it writes the digit word? Two measures, per character:
# patches looked at, and the **share on ink**: the attention that falls on patches containing ink
# (any pixel above 0.5), against the share of the grid those patches cover.

# %%
N = 1000
captions = model.caption(images[:N])
right = torch.tensor([c.text == caption_for(y) for c, y in zip(captions, labels[:N].tolist())])
kept = [c for c, ok in zip(captions, right) if ok]
kept_images, kept_labels = images[:N][right], labels[:N][right]
print(f"{len(kept)} of {N} test images captioned exactly right; the statistics below use those")

ink = (F.max_pool2d(kept_images, p) > 0.5).flatten(1)  # (n, grid²): which patches hold ink
means = [c.attention.mean((1, 2)).flatten(1) for c in kept]  # (characters, grid²) per image
groups = {  # character positions in "This is the number seven."
    "fixed words": lambda n: range(decide),
    "digit word, first letter": lambda n: [decide],
    "digit word, other letters": lambda n: range(decide + 1, n - 1),
    "final '.'": lambda n: [n - 1],
}
print(f"\n{'':27}patches looked at   share on ink   (ink patches: {ink.float().mean():.0%} of the grid)")
stats = {}
for name, positions in groups.items():
    maps = torch.cat([mm[list(positions(len(mm)))] for mm in means])  # (characters in the group, grid²)
    on_ink = torch.cat([(mm[list(positions(len(mm)))] * k).sum(1) for mm, k in zip(means, ink)])
    stats[name] = patches_looked_at(maps).mean().item(), on_ink.mean().item()
    print(f"{name:27}{stats[name][0]:10.1f}{stats[name][1]:17.0%}")

fixed, first = stats["fixed words"], stats["digit word, first letter"]
print(f"\nat the digit word's first letter the model looks at {first[0]:.1f} patches against {fixed[0]:.1f} for the "
      f"fixed words ({'more' if first[0] < fixed[0] else 'less'} focused), with {first[1]:.0%} against {fixed[1]:.0%} on ink")

# %%
per_position = torch.stack([patches_looked_at(mm[: decide + 1]) for mm in means]).mean(0)  # (positions,)
fig, ax = plt.subplots(figsize=(8, 2.4))
ax.bar(range(decide + 1), per_position, color=["#888"] * decide + ["#e8590c"])
ax.set_xticks(range(decide + 1), [ch if ch != " " else "␣" for ch in "This is the number "] + ["1st\nletter"])
ax.set_ylabel("patches looked at")
ax.set_title("mean over test images; orange: the digit word's first letter", fontsize=10)
print("per position:", " ".join(f"{v:.1f}" for v in per_position.tolist()))

# %% [markdown]
# ### 5.2 Does it check the strokes that tell 4 from 9, 3 from 8, 1 from 7?
#
# For each pair, the **deciding character** is the first where the two captions differ: *"four"* and
# *"nine"* part at the digit word's first letter, and so do *"three"*/*"eight"* and *"one"*/*"seven"*.
# Where the two digits differ in ink we can measure by averaging many of each: the patches where the
# mean 4 and the mean 9 differ most (the top quarter of the grid by |difference|) hold the strokes that
# separate them. If the model checks those strokes when it decides, its attention at the deciding
# character should pile up there: above the quarter of the grid those patches cover, above what it puts
# there while writing the fixed words, and above what a map spread evenly over each image's ink would put
# there (the ink patches that fall among them), since a map that merely covers the digit already gets that
# much. We measure the mean map and every head; the head that piles up most is reported with its own
# fixed-word share, since picking the best of many heads flatters it.

# %%
def deciding_char(a, b):
    # the first position where the captions of digits a and b differ: where the model must choose
    return next(i for i, (x, y) in enumerate(zip(caption_for(a), caption_for(b))) if x != y)


def where(patch):
    row, col = divmod(int(patch), g)
    return f"{('top', 'middle', 'bottom')[3 * row // g]}-{('left', 'centre', 'right')[3 * col // g]} (row {row}, column {col})"


PAIRS = [(4, 9), (3, 8), (1, 7)]
pairs = {}  # (a, b) -> what the claims and the figure below need
for a, b in PAIRS:
    k = deciding_char(a, b)
    pick = {d: (kept_labels == d).nonzero().squeeze(1).tolist() for d in (a, b)}
    mean_img = {d: kept_images[pick[d]].mean(0)[0] for d in (a, b)}  # (28, 28)
    patch_diff = F.avg_pool2d((mean_img[a] - mean_img[b])[None, None], p)[0, 0].flatten()  # (grid²,)
    top = patch_diff.abs().topk(max(1, g * g // 4)).indices  # the patches where the two digits differ most
    both = pick[a] + pick[b]
    at_k = torch.stack([kept[i].attention[k] for i in both]).flatten(-2)  # (images, layers, heads, grid²)
    at_fixed = torch.stack([kept[i].attention[:decide].mean(0) for i in both]).flatten(-2)
    even = ink[both].float() / ink[both].float().sum(1, keepdim=True)  # each image's ink, evenly weighted
    share = at_k[..., top].sum(-1).mean(0)  # (layers, heads): attention on those patches, per head
    best = divmod(int(share.argmax()), heads)
    head_map = at_k[:, best[0], best[1]].mean(0)  # (grid²,): the best head's mean map
    pairs[a, b] = dict(k=k, mean_img=mean_img, top=top, best=best, head_map=head_map, peak=int(head_map.argmax()),
                       mean=at_k.mean((1, 2))[:, top].sum(1).mean().item(), even=even[:, top].sum(1).mean().item(),
                       differ=int(patch_diff.abs().argmax()), best_share=share.max().item())
    print(f"{a} vs {b} (deciding letter {caption_for(a)[k]!r}/{caption_for(b)[k]!r}, {len(both)} images): "
          f"the {len(top)} patches where they differ most are {len(top) / g**2:.0%} of the grid and get")
    print(f"    {pairs[a, b]['mean']:.0%} of the mean map at the deciding letter "
          f"({at_fixed.mean((1, 2))[:, top].sum(1).mean():.0%} while writing the fixed words; "
          f"a map spread evenly over the ink: {pairs[a, b]['even']:.0%})")
    print(f"    the best head, layer {best[0]} head {best[1]}: {share.max():.0%} "
          f"({at_fixed[:, best[0], best[1]][:, top].sum(1).mean():.0%} at the fixed words)")
    print(f"    the ink differs most at the {where(pairs[a, b]['differ'])}; "
          f"that head looks most at the {where(pairs[a, b]['peak'])}")

# %%
vmax = max(pair["head_map"].max().item() for pair in pairs.values())  # one colour scale for the three heads' maps
lim = max(float((pair["mean_img"][a] - pair["mean_img"][b]).abs().max()) for (a, b), pair in pairs.items())
fig, axes = plt.subplots(len(PAIRS), 4, figsize=(8.6, 2.1 * len(PAIRS)), layout="constrained")
for ((a, b), pair), row in zip(pairs.items(), axes):
    k, best, mean_img = pair["k"], pair["best"], pair["mean_img"]
    row[0].imshow(mean_img[a], cmap="gray"); row[0].set_title(f"mean {a}", fontsize=9)
    row[1].imshow(mean_img[b], cmap="gray"); row[1].set_title(f"mean {b}", fontsize=9)
    row[2].imshow(mean_img[a] - mean_img[b], cmap="RdBu_r", vmin=-lim, vmax=lim)
    row[2].set_title(f"{a} − {b} (red: more ink in {a})", fontsize=9)
    row[3].imshow(viz.overlay((mean_img[a] + mean_img[b]) / 2, pair["head_map"].reshape(g, g).numpy(), vmax))
    row[3].set_title(f"layer {best[0]} head {best[1]} at {caption_for(a)[k]!r}/{caption_for(b)[k]!r}", fontsize=9)
    for ax in row:
        ax.set_xticks([]); ax.set_yticks([])
fig.colorbar(plt.cm.ScalarMappable(plt.Normalize(-lim, lim), "RdBu_r"), ax=axes[:, 2], shrink=0.6,
             label="ink difference")
fig.colorbar(plt.cm.ScalarMappable(plt.Normalize(0, vmax), viz.CMAP), ax=axes[:, 3], shrink=0.6,
             label="attention weight (one scale)")
plt.show()

# %%
check("at the deciding letter, the mean map puts on each pair's separating patches within 10 points of what a "
      "map spread evenly over the ink puts there", all(abs(q["mean"] - q["even"]) < 0.10 for q in pairs.values()),
      str({pair: f"{q['mean']:.0%} against {q['even']:.0%}" for pair, q in pairs.items()}))
same_head = pairs[4, 9]["best"] == pairs[3, 8]["best"] and pairs[4, 9]["peak"] == pairs[3, 8]["peak"]
check("for 4 vs 9 and for 3 vs 8 the best head is the same head, looking most at the same patch, which is neither "
      "pair's largest ink difference", same_head and all(pairs[q]["peak"] != pairs[q]["differ"] for q in [(4, 9), (3, 8)]),
      str({q: (pairs[q]["best"], where(pairs[q]["peak"]), where(pairs[q]["differ"])) for q in pairs}))
check("for 1 vs 7 the best head is another, looking most where the two differ most",
      pairs[1, 7]["best"] != pairs[4, 9]["best"] and pairs[1, 7]["peak"] == pairs[1, 7]["differ"],
      f"{pairs[1, 7]['best']}, {where(pairs[1, 7]['peak'])}")

# %% [markdown]
# **What the maps show: where the ink is, not which strokes decide.** At the deciding letter the mean map moves
# onto the digit (section 5.1), and the separating patches get a large share of it, but no more than a map spread
# evenly over each image's ink would give them: the strokes that tell 4 from 9 are part of the ink, and they get
# their part of it. The best head does pile up there, well above an even spread, but for 4 vs 9 and 3 vs 8 it is
# the same head, looking most at the same patch (printed above), which is neither pair's largest ink difference:
# a head drawn to one region of the digit that overlaps both pairs' separating strokes, not a head that seeks
# out each pair's own. For 1 vs 7 the best head is another, looking most where the two differ most. So the maps
# do not say which strokes the model checks to decide; they say where it reads. The next section asks the
# model instead, by erasing.

# %% [markdown]
# ### 5.3 Does the map point at evidence? Erase it and see
#
# Attention says where the model *read*, not what it *used*: a head may look at a patch and then ignore
# what it found. The direct test is an intervention. For every image of the pairs above, we black out
# the single patch that the deciding character attends to most, caption the image again, and count
# changed captions. As a control we black out a random patch that holds ink instead.

# %%
def erase(imgs, patches):
    # copies of the images with one patch each (flat index into the grid) set to black
    out = imgs.clone()
    for img, patch in zip(out, patches.tolist()):
        r, c = divmod(patch, g)
        img[:, r * p : (r + 1) * p, c * p : (c + 1) * p] = 0
    return out


gen = torch.Generator().manual_seed(0)
erased = {}  # (a, b) -> share of captions changed, per kind of erasure
for a, b in PAIRS:
    k = deciding_char(a, b)
    idx = torch.cat([(kept_labels == d).nonzero().squeeze(1) for d in (a, b)])
    x, truth = kept_images[idx], [caption_for(d) for d in kept_labels[idx].tolist()]
    most = torch.stack([means[i][k] for i in idx.tolist()]).argmax(1)  # most-attended patch, per image
    random_ink = torch.multinomial(ink[idx].float(), 1, generator=gen).squeeze(1)  # a random inked patch
    changed = {}
    for name, patches in [("most attended", most), ("random inked", random_ink)]:
        texts = model.decode(model.generate(erase(x, patches)))
        changed[name] = sum(t != y for t, y in zip(texts, truth)) / len(truth)
    print(f"{a} vs {b}: erasing the most-attended patch changes {changed['most attended']:.0%} of {len(truth)} captions, "
          f"erasing a random inked patch {changed['random inked']:.0%}")
    erased[a, b] = changed

# %%
check("erasing the most-attended patch changes fewer than 15% of the captions, for every pair",
      all(c["most attended"] < 0.15 for c in erased.values()), f"{erased}")
check("and at least as many as erasing a random inked patch", all(c["most attended"] >= c["random inked"]
                                                                for c in erased.values()), f"{erased}")

# %% [markdown]
# **What the erasures say.** The patch the deciding letter attends to most matters more than a random stroke:
# erasing it changes more captions. But it changes few — about one in ten at most — so the decision does not sit
# in the one patch the map points at. Two reasons. The decoder does not read pixels but patch embeddings that
# the ViT's self-attention has already mixed (section 4's rollout), so the evidence of a stroke is spread over
# many embeddings, and the neighbours of an erased patch still carry it. And a map says where a head read, not
# how much what it read changed the prediction: a large weight on a patch whose value barely moves the output
# explains little. This is the point of Jain and Wallace (2019), *Attention is not Explanation*: attention
# weights often disagree with measures of what a prediction depends on, and quite different weights can give the
# same prediction. Treat a map as a hypothesis and test it by intervention, as here (Wiegreffe and Pinter, 2019,
# argue the counterpoint: under some tests attention does carry explanatory signal).
#
# **The second letter: remembered, or read again?** After the shared *s* of *six* and *seven* (and the *t* of
# *two*/*three*, the *f* of *four*/*five*) the model must choose again. It could remember what it read at the
# first letter — that reading sits in the earlier position's state, which causal self-attention can reach — or
# look at the image again. An intervention tells them apart: we run the decoder up to the first letter on the
# true image, and at the second letter's step alone replace every cross-attention output by the one it gives on
# an image of the *other* digit of the pair (activation patching). If the letter were remembered, it would not
# change.

# %%
partner = {2: 3, 3: 2, 4: 5, 5: 4, 6: 7, 7: 6}  # digit words that share their first letter
chosen = (torch.isin(kept_labels, torch.tensor(list(partner)))).nonzero().squeeze(1)
digits = kept_labels[chosen].tolist()
others = torch.tensor([(kept_labels == partner[d]).nonzero()[i % 50].item() for i, d in enumerate(digits)])
prefix = torch.tensor([model.tokenizer(caption_for(d))["input_ids"][: decide + 2] for d in digits])  # <bos>…s
letter = lambda ds: torch.tensor([model.tokenizer.convert_tokens_to_ids(caption_for(d)[decide + 1]) for d in ds])
own, other = letter(digits), letter([partner[d] for d in digits])


def next_letter(x, hook=None):
    # the predicted second letter, with `hook(layer)` on every cross-attention module
    handles = [m.register_forward_hook(hook(l)) for l, m in enumerate(model.decoder.cross_attention_layers)] if hook else []
    try:
        with torch.no_grad():
            return model(x, prefix)[:, -1].argmax(-1)
    finally:
        for h in handles:
            h.remove()


seen = {}  # layer -> cross-attention output at the last step, on the other digit's image
def record(layer):
    return lambda module, args, out: seen.__setitem__(layer, out[0][:, -1].clone())


def swap(layer):
    def hook(module, args, out):
        y = out[0].clone()
        y[:, -1] = seen[layer]  # the last step reads the other image; every earlier step read the true one
        return (y, *out[1:])
    return hook


normal = next_letter(kept_images[chosen])
next_letter(kept_images[others], record)
patched = next_letter(kept_images[chosen], swap)
follows_own, follows_other = (patched == own).float().mean().item(), (patched == other).float().mean().item()
print(f"{len(digits)} images of 2, 3, 4, 5, 6, 7: second letter right {(normal == own).float().mean():.0%} as they are")
print(f"with the second letter's cross-attention taken from the other digit's image: it follows the true image "
      f"{follows_own:.0%}, the other image {follows_other:.0%}")
maps_at = lambda position: torch.stack([means[i][position] for i in chosen.tolist()])  # (n, grid²) mean maps
ink_share = ink[chosen].float().mean().item()  # the share of the grid that holds ink, in these images
on_ink_at = {name: (maps_at(position) * ink[chosen]).sum(1).mean().item()
             for name, position in [("first", decide), ("second", decide + 1)]}
for name, position in [("first", decide), ("second", decide + 1)]:
    print(f"their {name} letter's mean map: {patches_looked_at(maps_at(position)).mean():.1f} patches looked at, "
          f"{on_ink_at[name]:.0%} on ink (ink patches: {ink_share:.0%} of the grid)")

# %%
check("patched at the second letter's step alone, most second letters (over 70%) follow the other image",
      follows_other > 0.7, f"{follows_other:.0%}")
check("yet the second letter's mean map puts within 10 points of the ink's share of the grid on ink, where the "
      "first letter's puts over 50%", abs(on_ink_at["second"] - ink_share) < 0.10 and on_ink_at["first"] > 0.5,
      f"{on_ink_at} against {ink_share:.0%}")

# %% [markdown]
# The model reads the image again. With only the second letter's cross-attention swapped, most second letters
# follow the *other* image, although every earlier step, the first letter's included, read the true one. What
# the first letter's step read is not carried forward through self-attention strongly enough to decide: the
# second letter's own reading of the image decides it.
#
# Its map does not look like a look, though. At the first letter the mean map gathers on the ink; at the second
# it spreads over most of the grid, and its share on ink is close to what a map spread evenly would give (the
# last two lines printed above; section 5.1's "other letters" row says the same for every letter after the first).
# A nearly even map can still carry the digit: what it averages are the ViT's patch embeddings, each of which
# already mixes in much of the image (section 4's rollout: a patch keeps only a small share of itself). So a map
# says where a step read, not whether what it read mattered; the patching is what shows that the second letter's
# reading decides.

# %% [markdown]
# ### 5.4 Do heads specialise?
#
# Per head, over the same images: how many patches it looks at and how much of its attention lands on
# ink, while writing the fixed words and at the digit word's first letter.

# %%
fixed = torch.stack([c.attention[:decide].flatten(-2) for c in kept])  # (n, characters, layers, heads, grid²)
first = torch.stack([c.attention[decide].flatten(-2) for c in kept])  # (n, layers, heads, grid²)
ink_ = ink[:, None, None, :].float()  # (n, 1, 1, grid²)
looked = {"fixed": patches_looked_at(fixed).mean((0, 1)), "first": patches_looked_at(first).mean(0)}  # (layers, heads)
on_ink = {"fixed": (fixed.mean(1) * ink_).sum(-1).mean(0), "first": (first * ink_).sum(-1).mean(0)}
print(f"{'':16}{'patches looked at':>22}{'share on ink':>22}")
print(f"{'':16}{'fixed':>11}{'1st letter':>11}{'fixed':>11}{'1st letter':>11}")
for layer in range(layers):
    for h in range(heads):
        print(f"layer {layer} head {h}:{looked['fixed'][layer, h]:11.1f}{looked['first'][layer, h]:11.1f}"
              f"{on_ink['fixed'][layer, h]:11.0%}{on_ink['first'][layer, h]:11.0%}")

name = lambda flat: "layer {} head {}".format(*divmod(int(flat), heads))
narrowing = looked["fixed"] - looked["first"]
print(f"\nat the deciding letter the most focused head is {name(looked['first'].argmin())} "
      f"({looked['first'].min():.1f} patches), the most spread {name(looked['first'].argmax())} ({looked['first'].max():.1f});")
print(f"the head that narrows most from the fixed words to the deciding letter: {name(narrowing.argmax())} "
      f"({looked['fixed'].flatten()[narrowing.argmax()]:.1f} → {looked['first'].flatten()[narrowing.argmax()]:.1f} patches)")
print(f"while writing the fixed words the head most on ink is {name(on_ink['fixed'].argmax())} "
      f"({on_ink['fixed'].max():.0%}); at the deciding letter it puts {on_ink['first'].flatten()[on_ink['fixed'].argmax()]:.0%} there")

mean_digit = kept_images.mean(0)[0]
avg = first.mean(0).reshape(layers, heads, g, g).numpy()  # each head's mean map
vmax = avg.max()  # one colour scale for every head, so their weights compare
fig, axes = plt.subplots(layers, heads, figsize=(1.7 * heads + 0.8, 1.8 * layers), squeeze=False, layout="constrained")
for layer in range(layers):
    for h in range(heads):
        axes[layer, h].imshow(viz.overlay(mean_digit, avg[layer, h], vmax))
        axes[layer, h].set_title(f"layer {layer} head {h}", fontsize=9)
        axes[layer, h].set_xticks([]); axes[layer, h].set_yticks([])
bar = fig.colorbar(plt.cm.ScalarMappable(plt.Normalize(0, vmax), viz.CMAP), ax=axes, shrink=0.9)
bar.set_label("attention weight", fontsize=8)
fig.suptitle("each head's mean map at the deciding letter, on the mean digit (one colour scale)", fontsize=10)
plt.show()

# %%
least = on_ink["first"].argmin()  # the head that looks least at the ink at the deciding letter
check("at the deciding letter every head puts more than half of its attention on ink: no head rests elsewhere",
      on_ink["first"].min() > 0.5, f"{name(least)}: {on_ink['first'].flatten()[least]:.0%}")

# %% [markdown]
# Every head puts most of its weight on the ink when the digit word begins. That is not a given. A softmax must
# put its weight somewhere, and a head with nothing useful to fetch at a step can park it on patches that carry
# no information — a pattern known as an **attention sink**. The checkpoint shipped before this one (linear
# patch embedding, no stroke augmentation) had such a head: at the deciding letter it spread over many patches
# and put only 16% of its weight on ink, the blank margin taking the rest. Darcet et al. (2024), *Vision
# Transformers Need Registers*, found large ViTs doing this with background patches, and gave them extra
# "register" tokens to park on instead; language models do it with their first token (Xiao et al., 2024). So
# before reading a bright spot as something the model looked *for*, check, as the table above does, whether it
# is only where a head rests. (Run this section on a captioner you trained yourself: does it have a sink?)

# %% [markdown]
# ## 6 · The attention explorer
#
# Pick a test image by its index, a character of its caption, a layer and a head (or the mean). The
# caption is shown with the chosen character highlighted, the map below it. Try the 4s and 9s, the 3s
# and 8s you measured above, and the images the model gets wrong.

# %%
# NBVAL_IGNORE_OUTPUT
# (why: a widget's output holds its model id, which changes on every run)
explorer = AttentionExplorer(model, images, labels)
explorer

# %% [markdown]
# Every control is an attribute, so code can drive the explorer too (handy for a quick look, and for tests):

# %%
wrong = [i for i, ok in enumerate(right.tolist()) if not ok]
print(f"{len(wrong)} of the first {N} test images are captioned wrongly; the first of them is image {wrong[0] if wrong else None}")
if wrong:
    explorer.index.value = wrong[0]
    explorer.char.value = decide
    print(f"image {wrong[0]} shows a {int(labels[wrong[0]])}; the model wrote {explorer.caption.text!r}")

# %% [markdown]
# ## 7 · Draw your own
#
# Draw a digit in the box with the mouse, a pen or a finger. When you lift it, the drawing goes to Python,
# which turns it into the 28×28 image the model expects (`crossmodal.preprocess_drawing`: crop to the ink,
# fit into 20×20, centre by mass, as MNIST was made), captions it and draws one map per character. The
# small picture beside the box is exactly what the model sees. *clear* starts again; the slider sets
# the brush. (In Colab the setup cell has already switched on the widget manager the pad needs.)

# %%
# NBVAL_IGNORE_OUTPUT
# (why: a widget's output holds its model id, which changes on every run)
pad = DrawingPad(model)
pad

# %% [markdown]
# Everything the pad does on a stroke's end is the Python method `update_from_pixels`, so you can feed it a
# drawing from code. Here is a "1" drawn as a vertical bar on the pad's 112 × 112 grid, and an empty canvas:

# %%
canvas = np.zeros((112, 112), dtype=np.uint8)
canvas[16:96, 52:61] = 255  # one vertical stroke
pad.update_from_pixels(canvas)
print(f"caption: {pad.caption!r}")
display(Image(pad.strip_png))
pad.update_from_pixels(np.zeros((112, 112), dtype=np.uint8))
print(f"empty canvas: caption {pad.caption!r}, message {pad.message!r}")

# %% [markdown]
# ## 8 · Exercise: the centre of attention
#
# Write `my_centre_of_attention(m)`: the attention-weighted mean position of a map `m` (grid × grid), as
# (row, column) in patch units, where patch (0, 0) is the top-left. A map with all its weight on one
# patch has that patch as its centre; an even map has the grid's middle.
#
# Write your code in place of `return None` and run the cell: its last line checks your answer (✓ when it is
# right, a hint when not), after checking the solution in the collapsed cell just above it, if you want it.

# %% [solution]
# Solution (collapsed: click to expand)
def solution_centre_of_attention(m):
    m = np.asarray(m)
    rows, cols = np.indices(m.shape)  # each patch's row and column
    return float((m * rows).sum() / m.sum()), float((m * cols).sum() / m.sum())

# %%
def my_centre_of_attention(m):
    return None  # ← your code here


def check_centre(answer):
    one_hot = np.zeros((g, g))
    one_hot[1, g - 1] = 1
    assert np.allclose(answer(one_hot), (1, g - 1)), "all weight on one patch: the centre is that patch"
    even = np.full((g, g), 1 / g**2)
    assert np.allclose(answer(even), ((g - 1) / 2, (g - 1) / 2)), "an even map is centred on the grid's middle"
    # against pixels: spread each patch's weight over its 10 × 10 pixels, then take the pixels' centre of mass
    m = viz.attention_map(caption, decide)
    big = viz.upsample(m, 10 * g) / 100
    centres = (np.arange(10 * g) + 0.5) / 10 - 0.5  # each pixel's centre, in patch units
    assert np.allclose(answer(m), ((big.sum(1) * centres).sum(), (big.sum(0) * centres).sum())), \
        "not the weighted mean position: weigh each patch's (row, column) by its attention"


attempted = exercise("Exercise", check_centre, my_centre_of_attention, solution_centre_of_attention)

# %% [markdown]
# Now use it (or, until you have written it, the solution): where is the model's attention centred, on average
# over the 7s, when it writes the first character of the caption and when it writes the digit word's first letter?

# %%
sevens = (kept_labels == 7).nonzero().squeeze(1).tolist()
for position, name in [(0, "'T' of 'This'"), (decide, "the digit word's first letter")]:
    centre_of = my_centre_of_attention if attempted else solution_centre_of_attention
    centres = np.array([centre_of(means[i][position].reshape(g, g)) for i in sevens])
    print(f"7s, {name}: centre at row {centres[:, 0].mean():.2f}, column {centres[:, 1].mean():.2f}")

# %% [markdown]
# ## Summary
#
# - A cross-attention map is a softmax over patches: for each character, layer and head, where that
#   step read the image. `model.caption` returns them all; `viz.attention_map` picks one or averages.
# - Heads and layers differ; the mean is a summary, not the whole story. Rollout, which you wrote out in a few
#   lines and checked equal to `viz`'s, follows the mean map back through the ViT's mixing to input patches.
# - The numbers in section 5 answered the questions for *this* model: it is far more focused, and on the ink,
#   at the digit word's first letter than while writing the fixed words; there its map covers the digit's ink
#   but puts no more on the strokes that separate look-alike digits than an even spread over the ink would;
#   and its heads differ.
# - Attention is a reading, not a proof: erasing the attended patch changes few captions (attention is not
#   explanation), while swapping what one step reads (activation patching) shows that the second letter of a
#   digit word is decided by reading the image again, not remembered, although that step's map is spread
#   nearly evenly over the grid.
# - A head that spreads its weight over the blank margin is an attention sink: bright is not always looked
#   *for*. This checkpoint's heads all look at the ink at the deciding letter; the one shipped before had a sink.
# - `AttentionExplorer` and `DrawingPad` put all of this under your mouse; both are plain Python underneath.
#
# **Next:** [07 · Reading a whole number](07_reading_numbers.ipynb) — a reader of handwritten numbers, whose
# attention has to sweep from one digit to the next.
#
# ## References
#
# - Xu et al. (2015), [Show, Attend and Tell: Neural Image Caption Generation with Visual Attention](https://arxiv.org/abs/1502.03044) — attention maps over a caption, the picture this notebook draws
# - Abnar and Zuidema (2020), [Quantifying Attention Flow in Transformers](https://arxiv.org/abs/2005.00928) — attention rollout
# - Jain and Wallace (2019), [Attention is not Explanation](https://arxiv.org/abs/1902.10186); Wiegreffe and Pinter (2019), [Attention is not not Explanation](https://arxiv.org/abs/1908.04626)
# - Darcet et al. (2024), [Vision Transformers Need Registers](https://arxiv.org/abs/2309.16588) — heads that park their attention on uninformative patches
# - Xiao et al. (2024), [Efficient Streaming Language Models with Attention Sinks](https://arxiv.org/abs/2309.17453)
