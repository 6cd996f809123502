"""The widgets' Python halves, driven without a browser: set what the browser would set, read
what it would show."""

import io
import os
import sys
import types

import numpy as np
import pytest
import torch
import traitlets
from PIL import Image, ImageDraw

from crossmodal import DecoderConfig, VisionConfig, VLMConfig, preprocess_drawing, preprocess_number, viz
from crossmodal.data.numbers import make_numbers
from crossmodal.nn.model import Generation
from crossmodal.tasks.captions import new_captioner
from crossmodal.tasks.numbers import new_reader
from crossmodal.widgets import AttentionExplorer, DrawingPad, enable_colab
from crossmodal.widgets.drawing_pad import HERE, PROMPT, STRIP_ROW, WROTE_NOTHING, number_prompt

from .test_viz import captioner, seven


def drawn(strokes, side=112, width=9):
    """What the browser sends: strokes drawn on a grid of side × side (or (height, width)), ink 0–255, as bytes.

    Points are fractions of the grid's width (x) and height (y)."""
    height, width_px = (side, side) if isinstance(side, int) else side
    picture = Image.new("L", (width_px, height))
    pen = ImageDraw.Draw(picture)
    for stroke in strokes:
        pen.line([(x * width_px, y * height) for x, y in stroke], fill=255, width=width, joint="curve")
    return picture.tobytes()


ONE = [[(0.5, 0.12), (0.5, 0.88)]]
SEVEN = [[(0.22, 0.15), (0.78, 0.15), (0.42, 0.88)]]


def decoded(png):
    return np.asarray(Image.open(io.BytesIO(png)))


@pytest.fixture
def pad():
    return DrawingPad(captioner(4))


# --- drawing pad -------------------------------------------------------------------------------


def test_a_stroke_from_the_browser_updates_caption_input_and_strip(pad):
    pixels = drawn(SEVEN)
    pad.pixels = pixels  # what the browser does at a stroke's end; the observer answers
    array = np.frombuffer(pixels, dtype=np.uint8).reshape(112, 112).copy()
    seen = preprocess_drawing(array)
    expected = pad.model.caption(seen)
    assert pad.caption == expected.text != ""
    assert pad.message == ""
    np.testing.assert_array_equal(decoded(pad.seen_png), np.rint(seen[0].numpy() * 255))  # what the model saw
    strip = decoded(pad.strip_png)
    np.testing.assert_array_equal(strip, np.asarray(viz.render_strip(expected, row_length=STRIP_ROW)))
    assert pad.seconds > 0


def test_update_from_pixels_takes_arrays_and_returns_the_caption(pad):
    array = np.frombuffer(drawn(ONE), dtype=np.uint8).reshape(112, 112).copy()
    caption = pad.update_from_pixels(array)
    assert caption.text == pad.caption
    assert caption.attention.shape[0] == len(caption.text)


def test_a_blank_canvas_gets_the_prompt_not_a_caption(pad):
    pad.pixels = drawn(SEVEN)
    assert pad.caption and pad.strip_png
    pad.pixels = bytes(112 * 112)  # the clear button sends an empty canvas
    assert pad.caption == "" and pad.message == PROMPT
    assert pad.seen_png == b"" and pad.strip_png == b""
    assert pad.update_from_pixels(b"") is None and pad.message == PROMPT


def test_pixels_of_the_wrong_size_are_reported_in_the_widget(pad):
    with pytest.raises(ValueError, match="112×112"):
        pad.pixels = bytes(100)
    assert pad.message.startswith("Something went wrong") and "112×112" in pad.message


def test_the_strip_can_show_one_layer_and_head():
    model = captioner(4)
    pad = DrawingPad(model, layer=1, head=0)
    caption = pad.update_from_pixels(drawn(SEVEN))
    shown = decoded(pad.strip_png)
    np.testing.assert_array_equal(shown, np.asarray(viz.render_strip(caption, 1, 0, row_length=STRIP_ROW)))
    assert not np.array_equal(shown, np.asarray(viz.render_strip(caption, row_length=STRIP_ROW)))


def test_the_browser_half_ships_beside_the_python_half(pad):
    js, css = (HERE / "drawing_pad.js").read_text(), (HERE / "drawing_pad.css").read_text()
    assert "export default" in js and "pointerdown" in js and '"pixels"' in js
    assert pad._esm == js and pad._css == css  # what the browser is sent


@pytest.fixture(scope="module")
def shipped_model():
    from crossmodal import load_captioner

    try:
        return load_captioner()
    except FileNotFoundError as err:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no shipped checkpoint yet: {err}")


@pytest.mark.parametrize("strokes, word", [(ONE, "one"), (SEVEN, "seven")])
def test_the_shipped_model_reads_a_drawn_digit(shipped_model, strokes, word):
    pad = DrawingPad(shipped_model)
    pad.pixels = drawn(strokes)
    assert pad.caption == f"This is the number {word}."


# --- drawing pad, wide mode: a reader of numbers -------------------------------------------------

WIDE = (72, 288)  # what the wide pad's browser half sends for a 28 × 112 reader
SEVENTY_ONE = [[(0.36, 0.18), (0.47, 0.18), (0.40, 0.84)], [(0.56, 0.15), (0.56, 0.85)]]  # a "7", then a "1"


def reader():
    """A random reader of numbers of up to 4 digits (28 × 112), small and fast; it writes digits, not sense."""
    torch.manual_seed(0)
    config = VLMConfig(VisionConfig(image_size=(28, 112), dim=32, depth=1, num_heads=2, patch_size=7),
                             DecoderConfig(dim=32, depth=2, num_heads=2, block_size=6))
    return new_reader(config).eval()


@pytest.fixture
def wide_pad():
    return DrawingPad(reader())


@pytest.fixture(scope="module")
def two_digits(mnist_test):
    """A two-digit number from MNIST's test digits (data.numbers.make_numbers), as the browser would send it."""
    images, labels = mnist_test
    numbers = make_numbers(images, labels, 1, torch.Generator().manual_seed(2), lengths=[2], style="centred")
    canvas = Image.fromarray(numbers.images[0, 0].numpy()).resize(WIDE[::-1], Image.BILINEAR)  # 28 × 112 -> 72 × 288
    return numbers.texts[0], canvas.tobytes()


def test_a_reader_gets_the_wide_pad_and_a_captioner_the_square_one(wide_pad, pad):
    assert wide_pad.wide and not pad.wide
    assert wide_pad.image_size == (28, 112) and wide_pad.canvas_size == (180, 720)  # 4 : 1, as the model's image
    assert wide_pad.resolution == WIDE and wide_pad.message == number_prompt(4)
    assert (pad.image_size, pad.canvas_size, pad.resolution, pad.message) == ((28, 28), (280, 280), (112, 112), PROMPT)


def test_a_number_from_the_browser_is_read_with_one_row_of_the_strip_per_character(wide_pad, two_digits):
    _, pixels = two_digits
    wide_pad.pixels = pixels
    seen = preprocess_number(np.frombuffer(pixels, dtype=np.uint8).reshape(WIDE).copy(), canvas=(28, 112))
    expected = wide_pad.model.caption(seen)
    assert wide_pad.caption == expected.text != "" and wide_pad.message == ""
    np.testing.assert_array_equal(decoded(wide_pad.seen_png), np.rint(seen[0].numpy() * 255))  # 28 × 112
    strip = decoded(wide_pad.strip_png)
    np.testing.assert_array_equal(strip, np.asarray(viz.render_strip(expected, scale=3, row_length=1)))
    n = len(expected.text)
    assert strip.shape == (n * (84 + 18) + (n - 1) * 4, 336, 3)  # each map over the whole number, 3× zoomed
    assert wide_pad.seconds > 0


def test_a_blank_wide_canvas_gets_the_prompt(wide_pad):
    wide_pad.pixels = drawn(SEVENTY_ONE, WIDE)
    assert wide_pad.caption and wide_pad.strip_png
    wide_pad.pixels = bytes(WIDE[0] * WIDE[1])  # the clear button
    assert wide_pad.caption == "" and wide_pad.message == number_prompt(4)
    assert wide_pad.seen_png == b"" and wide_pad.strip_png == b""
    assert wide_pad.update_from_pixels(b"") is None


@pytest.mark.parametrize("ink, words", [
    ((slice(30, 32), slice(40, 42)), "is a dot"),
    ((slice(30, 36), slice(2, 286)), "too wide to read"),  # a line across the canvas: ink 47 times as wide as high
])
def test_a_drawing_the_reader_cannot_read_gets_a_message_not_an_error(wide_pad, ink, words):
    wide_pad.pixels = drawn(SEVENTY_ONE, WIDE)
    picture = np.zeros(WIDE, dtype=np.uint8)
    picture[ink] = 255
    wide_pad.pixels = picture.tobytes()
    assert wide_pad.caption == "" and words in wide_pad.message and "Something went wrong" not in wide_pad.message
    assert wide_pad.seen_png == b"" and wide_pad.strip_png == b""


def test_many_small_digits_are_too_wide_for_the_reader(wide_pad):
    ones = [[(x, 0.42), (x, 0.58)] for x in np.linspace(0.03, 0.97, 12)]  # twelve small "1"s
    assert wide_pad.update_from_pixels(drawn(ones, WIDE, width=3)) is None
    assert "too wide to read" in wide_pad.message and "write fewer digits" in wide_pad.message


def test_more_separate_digits_than_the_reader_writes_are_refused_as_read_number_refuses_them(wide_pad):
    ones = [[(x, 0.2), (x, 0.8)] for x in np.linspace(0.15, 0.85, 5)]  # five "1"s: not too wide, one too many
    assert wide_pad.update_from_pixels(drawn(ones, WIDE, width=5)) is None
    assert "5 separate pieces of ink" in wide_pad.message and "1 to 4 digits" in wide_pad.message
    assert wide_pad.update_from_pixels(drawn(ones[:4], WIDE, width=5)) is not None and wide_pad.caption  # four: read


def test_a_reader_that_writes_nothing_says_so(wide_pad, monkeypatch):
    monkeypatch.setattr(wide_pad.model, "generate_text",
                        lambda x, *a, **k: [Generation("", torch.zeros(0, 2, 2, 4, 16), x[0])])
    assert wide_pad.update_from_pixels(drawn(SEVENTY_ONE, WIDE)).text == ""
    assert wide_pad.caption == "" and wide_pad.message == WROTE_NOTHING
    assert decoded(wide_pad.seen_png).shape == (28, 112) and wide_pad.strip_png == b""


def test_pixels_of_the_wrong_size_for_the_wide_pad_are_refused(wide_pad):
    with pytest.raises(ValueError, match="72×288 = 20736 bytes"):
        wide_pad.pixels = bytes(112 * 112)  # a square pad's drawing
    assert wide_pad.message.startswith("Something went wrong") and "72×288" in wide_pad.message


def test_the_resolution_is_a_checked_height_and_width():
    pad = DrawingPad(reader(), resolution=(36, 144))  # a caller's choice wins over the mode's
    assert pad.resolution == (36, 144) and pad.update_from_pixels(drawn(SEVENTY_ONE, (36, 144), width=4)) is not None
    with pytest.raises(traitlets.TraitError, match="height, width"):
        pad.resolution = (4, 400)
    with pytest.raises(traitlets.TraitError, match="tuple"):
        pad.resolution = 112  # one side is no longer enough


def test_for_numbers_wants_a_reader():
    assert DrawingPad.for_numbers(reader()).wide
    with pytest.raises(ValueError, match="28×28 images, not a wide canvas"):
        DrawingPad.for_numbers(captioner(4))


def test_an_empty_wide_pad_and_a_written_one_have_static_views(wide_pad):
    bundle = static_view(wide_pad)
    assert "nothing written yet" in bundle["text/plain"]
    picture = decoded(bundle["image/png"])
    assert picture[10, 10].max() < 40 and picture.shape[1] >= 280  # the dark, wide canvas
    wide_pad.pixels = drawn(SEVENTY_ONE, WIDE)
    bundle = static_view(wide_pad)
    assert repr(wide_pad.caption) in bundle["text/plain"]
    picture, seen, strip = decoded(bundle["image/png"]), decoded(wide_pad.seen_png), decoded(wide_pad.strip_png)
    np.testing.assert_array_equal(picture[:84:3, :336:3, 0], seen)  # what the model saw, zoomed 3×, on top
    below = picture[84 + 12 : 84 + 12 + strip.shape[0], : strip.shape[1]]  # the gap, then the strip
    np.testing.assert_array_equal(below, strip)


@pytest.fixture(scope="module")
def shipped_reader():
    from crossmodal import load_reader

    try:
        return load_reader()
    except FileNotFoundError as err:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no shipped reader yet: {err}")


def test_the_shipped_reader_reads_a_drawn_number_and_a_composed_one(shipped_reader, two_digits):
    pad = DrawingPad.for_numbers(shipped_reader)
    pad.pixels = drawn(SEVENTY_ONE[:1], WIDE, width=6)
    assert pad.caption == "7"  # read at each stroke's end: the 7 alone first
    pad.pixels = drawn(SEVENTY_ONE, WIDE, width=6)
    assert pad.caption == "71"
    text, pixels = two_digits
    pad.pixels = pixels
    assert pad.caption == text


# --- explorer ----------------------------------------------------------------------------------


@pytest.fixture
def explorer():
    images = torch.stack([seven(), seven().flip(-1), seven().flip(-2)])
    return AttentionExplorer(captioner(4), images, labels=torch.tensor([7, 7, 7]))


def test_explorer_starts_on_the_first_image_and_character(explorer):
    caption = explorer.model.caption(explorer.images[0])
    assert explorer.caption.text == caption.text
    assert explorer.char.max == len(caption.text) - 1
    assert "<mark" in explorer.caption_html.value and "a 7" in explorer.caption_html.value
    assert explorer.picture.value[:8] == b"\x89PNG\r\n\x1a\n"


def test_explorer_follows_every_control(explorer):
    pictures = {explorer.picture.value}
    for control, value in [(explorer.char, 2), (explorer.layer, 1), (explorer.head, 0), (explorer.index, 1)]:
        control.value = value
        pictures.add(explorer.picture.value)
        caption = explorer.model.caption(explorer.images[explorer.index.value])
        m = viz.attention_map(caption, explorer.char.value, explorer.layer.value if explorer.layer.value >= 0 else None,
                              explorer.head.value if explorer.head.value >= 0 else None)
        row, col = divmod(int(m.argmax()), m.shape[1])
        assert f"row {row}, column {col}, weight {m.max():.3f}" in explorer.numbers.value
    assert len(pictures) == 5  # each change drew a new picture


def test_explorer_highlights_the_chosen_character(explorer):
    explorer.char.value = 0
    text = explorer.caption.text
    assert f"<mark style='background: #fdbb2d; padding: 0 1px'>{text[0]}</mark>" in explorer.caption_html.value


def test_explorer_of_a_blind_captioner_shows_captions_and_says_there_are_no_maps():
    torch.manual_seed(0)
    config = VLMConfig(VisionConfig(dim=32, depth=1, num_heads=2, patch_size=7),
                             DecoderConfig(dim=32, depth=2, num_heads=2, block_size=12, cross_attention_every=0))
    blind = AttentionExplorer(new_captioner(config).eval(), seven()[None])
    assert "<mark" in blind.caption_html.value and "no maps" in blind.numbers.value
    assert [value for _, value in blind.head.options] == [-1, 0, 1]
    blind.head.value = 1  # the controls still work
    assert "no maps" in blind.numbers.value


# --- static views: what GitHub, Colab's preview and an untrusted notebook show ---------------------


def static_view(widget):
    bundle = widget._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == widget.model_id  # still a live widget
    assert "Run the cell" in bundle["text/plain"] and "object at" not in bundle["text/plain"]
    return bundle


def test_an_empty_pad_shows_its_canvas_and_says_to_run_the_cell(pad):
    bundle = static_view(pad)
    assert "nothing drawn yet" in bundle["text/plain"]
    picture = decoded(bundle["image/png"])
    assert picture.shape[0] >= 140 and picture[10, 10].max() < 40  # the dark canvas


def test_a_pad_with_a_drawing_shows_the_input_and_the_strip(pad):
    pad.pixels = drawn(SEVEN)
    bundle = static_view(pad)
    assert repr(pad.caption) in bundle["text/plain"]
    picture = decoded(bundle["image/png"])
    seen = decoded(pad.seen_png)
    np.testing.assert_array_equal(picture[:112:4, :112:4, 0], seen)  # what the model saw, zoomed 4×
    strip = decoded(pad.strip_png)
    assert picture.shape[1] >= 112 + strip.shape[1] and picture.shape[0] > strip.shape[0]


def test_the_explorer_shows_its_current_map_and_says_to_run_the_cell(explorer):
    bundle = static_view(explorer)
    first = decoded(bundle["image/png"])
    shown = decoded(explorer.picture.value)
    np.testing.assert_array_equal(first[: shown.shape[0], : shown.shape[1], :3], shown[..., :3])
    explorer.char.value = 3
    assert "character 3" not in str(bundle) and not np.array_equal(decoded(explorer._repr_mimebundle_()["image/png"]),
                                                                   first)


def test_a_blind_explorer_has_no_picture_but_the_line():
    torch.manual_seed(0)
    config = VLMConfig(VisionConfig(dim=32, depth=1, num_heads=2, patch_size=7),
                             DecoderConfig(dim=32, depth=2, num_heads=2, block_size=12, cross_attention_every=0))
    bundle = static_view(AttentionExplorer(new_captioner(config).eval(), seven()[None]))
    assert "image/png" not in bundle


def test_displaying_a_widget_sends_the_static_view_beside_the_live_one(pad, monkeypatch):
    import crossmodal.widgets.static

    sent = []
    monkeypatch.setattr(crossmodal.widgets.static, "display", lambda data, raw: sent.append((data, raw)))
    pad._ipython_display_()  # how IPython displays a widget with an _ipython_display_ (all of ipywidgets 7's)
    [(data, raw)] = sent
    assert raw and set(data) == {"text/plain", "image/png", "application/vnd.jupyter.widget-view+json"}


# --- colab -------------------------------------------------------------------------------------


def test_enable_colab_does_nothing_outside_colab(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert enable_colab() is False


def test_enable_colab_turns_on_colabs_widget_manager(monkeypatch):
    calls = []
    output = types.SimpleNamespace(enable_custom_widget_manager=lambda: calls.append("enabled"))
    colab = types.ModuleType("google.colab")
    colab.output = output
    google = types.ModuleType("google")
    google.colab = colab
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.output", output)
    assert enable_colab() is True
    assert calls == ["enabled"]


def test_a_stroke_runs_the_model_on_one_thread_then_restores_the_count(pad, monkeypatch):
    seen_threads, generate_text = [], pad.model.generate_text
    monkeypatch.setattr(pad.model, "generate_text",
                        lambda *a, **k: seen_threads.append(torch.get_num_threads()) or generate_text(*a, **k))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        pad.pixels = drawn(ONE)
        assert seen_threads == [1] and pad.caption
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


# ---- a learner's first hour (issue #31): the page keeps room for the answer; dots and specks get a sentence


def test_the_pad_keeps_room_for_the_longest_strip_from_the_start(shipped_model, shipped_reader, two_digits,
                                                                 mnist_test):
    square, wide = DrawingPad(shipped_model), DrawingPad.for_numbers(shipped_reader)
    assert square.strip_space > 0 and wide.strip_space > 0  # set before anything is drawn
    square.update_from_pixels(drawn(SEVEN))
    assert 0 < decoded(square.strip_png).shape[0] <= square.strip_space
    wide.pixels = two_digits[1]
    assert wide.caption == two_digits[0] and 0 < decoded(wide.strip_png).shape[0] <= wide.strip_space
    four = make_numbers(*mnist_test, 1, torch.Generator().manual_seed(3), lengths=[4], style="tiles")
    wide.show_input(four.images[0].float() / 255)
    assert len(wide.caption) == 4 and decoded(wide.strip_png).shape[0] <= wide.strip_space


@pytest.mark.parametrize("picture, words", [
    (lambda: np.pad(np.full((1, 1), 255, np.uint8), ((40, 71), (60, 51))), "That is a dot"),  # a single pixel
    (lambda: np.pad(np.full((8, 8), 255, np.uint8), ((50, 54), (50, 54))), "That is a dot"),  # a tap of the brush
    (lambda: (np.random.default_rng(0).random((112, 112)) < 0.1).astype(np.uint8) * 255, "scattered specks"),
    (lambda: (np.random.default_rng(1).random((112, 112)) < 0.5).astype(np.uint8) * 255, "blot or noise"),
])
def test_a_dot_or_noise_on_the_square_pad_gets_a_sentence_not_a_caption(shipped_model, picture, words):
    pad = DrawingPad(shipped_model)
    pad.update_from_pixels(picture())
    assert pad.caption == "" and words in pad.message and pad.sureness == -1


def test_a_caption_says_how_sure_the_model_is(shipped_model):
    pad = DrawingPad(shipped_model)
    written = pad.update_from_pixels(drawn(SEVEN))
    assert pad.sureness == pytest.approx(float(written.probs.prod())) and 0 < pad.sureness <= 1
    assert f"{100 * pad.sureness:.0f}% sure" in pad.static_note()


def test_the_static_picture_says_where_the_answer_appears(shipped_model, shipped_reader, monkeypatch):
    """The live wide pad stacks its reading below the canvas and the square pad puts the caption beside it: the
    picture shown before the cell runs says the same (issue #31)."""
    from crossmodal.widgets import drawing_pad

    notes = []
    monkeypatch.setattr(drawing_pad, "with_note", lambda picture, note: notes.append(note) or picture)
    DrawingPad.for_numbers(shipped_reader).static_png()
    DrawingPad(shipped_model).static_png()
    assert "appears below it" in notes[0] and "appears beside it" in notes[1]


def test_the_timing_and_sureness_lines_are_readable_type():
    """The latency line was 0.75em at 60% opacity: tiny grey type (issue #31)."""
    import re

    css = (HERE / "drawing_pad.css").read_text()
    for rule in ("cm-timing", "cm-sure"):
        body = re.search(rf"\.{rule} {{([^}}]*)}}", css).group(1)
        size = float(re.search(r"font-size: ([\d.]+)em", body).group(1))
        opacity = re.search(r"opacity: ([\d.]+)", body)
        assert size >= 0.9 and (opacity is None or float(opacity.group(1)) >= 0.8), (rule, body)
    assert "overflow-anchor: none" in css  # the page never scrolls by the pad's growth (the browser test draws it)
