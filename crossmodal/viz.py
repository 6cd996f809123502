"""Where the model looks: its cross-attention maps, drawn on the image.

A Generation (nn/model.py: a caption, a reading, an answer) holds, for every character the model wrote, the
attention weights over the patches of the step that wrote it: (chars, layers, heads, grid_h, grid_w), each map
summing to 1 over the patches. The functions below call it `caption`, whatever the model wrote.
This file turns those numbers into pictures, in three layers:

- array helpers (`caption_maps`, `attention_map`, `upsample`, `overlay`, `encoder_mixing`,
  `rollout_map`), which return numpy arrays that tests and the widgets use;
- plots (`plot_attention`, `plot_heads`, `plot_rollout`, `plot_caption_strip`), which return
  matplotlib Figures built without pyplot, so they work in scripts and tests as well as notebooks;
- `render_strip`, the caption strip drawn with numpy and PIL only: a hundred times faster than the
  matplotlib strip, fast enough for every stroke of the drawing pad.

Nothing here assumes a patch size: the grid comes from the maps themselves.
"""

from functools import lru_cache

import matplotlib
import numpy as np
import torch
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont

from .nn.layers import pair
from .nn.vit import VisionTransformer

CMAP = "inferno"  # dark = ignored, bright = looked at; readable in grey and by most colour-blind readers
ALPHA = 0.6  # how much of each pixel is heat rather than digit


# ---------------------------------------------------------------------------------------------
# Arrays


def caption_maps(caption, layer=None, head=None):
    """Every character's map as one array (chars, grid_h, grid_w), each map summing to 1.

    layer, head: an index, or None for the mean over layers / heads (a mean of maps that each
    sum to 1 still sums to 1).
    """
    attn = caption.attention  # (chars, layers, heads, grid_h, grid_w)
    _, L, H = attn.shape[:3]
    if layer is not None:
        layer = _checked(layer, L, "layer", f"the model has {L} cross-attention layers")
    if head is not None:
        head = _checked(head, H, "head", f"each layer has {H} heads")
    attn = attn.mean(1) if layer is None else attn[:, layer]  # (chars, heads, grid_h, grid_w)
    attn = attn.mean(1) if head is None else attn[:, head]  # (chars, grid_h, grid_w)
    return attn.double().numpy()  # float64, so sums are exact to print


def attention_map(caption, char, layer=None, head=None):
    """One character's cross-attention as a (grid_h, grid_w) array that sums to 1.

    char: the character's position in caption.text (negative counts from the end).
    layer, head: an index, or None for the mean (see `caption_maps`).
    """
    n = len(caption.attention)
    char = _checked(char, n, "char", f"the caption {caption.text!r} has {n} characters")
    return caption_maps(caption, layer, head)[char]


def upsample(attention, image_size=28):
    """(..., grid_h, grid_w) -> (..., H, W): each pixel takes the weight of its patch.

    image_size: H and W, as an int (square) or a pair. Nearest-neighbour on purpose: the model saw
    patches, so the map shows patches, not a blur. Works for any grid, also one that does not
    divide the image (a timm encoder resizes the digit).
    """
    attention = np.asarray(attention)
    (H, W), (gh, gw) = pair(image_size), attention.shape[-2:]
    rows, cols = np.arange(H) * gh // H, np.arange(W) * gw // W  # which patch row/column each pixel lies in
    return attention[..., rows[:, None], cols[None, :]]


def overlay(image, attention, vmax=None, alpha=ALPHA, cmap=CMAP):
    """The digit in grey with the map's colours blended on top: (..., H, W, 3) float RGB in [0, 1].

    image: (H, W) or (1, H, W) in [0, 1]. attention: (..., grid_h, grid_w).
    vmax: the weight drawn brightest (default: the largest in `attention`), so several maps
    drawn with one vmax share one colour scale.
    """
    image = np.asarray(image, dtype=np.float64).reshape(np.shape(image)[-2:])  # (H, W)
    heat = upsample(attention, image.shape) / (vmax or np.max(attention))  # (..., H, W) in [0, 1]
    colours = colormap_lut(cmap)[np.clip(np.rint(heat * 255), 0, 255).astype(np.intp)]  # (..., H, W, 3)
    return (1 - alpha) * image[..., None] + alpha * colours


@lru_cache(maxsize=8)
def colormap_lut(cmap=CMAP):
    """(256, 3) RGB in [0, 1]: a colormap as a lookup table, so colouring a map is one indexing."""
    return matplotlib.colormaps[cmap](np.linspace(0, 1, 256))[:, :3]


# Attention rollout for a captioner.
#
# Rollout (Abnar & Zuidema, 2020) follows attention back through the layers to the input. Which
# layers chain in a captioner? Not the decoder's: every cross-attention layer reads the same
# patch embeddings, the ViT's output, and adds what it read to the character's residual stream,
# so the layers' readings are combined by averaging their head-mean maps (`attention_map` with
# layer=None). What does chain is the ViT below them: after its self-attention layers, "patch
# embedding j" is a mixture of many input patches. Rollout unmixes it:
#
#     mixing = Â_L ··· Â_1,   Â_l = ½ I + ½ (head mean of ViT layer l's attention)
#
# (½ I is the residual path that carries each patch past the layer), and then
#
#     rollout = (mean cross-attention over layers and heads) @ mixing
#
# is the share of each *input* patch in what the character read. Left out: the image information
# a character gets through decoder self-attention from the characters before it.


def encoder_mixing(model, image):
    """(N, N) attention rollout through the captioner's ViT for one image (N patches).

    Row j is how much of each input patch ends up in patch embedding j; each row sums to 1.
    """
    if not isinstance(model.encoder, VisionTransformer):
        raise ValueError(f"rollout needs the encoder's attention weights, and a {type(model.encoder).__name__} "
                         "does not return them; use crossmodal's VisionTransformer encoder")
    with torch.inference_mode():
        x = torch.as_tensor(image).reshape(1, -1, *np.shape(image)[-2:]).to(model.device)  # (1, C, H, W)
        _, weights = model.encode_images(x, need_weights=True)  # one (1, heads, T, T) per ViT block
    means = [w[0].mean(0).double().cpu() for w in weights]  # (T, T) each, T = prefix + N tokens
    eye = torch.eye(len(means[0]), dtype=torch.float64)
    mixing = eye
    for a in means:
        mixing = (0.5 * eye + 0.5 * a) @ mixing  # rows: tokens after this layer; columns: input tokens
    p = model.encoder.num_prefix_tokens
    mixing = mixing[p:, p:]  # patches from patches: a class token is no part of the picture
    return (mixing / mixing.sum(1, keepdim=True)).numpy()


def rollout_map(caption, char, mixing):
    """(grid_h, grid_w), summing to 1: the input patches behind character `char`'s mean cross-attention."""
    a = attention_map(caption, char)  # (grid_h, grid_w) over patch embeddings
    return (a.reshape(-1) @ mixing).reshape(a.shape)  # over input patches


# ---------------------------------------------------------------------------------------------
# Figures


def plot_attention(caption, char, layer=None, head=None):
    """One character's map on the digit, with a colour bar in attention weight."""
    m = attention_map(caption, char, layer, head)
    fig = Figure(figsize=(3.4, 3.0), layout="constrained")
    ax = fig.add_subplot()
    _draw(ax, caption.image, m, m.max())
    _colour_bar(fig, ax, m.max())
    ax.set_title(f"{marked(caption.text, char)}\n{_which(layer, head)}", fontsize=9)
    return fig


def plot_heads(caption, char):
    """A grid of layers × heads for one character, with the head means in the last column and
    the layer means in the last row (the corner is the mean of everything). One colour scale."""
    L, H = caption.attention.shape[1:3]
    rows, cols = [*range(L), None], [*range(H), None]
    maps = [[attention_map(caption, char, layer, head) for head in cols] for layer in rows]
    vmax = max(m.max() for row in maps for m in row)
    fig = Figure(figsize=(1.3 * (H + 1) + 0.8, 1.3 * (L + 1) + 0.5), layout="constrained")
    axes = fig.subplots(L + 1, H + 1, squeeze=False)
    for r, layer in enumerate(rows):
        for c, head in enumerate(cols):
            _draw(axes[r, c], caption.image, maps[r][c], vmax)
            if r == 0:
                axes[r, c].set_title("mean" if head is None else f"head {head}", fontsize=9)
            if c == 0:
                axes[r, c].set_ylabel("mean" if layer is None else f"layer {layer}", fontsize=9)
    _colour_bar(fig, axes, vmax)
    fig.suptitle(marked(caption.text, char), fontsize=10)
    return fig


def plot_rollout(model, caption, char):
    """The digit, the mean cross-attention over patch embeddings, and its rollout to input patches."""
    mean = attention_map(caption, char)
    rolled = rollout_map(caption, char, encoder_mixing(model, caption.image))
    vmax = max(mean.max(), rolled.max())
    fig = Figure(figsize=(7.2, 2.8), layout="constrained")
    axes = fig.subplots(1, 3)
    axes[0].imshow(np.asarray(caption.image).reshape(np.shape(caption.image)[-2:]), cmap="gray", vmin=0, vmax=1)
    axes[0].set_title("the input", fontsize=9)
    _hide_ticks(axes[0])
    _draw(axes[1], caption.image, mean, vmax)
    axes[1].set_title("cross-attention (mean)", fontsize=9)
    _draw(axes[2], caption.image, rolled, vmax)
    axes[2].set_title("rolled out to input patches", fontsize=9)
    _colour_bar(fig, axes[1:], vmax)
    fig.suptitle(marked(caption.text, char), fontsize=10)
    return fig


def plot_caption_strip(caption, layer=None, head=None, row_length=None):
    """The whole caption: one small map per character, on one colour scale (layer/head None = mean).

    row_length: at most this many maps per row, wrapping after a space where one fits (None: one row).
    """
    maps = caption_maps(caption, layer, head)
    if not len(maps):  # render_strip's sentence
        raise ValueError("the caption has no characters, so there are no maps to draw (the model ended at once)")
    vmax, rows = maps.max(), _wrap(caption.text, row_length)
    cols = max(s.stop - s.start for s in rows)
    fig = Figure(figsize=(0.6 * cols + 1.0, 0.2 + 1.35 * len(rows)), layout="constrained")
    grid = fig.subplots(len(rows), cols, squeeze=False)
    axes = []
    for row, chars in zip(grid, rows):
        for c, ax in enumerate(row):
            if c < chars.stop - chars.start:
                axes.append(ax)
            else:
                fig.delaxes(ax)  # the rest of a short row stays empty
    for ax, m, ch in zip(axes, maps, caption.text):
        _draw(ax, caption.image, m, vmax)
        ax.set_xlabel(_visible(ch), fontsize=10, labelpad=2)
    _colour_bar(fig, axes, vmax, fraction=0.01, pad=0.005, aspect=8 * len(rows))  # thin, close to the maps
    fig.suptitle(f"{caption.text!r}  ·  {_which(layer, head)}", fontsize=9)
    return fig


def marked(text, char):
    """The caption with one character in brackets: marked('seven', 0) == '[s]even'."""
    char %= len(text)
    return f"{text[:char]}[{_visible(text[char])}]{text[char + 1:]}"


def _draw(ax, image, attention, vmax):
    ax.imshow(overlay(image, attention, vmax), interpolation="nearest")
    _hide_ticks(ax)


def _colour_bar(fig, axes, vmax, **where):
    bar = fig.colorbar(ScalarMappable(Normalize(0, vmax), CMAP), ax=axes, shrink=0.9, **where)
    bar.set_label("attention weight", fontsize=8)
    bar.ax.tick_params(labelsize=7)


def _hide_ticks(ax):
    ax.set_xticks([])
    ax.set_yticks([])


def _which(layer, head):
    layers = "mean of layers" if layer is None else f"layer {layer}"
    heads = "mean of heads" if head is None else f"head {head}"
    return f"{layers}, {heads}"


def _visible(ch):
    return "␣" if ch == " " else ch  # a space would leave its map unlabelled


# ---------------------------------------------------------------------------------------------
# The fast strip, for the drawing pad


def render_strip(caption, layer=None, head=None, scale=2, label_height=None, row_length=None):
    """The caption strip as a PIL image, drawn with numpy and PIL (no matplotlib figure).

    One tile per character, each the overlay of its map on the digit (`scale` × the image size),
    all on one colour scale, the character written under its tile. row_length: at most this many
    tiles per row, wrapping after a space where one fits (None: one row).
    """
    label_height = LABEL_HEIGHT if label_height is None else label_height
    maps = caption_maps(caption, layer, head)  # (n, grid_h, grid_w)
    if not len(maps):
        raise ValueError("the caption has no characters, so there are no maps to draw (the model ended at once)")
    tiles = np.rint(overlay(caption.image, maps, maps.max()) * 255).astype(np.uint8)  # (n, H, W, 3)
    tiles = tiles.repeat(scale, axis=1).repeat(scale, axis=2)  # nearest-neighbour zoom
    rows = [_strip_row(tiles[row], caption.text[row], label_height) for row in _wrap(caption.text, row_length)]
    width = max(row.shape[1] for row in rows)
    rows = [np.pad(row, ((0, GAP * 2), (0, width - row.shape[1]), (0, 0)), constant_values=255) for row in rows]
    return Image.fromarray(np.concatenate(rows)[: -GAP * 2])


GAP = 2  # pixels between the strip's tiles
LABEL_HEIGHT = 18  # pixels under each tile for its character


def _strip_row(tiles, text, label_height):
    """Tiles (n, h, w, 3) side by side, the characters of `text` under them: (h + label_height, width, 3)."""
    n, h, w, _ = tiles.shape
    tiles = np.pad(tiles, ((0, 0), (0, 0), (0, GAP), (0, 0)), constant_values=255)  # white gap right of each
    row = tiles.transpose(1, 0, 2, 3).reshape(h, n * (w + GAP), 3)[:, :-GAP]  # side by side
    return np.concatenate([row, _labels(text, w, label_height)])


def _wrap(text, length=None):
    """Slices of `text`, each at most `length` long (None: all of it), ending after a space where one fits."""
    length, rows, start = length or len(text), [], 0
    while start < len(text):
        end = min(start + length, len(text))
        if end < len(text) and text.rfind(" ", start, end) >= start:
            end = text.rfind(" ", start, end) + 1
        rows.append(slice(start, end))
        start = end
    return rows


@lru_cache(maxsize=64)
def _labels(text, tile_width, height):
    """(height, width, 3) uint8: each character centred under its tile. Cached, as captions repeat."""
    row = Image.new("RGB", (len(text) * (tile_width + GAP) - GAP, height), "white")
    pen, face = ImageDraw.Draw(row), font(height - 4)
    for i, ch in enumerate(text):
        centre = (i * (tile_width + GAP) + tile_width / 2, height / 2)
        pen.text(centre, _visible(ch), fill="black", font=face, anchor="mm")
    return np.asarray(row)


@lru_cache(maxsize=4)
def font(size):
    """matplotlib's DejaVu Sans at `size` pixels, for text drawn with PIL (the strips, the widgets' pictures)."""
    from matplotlib import font_manager

    return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)  # matplotlib's own font, always there


# ---------------------------------------------------------------------------------------------


def _checked(index, size, name, context):
    if not isinstance(index, (int, np.integer)) or not -size <= index < size:
        raise IndexError(f"{name} {index!r} is out of range: {context} (use 0 to {size - 1}, or None for the mean)"
                         if name != "char" else f"char {index!r} is out of range: {context}")
    return int(index) % size
