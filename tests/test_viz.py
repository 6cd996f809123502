"""The attention pictures: the array helpers give the right numbers, the plots draw, any patch size."""

import io
import types

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from crossmodal import DecoderConfig, Generation, VisionConfig, VLMConfig, viz
from crossmodal.tasks.captions import new_captioner

PATCH_SIZES = [7, 4, 14]  # grids of 4×4, 7×7 and 2×2 patches


def captioner(patch_size, class_token=False, peaky=True):
    """A random captioner; `peaky` sharpens its cross-attention so maps differ from head to head."""
    torch.manual_seed(0)
    config = VLMConfig(VisionConfig(dim=32, depth=2, num_heads=2, patch_size=patch_size, class_token=class_token),
                             DecoderConfig(dim=32, depth=2, num_heads=2, block_size=12))
    model = new_captioner(config).eval()
    if peaky:
        with torch.no_grad():
            for m in model.decoder.cross_attention_layers:
                m.q.weight.mul_(60)
            for block in model.decoder.blocks:
                if block.gate is not None:
                    block.gate.fill_(2.0)  # open, so the image matters to the text
    return model


def seven():
    """A crude 7 drawn in a tensor: a bar and a slanted stem."""
    image = torch.zeros(1, 28, 28)
    image[0, 5:8, 6:22] = 1
    for row in range(8, 24):
        col = 20 - (row - 8) // 2
        image[0, row, col - 1 : col + 2] = 1
    return image


def made_up_caption(chars=5, layers=2, heads=3, grid=4):
    """A Generation with known random maps (each summing to 1), to check values exactly."""
    g = torch.Generator().manual_seed(0)
    attention = torch.rand(chars, layers, heads, grid * grid, generator=g).softmax(-1)
    return Generation("seven"[:chars], attention.reshape(chars, layers, heads, grid, grid), seven())


# --- arrays ----------------------------------------------------------------------------------


@pytest.mark.parametrize("patch_size", PATCH_SIZES)
def test_every_map_of_a_real_caption_is_grid_by_grid_and_sums_to_one(patch_size):
    model = captioner(patch_size)
    caption = model.caption(seven())
    grid = 28 // patch_size
    assert caption.attention.shape[3:] == (grid, grid)
    L, H = caption.attention.shape[1:3]
    for char in range(len(caption.text)):
        for layer in [None, *range(L)]:
            for head in [None, *range(H)]:
                m = viz.attention_map(caption, char, layer, head)
                assert m.shape == (grid, grid)
                assert m.min() >= 0
                assert m.sum() == pytest.approx(1, abs=1e-5)
    assert viz.caption_maps(caption).shape == (len(caption.text), grid, grid)


def test_attention_map_picks_and_averages_the_right_maps():
    caption = made_up_caption()
    a = caption.attention.double().numpy()
    np.testing.assert_allclose(viz.attention_map(caption, 2, layer=1, head=0), a[2, 1, 0])
    np.testing.assert_allclose(viz.attention_map(caption, 2, layer=1), a[2, 1].mean(0))
    np.testing.assert_allclose(viz.attention_map(caption, 2, head=2), a[2, :, 2].mean(0))
    np.testing.assert_allclose(viz.attention_map(caption, 2), a[2].mean((0, 1)))
    np.testing.assert_allclose(viz.attention_map(caption, -1, 0, 0), a[4, 0, 0])  # negative counts from the end


@pytest.mark.parametrize("kwargs, words", [(dict(char=5), "5 characters"), (dict(char=0, layer=2), "2 cross-attention"),
                                           (dict(char=0, head=-4), "3 heads")])
def test_out_of_range_choices_say_what_exists(kwargs, words):
    with pytest.raises(IndexError, match=words):
        viz.attention_map(made_up_caption(), **kwargs)


def test_upsample_gives_each_pixel_its_patch_weight():
    m = np.arange(16.0).reshape(4, 4)
    big = viz.upsample(m, 28)
    assert big.shape == (28, 28)
    for r in range(4):
        for c in range(4):
            assert (big[7 * r : 7 * r + 7, 7 * c : 7 * c + 7] == m[r, c]).all()
    assert big.sum() == pytest.approx(49 * m.sum())


def test_upsample_handles_grids_that_do_not_divide_the_image_and_batches():
    m = np.random.default_rng(0).random((2, 3, 3))
    big = viz.upsample(m, 28)
    assert big.shape == (2, 28, 28)
    assert big[1, 0, 0] == m[1, 0, 0] and big[1, 27, 27] == m[1, 2, 2] and big[0, 0, 27] == m[0, 0, 2]
    assert set(np.unique(big[0])) == set(np.unique(m[0]))  # every patch shows, nothing invented


def test_overlay_blends_digit_and_colour():
    image = torch.zeros(1, 28, 28)
    image[0, :, :14] = 1  # ink on the left half
    m = np.zeros((2, 2))
    m[0, 1] = 1.0  # all attention on the top-right patch (no ink there)
    rgb = viz.overlay(image, m, alpha=0.6)
    lut = viz.colormap_lut()
    assert rgb.shape == (28, 28, 3) and rgb.min() >= 0 and rgb.max() <= 1
    np.testing.assert_allclose(rgb[0, 27], 0.6 * lut[255])  # looked at, no ink: pure heat
    np.testing.assert_allclose(rgb[27, 0], 0.4 + 0.6 * lut[0])  # ink, ignored: grey plus the darkest colour


def test_encoder_mixing_of_uniform_attention_is_the_rollout_formula():
    # With the ViT's queries zeroed every self-attention map is uniform U, and
    # (½ I + ½ U)^L = 2^-L I + (1 - 2^-L) U: the rollout formula, worked by hand.
    model = captioner(7, peaky=False)
    with torch.no_grad():
        for block in model.encoder.blocks:
            block.attn.q.weight.zero_()
            block.attn.q.bias.zero_()
    mixing = viz.encoder_mixing(model, seven())
    n, depth = 16, len(model.encoder.blocks)
    expected = 2.0**-depth * np.eye(n) + (1 - 2.0**-depth) / n
    np.testing.assert_allclose(mixing, expected, atol=1e-6)


@pytest.mark.parametrize("patch_size, class_token", [(4, False), (7, True)])
def test_rollout_maps_sum_to_one(patch_size, class_token):
    model = captioner(patch_size, class_token=class_token)
    caption = model.caption(seven())
    mixing = viz.encoder_mixing(model, caption.image)
    n = (28 // patch_size) ** 2
    assert mixing.shape == (n, n) and mixing.min() >= 0
    np.testing.assert_allclose(mixing.sum(1), 1, atol=1e-9)
    rolled = viz.rollout_map(caption, 0, mixing)
    assert rolled.shape == (28 // patch_size,) * 2 and rolled.sum() == pytest.approx(1, abs=1e-5)
    np.testing.assert_allclose(viz.rollout_map(caption, 0, np.eye(n)), viz.attention_map(caption, 0))  # no mixing


def test_rollout_explains_why_it_needs_our_vit():
    not_ours = types.SimpleNamespace(encoder=torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="VisionTransformer"):
        viz.encoder_mixing(not_ours, seven())


# --- figures ---------------------------------------------------------------------------------


def png_of(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    return Image.open(buffer)


@pytest.mark.parametrize("patch_size", [7, 4])
def test_every_plot_returns_a_figure_that_renders(patch_size):
    model = captioner(patch_size)
    caption = model.caption(seven())
    L, H = caption.attention.shape[1:3]
    n = len(caption.text)
    figures = {
        "one map": (viz.plot_attention(caption, 0), 1),
        "one head": (viz.plot_attention(caption, 1, layer=1, head=0), 1),
        "layers × heads": (viz.plot_heads(caption, 0), (L + 1) * (H + 1)),
        "rollout": (viz.plot_rollout(model, caption, 0), 3),
        "strip": (viz.plot_caption_strip(caption), n),
        "strip of one head": (viz.plot_caption_strip(caption, layer=0, head=1), n),
    }
    for name, (fig, images) in figures.items():
        assert isinstance(fig, Figure), name
        assert sum(bool(ax.images) for ax in fig.axes) == images, name  # the maps, plus a colour bar
        assert len(fig.axes) == images + 1, name
        assert png_of(fig).size[0] > 0


@pytest.mark.parametrize("layer, head, title", [(None, None, "mean of layers, mean of heads"),
                                                (1, 0, "layer 1, head 0"), (None, 2, "mean of layers, head 2")])
def test_caption_strip_draws_each_characters_map_of_the_chosen_layer_and_head(layer, head, title):
    caption = made_up_caption()
    fig = viz.plot_caption_strip(caption, layer, head)
    maps = viz.caption_maps(caption, layer, head)
    assert [ax.get_xlabel() for ax in fig.axes[:-1]] == list(caption.text)
    for ax, m in zip(fig.axes[:-1], maps):  # every tile is its character's map, on the strip's one colour scale
        np.testing.assert_allclose(ax.images[0].get_array(), viz.overlay(caption.image, m, maps.max()))
    assert title in fig.get_suptitle()


def test_caption_strip_wraps_into_rows_after_spaces():
    g = torch.Generator().manual_seed(0)
    text = "This is the number seven."
    attention = torch.rand(len(text), 2, 2, 49, generator=g).softmax(-1).reshape(len(text), 2, 2, 7, 7)
    caption = Generation(text, attention, seven())
    one_row, wrapped = viz.plot_caption_strip(caption), viz.plot_caption_strip(caption, row_length=13)
    maps = viz.caption_maps(caption)
    for fig in (one_row, wrapped):  # every character's map, in order, on one colour scale; then the colour bar
        tiles = fig.axes[:-1]
        assert [ax.get_xlabel() for ax in tiles] == [viz._visible(ch) for ch in text]
        for ax, m in zip(tiles, maps):
            np.testing.assert_allclose(ax.images[0].get_array(), viz.overlay(caption.image, m, maps.max()))
    rows = sorted({round(ax.get_position().y0, 3) for ax in wrapped.axes[:-1]}, reverse=True)
    assert len(rows) == 2  # "This is the " and "number seven."
    top = [ax for ax in wrapped.axes[:-1] if round(ax.get_position().y0, 3) == rows[0]]
    assert "".join(viz._visible(ch) for ch in "This is the ") == "".join(ax.get_xlabel() for ax in top)
    width, height = wrapped.get_size_inches()
    assert width / height < 5 < one_row.get_size_inches()[0] / one_row.get_size_inches()[1]
    assert png_of(wrapped).size[0] > 0


def test_fast_strip_draws_the_same_overlays_as_the_figures():
    caption = made_up_caption(grid=7)
    picture = viz.render_strip(caption, scale=2, label_height=18)
    n = len(caption.text)
    assert picture.size == (n * 58 - 2, 56 + 18)
    maps = viz.caption_maps(caption)
    pixels = np.asarray(picture)
    for i in (0, n - 1):
        tile = pixels[:56:2, i * 58 : i * 58 + 56 : 2]  # undo the 2× zoom
        expected = np.rint(viz.overlay(caption.image, maps[i], maps.max()) * 255)
        np.testing.assert_array_equal(tile, expected)
    assert (pixels[56:] < 128).any()  # the characters are written under the tiles


def test_marked_brackets_one_character():
    assert viz.marked("seven.", 0) == "[s]even."
    assert viz.marked("the number", 3) == "the[␣]number"
    assert viz.marked("seven.", -1) == "seven[.]"


def test_fast_strip_wraps_after_spaces():
    g = torch.Generator().manual_seed(0)
    text = "This is the number seven."
    attention = torch.rand(len(text), 1, 1, 49, generator=g).softmax(-1).reshape(len(text), 1, 1, 7, 7)
    caption = Generation(text, attention, seven())
    assert [text[s] for s in viz._wrap(text, 13)] == ["This is the ", "number seven."]
    assert ["abcdefgh"[s] for s in viz._wrap("abcdefgh", 3)] == ["abc", "def", "gh"]  # no space: cut anyway
    one_row, wrapped = np.asarray(viz.render_strip(caption)), np.asarray(viz.render_strip(caption, row_length=13))
    tile, label = 58, 56 + 18
    assert wrapped.shape == (2 * label + 4, 13 * tile - 2, 3)
    np.testing.assert_array_equal(wrapped[:label, : 12 * tile - 2], one_row[:, : 12 * tile - 2])  # "This is the "
    n_tile = one_row[:, 12 * tile : 12 * tile + 56]
    np.testing.assert_array_equal(wrapped[label + 4 :, 0:56], n_tile)  # the "n" of "number" starts row 2


def test_the_fast_strip_of_a_wide_number_has_one_row_per_character_over_the_whole_image():
    """A reader of numbers: maps over a 4 × 16 grid on a 28 × 112 image, one tile per row."""
    g = torch.Generator().manual_seed(0)
    image = torch.zeros(1, 28, 112)
    image[0, 4:24, 40:44], image[0, 4:24, 70:74] = 1, 1  # an "11"
    attention = torch.rand(2, 2, 3, 64, generator=g).softmax(-1).reshape(2, 2, 3, 4, 16)  # (chars, L, H, 4, 16)
    caption = Generation("11", attention, image)
    maps = viz.caption_maps(caption)
    assert maps.shape == (2, 4, 16)
    assert viz.upsample(maps, (28, 112)).shape == (2, 28, 112)
    assert viz.overlay(image, maps).shape == (2, 28, 112, 3)
    strip = np.asarray(viz.render_strip(caption, row_length=1))  # tiles 56 × 224, each with its label under it
    assert strip.shape == (2 * (56 + 18) + 4, 224, 3)
    for i in range(2):
        tile = strip[i * 78 : i * 78 + 56 : 2, ::2]  # undo the 2× zoom
        np.testing.assert_array_equal(tile, np.rint(viz.overlay(image, maps[i], maps.max()) * 255))


def test_a_strip_of_nothing_written_says_so():
    caption = Generation("", torch.zeros(0, 2, 3, 4, 4), seven())
    with pytest.raises(ValueError, match="no characters"):
        viz.render_strip(caption)
