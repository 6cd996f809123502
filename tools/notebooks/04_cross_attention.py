# %% [markdown]
# # 04 · Cross-attention: the writer looks at the picture
#
# Notebook 02 turned a digit into 49 patch vectors; notebook 03 built a GPT that writes
# *"This is the number …"* one character at a time — but blind: it can only guess the digit.
# This notebook joins the two. **Cross-attention** is attention with two inputs: the *queries* come from
# the text being written, the *keys* and *values* from the image's patches. We build it from scratch,
# draw its shapes, put it inside a decoder block between self-attention and the MLP, and prove that the
# result is exactly `crossmodal`'s decoder and transformers' GPT-2 with `add_cross_attention=True`.
# Last, you assemble a whole captioner from your own parts and prove it writes exactly what the library's
# trained captioner writes.


# %% [markdown]
# ## What you will learn
#
# - the two ways to give a language model eyes: image tokens in the sequence, or cross-attention;
# - cross-attention from scratch: text queries (B, T) against image keys/values (B, N), weights (B, H, T, N);
# - what it cannot do on its own: mix characters, or know where a patch is;
# - a decoder block that looks: causal self-attention → cross-attention → MLP;
# - cross-attention in every k-th layer only, as Flamingo and Llama 3.2 Vision do;
# - your captioner, assembled from your parts: ViT → projector → your blocks, equal to `crossmodal.VisionLanguageModel`
#   with the shipped weights;
# - proof: our block = `crossmodal.nn.decoder.DecoderBlock`, and `crossmodal.Decoder` = GPT-2 with cross-attention.
#
# It trains nothing, and runs top to bottom in well under a minute on a laptop CPU.

# %%
%matplotlib inline
%config InlineBackend.figure_format = "png"
import math

import matplotlib.pyplot as plt
import torch
from torch import nn

from crossmodal import Decoder, DecoderConfig
from crossmodal import scaled_dot_product_attention as attention  # notebook 01's attention: (output, weights)
from crossmodal.checks import exercise  # an exercise's check: the solution's, then yours

torch.manual_seed(0)
torch.set_num_threads(2)  # fixed, so every run gives the same numbers
torch.set_printoptions(precision=3, sci_mode=False)
plt.rcParams["figure.dpi"] = 100  # sharp enough on GitHub and Colab, and the notebook stays small

test_images, test_labels = crossmodal.load_mnist(train=False)  # (10000, 1, 28, 28) in [0, 1], (10000,)
print(test_images.shape, test_labels.shape)

# %% [markdown]
# ## 1. Two ways to give a language model eyes
#
# The ViT of notebook 02 hands us the image as a sequence of N = 49 vectors, one per 4×4 patch. The GPT
# of notebook 03 reads a sequence of T characters. There are two ways to let the second read the first:
#
# - **Image tokens in the sequence** (LLaVA, nanoVLM, most chat VLMs): project the 49 patch vectors to the
#   text width and put them *in front of* the text. Ordinary causal self-attention then sees both. Simple,
#   but every layer now pays for T + 49 positions, and the language model's input changes.
# - **Cross-attention** (the original 2017 Transformer's decoder, Flamingo, Llama 3.2 Vision): the text stays
#   text. Inside the decoder, a layer lets each character's vector *query* the image's patch vectors. The
#   image is a side input — the **memory** — that the decoder consults.
#
# Our captioner does the second:
#
# ```
# image (B, 1, 28, 28) ─ViT─▶ (B, 49, 64) ─projector─▶ memory (B, N=49, dim)
#                                                               │ keys and values
#                                                               ▼
# "<bos>This is the n…" ─▶ (B, T, dim) ─▶ [ self-attn → cross-attn → MLP ] × depth ─▶ logits (B, T, vocab)
#                                                      ▲ queries: the text
# ```

# %% [markdown]
# ## 2. Cross-attention from scratch
#
# Notebook 01's multi-head self-attention computed queries, keys and values from the same `x`.
# Cross-attention changes one thing: keys and values come from `memory`. Because the text has T positions
# and the image N, the weight matrix is T × N — not square — and there is **no causal mask**: the whole
# image is there from the start, so every character may look at every patch.

# %%
class CrossAttention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        assert dim % num_heads == 0, "dim must split evenly into heads"
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.q = nn.Linear(dim, dim)  # queries: from the text
        self.k = nn.Linear(dim, dim)  # keys: from the image
        self.v = nn.Linear(dim, dim)  # values: from the image
        self.proj = nn.Linear(dim, dim)
        self.weights = None  # the last attention weights, kept to look at

    def forward(self, x, memory):
        B, T, C = x.shape  # the text: T characters
        N = memory.size(1)  # the image: N patches
        split = lambda t, n: t.view(B, n, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, n, hd)
        q = split(self.q(x), T)  # (B, H, T, hd)
        k, v = split(self.k(memory), N), split(self.v(memory), N)  # (B, H, N, hd) each
        out, self.weights = attention(q, k, v)  # (B, H, T, hd), weights (B, H, T, N): no mask
        return self.proj(out.transpose(1, 2).reshape(B, T, C))  # (B, T, dim)


B, T, N, DIM, HEADS = 2, 26, 49, 64, 4
xattn = CrossAttention(DIM, HEADS)
x = torch.randn(B, T, DIM)  # stands for the text's vectors inside the decoder
memory = torch.randn(B, N, DIM)  # stands for the image's patch vectors
y = xattn(x, memory)
print("text x:       ", tuple(x.shape), "= (B, T, dim)")
print("image memory: ", tuple(memory.shape), "= (B, N, dim)")
print("output:       ", tuple(y.shape), "= (B, T, dim): one vector per character, like the input")
print("weights:      ", tuple(xattn.weights.shape), "= (B, H, T, N): per head, each character's weights over the patches")
print(f"weights sum over the patches to {xattn.weights.sum(-1).min():.6f} … {xattn.weights.sum(-1).max():.6f}")

# %% [markdown]
# ## 3. The shapes, drawn
#
# One head, one image, the real caption and a real digit (the models are untrained, so the numbers are
# noise — look at the shapes). For a matrix product `A @ B` we draw `A` on the left and `B` above, the
# result where they meet: first `Q Kᵀ` gives the T × N weights (after scaling and a softmax over each
# row), then `weights @ V` gives one head-sized vector per character.

# %%
caption = "This is the number seven."
seven = test_images[(test_labels == 7).nonzero()[0]]  # (1, 1, 28, 28): the first 7 of the test set
torch.manual_seed(0)
vit = crossmodal.VisionTransformer(crossmodal.VisionConfig())  # notebook 02's ViT, untrained
embed = nn.Embedding(128, DIM)  # a stand-in for the decoder's character embeddings (indexed by ASCII code)
with torch.no_grad():
    patches = vit.forward_features(seven)  # (1, 49, 64)
    chars = embed(torch.tensor([[ord(c) for c in caption]]))  # (1, 25, 64)
    xattn(chars, patches)
    h = 0  # the head to draw
    split = lambda t: t.view(1, -1, HEADS, DIM // HEADS)[0, :, h]  # (n, hd) for head h
    Q, K, V = split(xattn.q(chars)), split(xattn.k(patches)), split(xattn.v(patches))
    W = xattn.weights[0, h]  # (T, N)
    O = W @ V  # (T, hd)
print(f"Q {tuple(Q.shape)}  Kᵀ {tuple(K.T.shape)}  weights {tuple(W.shape)}  V {tuple(V.shape)}  out {tuple(O.shape)}")
print(f"rows of the weights sum to {W.sum(1).min():.3f}…{W.sum(1).max():.3f}; uniform would be 1/49 = {1 / 49:.4f}")

# %%
def draw_cross_attention(Q, K, W, V, O, text, image, row, title):
    """The matrix products of one cross-attention head, each matrix drawn at its shape (one cell per number).

    The row of character `row` of `text` is outlined in Q, the weights and the output.
    """
    T, hd = Q.shape
    N = K.size(0)
    gap = 4
    fig, ax = plt.subplots(figsize=(9, 8.5))

    def put(m, x0, y0, cmap, label, where="top"):  # the matrix m with its top-left corner at (x0, y0)
        rows, cols = m.shape
        ax.imshow(m, cmap=cmap, extent=(x0, x0 + cols, y0 + rows, y0), interpolation="nearest")
        ax.add_patch(plt.Rectangle((x0, y0), cols, rows, fill=False, lw=1))
        if where == "top":
            ax.text(x0 + cols / 2, y0 - 1, label, ha="center", va="bottom", fontsize=9)
        else:
            ax.text(x0 + cols / 2, y0 + rows + 1, label, ha="center", va="top", fontsize=9)

    xs = [0, hd + gap, hd + gap + N + gap]  # columns: Q | weights | out
    put(Q, xs[0], 0, "RdBu_r", f"Q  ({T}×{hd})\nrow t: character t", "bottom")
    put(W, xs[1], 0, "viridis", f"softmax(Q Kᵀ / √{hd})  ({T}×{N})\nrow t: where character t looks", "bottom")
    put(O, xs[2], 0, "RdBu_r", f"out  ({T}×{hd})\n= weights @ V", "bottom")
    put(K.T, xs[1], -hd - gap, "RdBu_r", f"Kᵀ  ({hd}×{N}), from the patches")
    put(V, xs[2], -N - gap, "RdBu_r", f"V  ({N}×{hd})\nfrom the patches")
    g = int(math.sqrt(N))  # the digit, cut into its g × g patches, in the free corner
    ax.imshow(image, cmap="gray", extent=(xs[0], xs[0] + hd, -gap, -hd - gap))
    for i in range(1, g):
        ax.plot([xs[0] + i * hd / g] * 2, [-gap, -hd - gap], color="tab:orange", lw=0.6)
        ax.plot([xs[0], xs[0] + hd], [-gap - i * hd / g] * 2, color="tab:orange", lw=0.6)
    ax.text(xs[0] + hd / 2, -hd - gap - 1, f"{g}×{g} = {N} patches", ha="center", va="bottom", fontsize=9)
    for x0, width in [(xs[0], hd), (xs[1], N), (xs[2], hd)]:  # one character's row, all the way through
        ax.add_patch(plt.Rectangle((x0, row), width, 1, fill=False, lw=2, color="tab:orange"))
    ax.annotate(f"{text[row]!r}\n(character {row})", (xs[0], row + 0.5), (-5, row + 0.5), fontsize=9,
                ha="right", va="center", color="tab:orange", arrowprops={"arrowstyle": "->", "color": "tab:orange"})
    ax.set(xlim=(-16, xs[2] + hd + 1), ylim=(T + 6, -N - gap - 4), title=title)
    ax.axis("off")
    plt.show()


row = caption.index("seven")  # the digit word's first letter: the first character that depends on the image
draw_cross_attention(Q, K, W, V, O, caption, seven[0, 0], row, "one head of cross-attention (untrained)")
print(f"the weights lie between {W.min():.4f} and {W.max():.4f}; uniform would be 1/{N} = {1 / N:.4f}")

# %% [markdown]
# Read it from the top: the digit becomes 49 patch vectors, which become the 49 columns of `Kᵀ` and the 49
# rows of `V`. Each of the 25 characters brings a query (a row of `Q`); its row of weights is a distribution
# over the 49 patches; its output is the matching blend of the patches' values. The colours stretch from the
# smallest weight to the largest, so the stripes look strong — but untrained, every weight is within a small
# factor of 1/49 (the range is printed under the figure): no row picks out patches yet. Training will make
# rows pick patches.

# %% [markdown]
# ## 4. What cross-attention does not do
#
# Two properties follow from the formula, and both shape the rest of the model. First: **characters do not
# see each other** in cross-attention. Character t's output depends only on its own query and the image.
# Change one character and only its own output row changes — unlike causal self-attention, where every
# later character is affected too.

# %%
x2 = x.clone()
x2[:, 5] += 1.0  # change character 5 only
with torch.no_grad():
    changed = (xattn(x2, memory) - xattn(x, memory)).abs().amax(dim=(0, 2)) > 1e-6  # (T,)
    selfattn = crossmodal.MultiHeadAttention(DIM, HEADS)
    changed_self = (selfattn(x2, is_causal=True) - selfattn(x, is_causal=True)).abs().amax(dim=(0, 2)) > 1e-6
print("cross-attention: rows changed:      ", changed.nonzero().flatten().tolist())
print("causal self-attention: rows changed:", changed_self.nonzero().flatten().tolist())

# %% [markdown]
# That is why a decoder block needs *both*: self-attention passes information along the text ("I have
# written *This is the number s*"), cross-attention fetches it from the image ("the digit has a horizontal
# bar on top").
#
# Second: cross-attention **does not know where a patch is**. Shuffle the 49 patches — keys and values
# together — and every output stays the same: the weighted average does not care about order. The position
# of a patch has to travel *inside* its vector: that is the job of the ViT's position embeddings
# (notebook 02), added before the patches ever reach the decoder.

# %%
perm = torch.randperm(N)
with torch.no_grad():
    shuffled = xattn(x, memory[:, perm])
    diff = (shuffled - xattn(x, memory)).abs().max().item()
print(f"max |output(shuffled patches) − output| = {diff:.1e}")
assert diff <= 1e-5

# %% [markdown]
# ## 5. Proof: ours = `crossmodal` = PyTorch
#
# `crossmodal.MultiHeadAttention` (notebook 01) is already a cross-attention: pass the image as `context`.
# It packs keys and values into one Linear, `kv` — they are both computed from the image, so one matmul
# does both, and generation can cache its result (notebook 03, section 8). PyTorch's `nn.MultiheadAttention` takes
# `(query, key, value)` separately: `ref(x, memory, memory)`. Copy the same numbers into each:

# %%
lib = crossmodal.MultiHeadAttention(DIM, HEADS)
ref = nn.MultiheadAttention(DIM, HEADS, batch_first=True)
with torch.no_grad():
    lib.q.load_state_dict(xattn.q.state_dict())
    lib.kv.weight.copy_(torch.cat([xattn.k.weight, xattn.v.weight]))  # (2·dim, dim): keys, then values
    lib.kv.bias.copy_(torch.cat([xattn.k.bias, xattn.v.bias]))
    lib.proj.load_state_dict(xattn.proj.state_dict())
    ref.in_proj_weight.copy_(torch.cat([xattn.q.weight, xattn.k.weight, xattn.v.weight]))  # (3·dim, dim)
    ref.in_proj_bias.copy_(torch.cat([xattn.q.bias, xattn.k.bias, xattn.v.bias]))
    ref.out_proj.load_state_dict(xattn.proj.state_dict())

    ours = xattn(x, memory)
    for name, theirs in [("crossmodal.MultiHeadAttention", lib(x, context=memory)),
                         ("nn.MultiheadAttention", ref(x, memory, memory)[0])]:
        diff = (ours - theirs).abs().max().item()
        print(f"max |ours − {name}| = {diff:.1e}")
        assert diff <= 1e-6

# %% [markdown]
# ### Exercise 1 — read the weights out of the library's module
#
# The library's module runs the fast fused attention, which never returns its weights. Write
# `my_cross_weights(attn, x, memory)`: the (B, H, T, N) cross-attention weights of a
# `crossmodal.MultiHeadAttention` module `attn`, computed from its parts (`attn.q`, `attn.project_kv`,
# `attn.split_heads`). The check compares them with what the module returns when asked
# (`attn(x, context=memory, need_weights=True)`, the call notebook 06's maps rely on).
#
# Write your code in place of `return None` and run the cell: its last line checks your answer (✓ when it is
# right, a hint when not), after checking the solution in the collapsed cell above it.

# %% [solution]
# Solution (collapsed: click to expand)
def solution_cross_weights(attn, x, memory):
    q = attn.split_heads(attn.q(x))  # (B, H, T, hd)
    k, _ = attn.project_kv(memory)  # (B, H, N, hd)
    return (q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))).softmax(dim=-1)  # (B, H, T, N)

# %%
def my_cross_weights(attn, x, memory):
    return None  # ← your code here


with torch.no_grad():
    _, _, lib_weights = lib(x, context=memory, need_weights=True)


def check_cross_weights(answer):
    with torch.no_grad():
        mine = answer(lib, x, memory)
    assert mine.shape == (B, HEADS, T, N), f"expected (B, H, T, N) = {(B, HEADS, T, N)}, got {tuple(mine.shape)}"
    assert torch.allclose(mine, lib_weights, atol=1e-6), "not the module's weights: check the scale and the softmax axis"


attempted = exercise("Exercise 1", check_cross_weights, my_cross_weights, solution_cross_weights)

# %% [markdown]
# ## 6. A decoder block that looks
#
# Notebook 03's `GPTBlock` was pre-norm: `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`. We slot
# cross-attention between the two, with its own LayerNorm — the layout of GPT-2 built with
# `add_cross_attention=True`. The order of the three sub-layers is the original Transformer's decoder's (Vaswani
# et al., 2017); the norms are not: it was **post-norm**, `ln(x + sublayer(x))`, each LayerNorm after the
# residual sum. GPT-2 moved each LayerNorm to the input of its sub-layer (pre-norm), which leaves the residual
# stream untouched and trains deep stacks more easily (Xiong et al., 2020):
#
# ```
# x ─▶ x + self_attn(ln_1(x))          text reads the earlier text (causal)
#   ─▶ x + cross_attn(ln_cross(x), m)  text reads the image
#   ─▶ x + mlp(ln_2(x))                each position thinks on its own
# ```
#
# Each sub-layer *adds* to the residual stream `x`, so the image's information arrives as one more term in
# the sum that the next layers read.

# %%
from crossmodal.nn.layers import Mlp  # fc1 → GELU → fc2, as in notebook 03


class SeeingBlock(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=4):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.attn = crossmodal.MultiHeadAttention(dim, num_heads)  # causal self-attention, as in notebook 03
        self.ln_cross = nn.LayerNorm(dim)
        self.cross_attn = CrossAttention(dim, num_heads)  # new: queries from x, keys and values from the image
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_ratio * dim, approximate="tanh")  # GPT-2's GELU

    def forward(self, x, memory):  # x (B, T, dim), memory (B, N, dim)
        x = x + self.attn(self.ln_1(x), is_causal=True)
        x = x + self.cross_attn(self.ln_cross(x), memory)
        return x + self.mlp(self.ln_2(x))  # (B, T, dim)


block = SeeingBlock(DIM, HEADS)
print(tuple(block(x, memory).shape))

# %% [markdown]
# **Proof: ours = `crossmodal.nn.decoder.DecoderBlock`.** The library's block has the same parts under the
# same names; only the cross-attention's keys and values are packed into one `kv`.

# %%
from crossmodal.nn.decoder import DecoderBlock

cfg = DecoderConfig(dim=DIM, num_heads=HEADS)
lib_block = DecoderBlock(cfg, cross_attention=True)
with torch.no_grad():
    for name in ["ln_1", "attn", "ln_cross", "ln_2", "mlp"]:  # the same modules: copied as they are
        getattr(lib_block, name).load_state_dict(getattr(block, name).state_dict())
    lib_block.cross_attn.q.load_state_dict(block.cross_attn.q.state_dict())
    lib_block.cross_attn.kv.weight.copy_(torch.cat([block.cross_attn.k.weight, block.cross_attn.v.weight]))
    lib_block.cross_attn.kv.bias.copy_(torch.cat([block.cross_attn.k.bias, block.cross_attn.v.bias]))
    lib_block.cross_attn.proj.load_state_dict(block.cross_attn.proj.state_dict())
    diff = (block(x, memory) - lib_block(x, memory)).abs().max().item()
print(f"max |SeeingBlock − crossmodal DecoderBlock| = {diff:.1e}")
assert diff <= 1e-6

# %% [markdown]
# ## 7. Cross-attention in every k-th layer
#
# Cross-attention in every layer is what GPT-2's `add_cross_attention=True` gives. The big models are
# sparser: Flamingo inserts its cross-attention layers every 4th layer in its 9B model and every 7th in its
# 80B model (Alayrac et al., 2022: fewer of them train faster, at a small cost in quality), and Llama 3.2
# Vision has 8 among its 40 layers, one every 5th — transformers' default `MllamaTextConfig` lists them.
# Both *insert* new layers between the language model's own: Flamingo a gated cross-attention plus a gated
# feed-forward, Mllama whole cross-attention decoder layers. `DecoderConfig(cross_attention_every=k)` does
# something simpler: it adds a cross-attention sub-layer *inside* existing blocks k−1, 2k−1, …; `k = 0` gives
# none: a blind decoder.

# %%
from transformers import MllamaTextConfig

llama = MllamaTextConfig()  # the default configuration (no weights are downloaded)
print(f"Llama 3.2 Vision (11B): {llama.num_hidden_layers} layers, cross-attention in", llama.cross_attention_layers)
every5 = DecoderConfig(depth=40, cross_attention_every=5)
print(f"DecoderConfig(depth=40, cross_attention_every=5):    in", [i for i in range(40) if every5.has_cross_attention(i)])

for k in [1, 2, 0]:
    c = DecoderConfig(vocab_size=24, dim=DIM, depth=4, num_heads=HEADS, cross_attention_every=k)
    d = Decoder(c)
    xparams = sum(p.numel() for b in d.blocks if b.cross_attn is not None
                  for p in [*b.cross_attn.parameters(), *b.ln_cross.parameters()])
    layers = [i for i, b in enumerate(d.blocks) if b.cross_attn is not None]
    print(f"depth 4, cross_attention_every={k}: cross-attention in layers {layers}; "
          f"{xparams:,} of {sum(p.numel() for p in d.parameters()):,} parameters")

# %% [markdown]
# The same one-in-five spacing, shifted by one (Llama's first is layer 3, ours layer 4) — in Llama those are
# layers of their own, in ours sub-layers of existing blocks. Fewer cross-attention layers
# means fewer parameters and less compute, but also fewer chances to consult the image; for a 2-layer
# MNIST captioner we keep one in every layer.

# %% [markdown]
# ## 8. Proof: `crossmodal.Decoder` = GPT-2 with cross-attention
#
# transformers' `GPT2LMHeadModel` built with `add_cross_attention=True` has exactly our block: `ln_1` →
# causal self-attention → `ln_cross_attn` → cross-attention to `encoder_hidden_states` → `ln_2` → MLP.
# `gpt2_config_for(cfg)` builds the matching GPT-2 configuration and `load_gpt2_weights` copies a GPT-2 into
# our decoder — transposing its `Conv1D` weights and unpacking its fused `c_attn`, and refusing any tensor
# that does not fit. Then both read the same characters and the same image memory:

# %%
from transformers import GPT2LMHeadModel

from crossmodal.nn.decoder import gpt2_config_for, load_gpt2_weights

torch.manual_seed(0)
cfg = DecoderConfig(vocab_size=24, dim=64, depth=2, num_heads=4, gated=False)  # the captioner's decoder shape
gpt2 = GPT2LMHeadModel(gpt2_config_for(cfg)).eval()
ours = load_gpt2_weights(Decoder(cfg), gpt2).eval()
tokens = torch.randint(0, cfg.vocab_size, (2, 27))  # (B, T)
image_memory = torch.randn(2, 49, cfg.dim)  # (B, N, dim)
with torch.no_grad():
    theirs = gpt2(input_ids=tokens, encoder_hidden_states=image_memory).logits  # (B, T, vocab)
    mine = ours(tokens, image_memory)
diff = (theirs - mine).abs().max().item()
print(f"logits {tuple(mine.shape)}; max |crossmodal.Decoder − GPT-2| = {diff:.1e}")
assert diff <= 1e-4

# %% [markdown]
# ## 9. Your captioner, assembled
#
# Every part of a captioner is now yours: the ViT of notebook 02 (the library's `VisionTransformer`, which
# notebook 02 proved equal to yours and to timm's), a linear projector from its width to the decoder's, and
# a decoder made of this notebook's `SeeingBlock`s with notebook 03's embeddings, final LayerNorm and tied
# `lm_head`. Put them together:
#
# ```
# images (B, 1, 28, 28) → normalise → encoder → projector → memory (B, 49, dim)
# tokens (B, T) → wte + wpe → SeeingBlock(·, memory) × depth → ln_f → lm_head → logits (B, T, vocab)
# ```
#
# ### Exercise 2 — the forward pass
#
# `MyCaptioner` below has every part; write its `forward(images, tokens)`. The pixels are normalised with
# MNIST's mean and std first (the encoder's `mean` and `std`). The check loads the weights of the captioner
# shipped with the package (notebook 05 trains one like it) into your model and compares the logits.

# %% [solution]
# Solution (collapsed: click to expand)
def solution_forward(self, images, tokens):
    x = (images - self.encoder.mean[0]) / self.encoder.std[0]  # (B, 1, 28, 28), MNIST's normalisation
    memory = self.projector(self.encoder.forward_features(x))  # (B, 49, 64) -> (B, 49, dim)
    x = self.wte(tokens) + self.wpe.weight[: tokens.size(1)]  # (B, T, dim)
    for block in self.blocks:
        x = block(x, memory)
    return self.lm_head(self.ln_f(x))  # (B, T, vocab)

# %%
def my_forward(self, images, tokens):
    return None  # ← your code here: the logits (B, T, vocab)


class MyCaptioner(nn.Module):
    def __init__(self, config, forward):
        super().__init__()
        v, d = config.vision, config.decoder
        self.encoder = crossmodal.VisionTransformer(v)  # notebook 02
        self.projector = nn.Linear(v.dim, d.dim)
        self.wte, self.wpe = nn.Embedding(d.vocab_size, d.dim), nn.Embedding(d.block_size, d.dim)  # notebook 03
        self.blocks = nn.ModuleList(SeeingBlock(d.dim, d.num_heads) for _ in range(d.depth))  # this notebook
        self.ln_f = nn.LayerNorm(d.dim)
        self.lm_head = nn.Linear(d.dim, d.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied, as in notebook 03
        self.forward_with = forward  # yours, or the solution

    def forward(self, images, tokens):
        return self.forward_with(self, images, tokens)


shipped = crossmodal.load_captioner()
weights = {}
for name, tensor in shipped.state_dict().items():
    name = name.removeprefix("decoder.")
    if ".cross_attn.kv." in name:  # the library packs keys and values in one Linear; yours has two
        k, v = tensor.chunk(2)
        weights[name.replace(".kv.", ".k.")], weights[name.replace(".kv.", ".v.")] = k, v
    else:
        weights[name] = tensor

from crossmodal.tasks.captions import caption_tokens

tokens = caption_tokens(shipped.tokenizer)[test_labels[:8]][:, :-1]  # (8, L - 1): <bos> + each true caption


def check_forward(answer):
    mine = MyCaptioner(shipped.config, answer).eval()
    mine.load_state_dict(weights, strict=True)  # every tensor has its place, none is left over
    with torch.no_grad():
        diff = (mine(test_images[:8], tokens) - shipped(test_images[:8], tokens)).abs().max().item()
    assert diff <= 1e-4, "not yet: normalise, encode, project, embed with positions, run the blocks, ln_f, lm_head"


written = exercise("Exercise 2 (MyCaptioner = crossmodal.VisionLanguageModel, to float precision ≤ 1e-4)",
                   check_forward, my_forward, solution_forward)

# %% [markdown]
# Same logits, so it writes the same captions. Greedy decoding, as in notebook 03, with your model (until you
# have written its forward, with the solution's):

# %%
@torch.no_grad()
def greedy_captions(model, images, max_len=30):
    tokens = torch.full((len(images), 1), shipped.config.bos_id)  # (B, 1): <bos>
    for _ in range(max_len):
        next_id = model(images, tokens)[:, -1].argmax(dim=-1)  # (B,)
        tokens = torch.cat([tokens, next_id[:, None]], dim=1)
    return [text.split("<eos>")[0] for text in shipped.tokenizer.batch_decode(tokens[:, 1:])]


mine = MyCaptioner(shipped.config, my_forward if written else solution_forward).eval()
mine.load_state_dict(weights, strict=True)
for digit, caption in zip(test_labels[:4].tolist(), greedy_captions(mine, test_images[:4])):
    print(f"a test {digit}: {caption!r}")

# %% [markdown]
# Two more ideas complete the cross-attention decoders of real systems, and each has a better home:
#
# - **Generation caches the image.** A caption is written one character at a time, and the image does not
#   change: its keys and values in every cross-attention layer can be computed once and kept, as the
#   keys and values of the text written so far can. Notebook 03, section 8, builds that cache (the KV
#   cache) for the text; `crossmodal.KVCache` keeps the image's as `cross_kv` beside it, and
#   `VisionLanguageModel.generate(use_cache=True)` uses both.
# - **The tanh gate.** Flamingo and Llama 3.2 Vision add cross-attention to a language model that already
#   knows how to write, behind a gate that starts closed, so that the model starts out exactly as the
#   language model was. Our captioner learns to write and to see at the same time and has nothing to
#   protect; [notebook 10](10_gpt2_eyes.ipynb) gives a pretrained GPT-2 eyes, where the gate matters and
#   is measured. (`DecoderConfig(gated=True)` adds one to this decoder's cross-attention too.)

# %% [markdown]
# ## Summary
#
# - Cross-attention is attention with two inputs: queries from the text (B, T), keys and values from the
#   image (B, N); its weights are (B, H, T, N), each row a distribution over the patches, with no causal mask.
# - It does not mix characters (self-attention does that) and does not know where a patch is (the ViT's
#   position embeddings do that).
# - A decoder block that looks: causal self-attention → cross-attention → MLP, each added to the residual
#   stream. Ours = `crossmodal.nn.decoder.DecoderBlock`, and `crossmodal.Decoder` = GPT-2 with
#   `add_cross_attention=True`, to float precision.
# - `cross_attention_every=k` puts cross-attention in every k-th layer only, as Flamingo and Llama 3.2 Vision do.
# - Your parts make a whole captioner: the ViT, a projector and your blocks, with the shipped weights, give
#   `crossmodal.VisionLanguageModel`'s logits and write its captions.
# - Two ideas wait elsewhere: the KV cache (notebook 03; the image's keys and values are cached too) and
#   Flamingo's tanh gate, which matters once the language model is pretrained (notebook 10).
#
# **Next:** [05 · Training the captioner](05_train_captioner.ipynb) — train the whole captioner on MNIST, watch
# its loss fall, measure what it gets right and wrong, and compare it with the blind decoder and the shipped
# checkpoint.
#
# ## References
#
# - Vaswani et al. (2017), [Attention Is All You Need](https://arxiv.org/abs/1706.03762) — cross-attention first appears in its encoder–decoder
# - Alayrac et al. (2022), [Flamingo: a Visual Language Model for Few-Shot Learning](https://arxiv.org/abs/2204.14198)
# - Llama Team (2024), [The Llama 3 Herd of Models](https://arxiv.org/abs/2407.21783) (its section 7 describes the cross-attention image adapter of Llama 3.2 Vision), and transformers' [Mllama documentation](https://huggingface.co/docs/transformers/model_doc/mllama)
# - Xiong et al. (2020), [On Layer Normalization in the Transformer Architecture](https://arxiv.org/abs/2002.04745) — post-norm, as in the original Transformer, and pre-norm
# - Xu et al. (2015), [Show, Attend and Tell: Neural Image Caption Generation with Visual Attention](https://arxiv.org/abs/1502.03044)
# - transformers' [Vision Encoder Decoder documentation](https://huggingface.co/docs/transformers/model_doc/vision-encoder-decoder) (a ViT + GPT-2 with `add_cross_attention=True`)
