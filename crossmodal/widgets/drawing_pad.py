"""The drawing pad: draw, and at each stroke's end read what the model writes and where it looked.

One pad, two modes, chosen by the model's image (its config's image size):

- square, for the MNIST captioner (28 × 28): draw one digit on a 280 × 280 canvas;
      pixels → preprocess_drawing → (1, 28, 28) → "This is the number seven."
- wide, for a reader of numbers (28 × 112, tasks.numbers.new_reader): write a number on a canvas of
  the same 4 : 1 aspect (180 × 720);
      pixels → preprocess_number → (1, 28, 112) → "2026"
  and the strip shows one row per character, its map over the whole number: the maps sweep left to right.

The browser half (drawing_pad.js) is a canvas drawn on with pointer events (mouse, pen, touch).
When a stroke ends it shrinks the canvas to `resolution` (height, width) and sends the ink as
bytes in `pixels`. The Python half answers in `update_from_pixels` with the text, seen_png (the
model's input) and strip_png (one map per character); a drawing it cannot read (blank, a dot, a
number too wide for the canvas) gets a `message` saying why instead.

All of it is plain Python on traits, so a test can drive it without a browser. It is one
anywidget, which runs in JupyterLab, Notebook 7, VS Code and Colab alike.
"""

import io
import time
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import anywidget
import numpy as np
import torch
import traitlets
from ipywidgets.widgets.trait_types import bytes_serialization

from ..drawings import NotADrawing, check_not_a_blot, check_strokes
from ..images import BlankImageError, drawn_ink, preprocess_drawing, preprocess_number
from ..nn.layers import pair
from ..tasks.numbers import check_digit_count
from ..viz import GAP as STRIP_GAP
from ..viz import LABEL_HEIGHT as STRIP_LABEL
from ..viz import render_strip
from .static import StaticFallback, as_image, blank_canvas, png, side_by_side, stacked, with_note, zoom

HERE = Path(__file__).parent
STRIP_ROW = 13  # tiles per row of the strip: "This is the " over "number seven.", to fit a notebook's width
PROMPT = "Draw a digit (0–9) in the box: the caption appears when you lift the pen."
WROTE_NOTHING = "The model wrote nothing for this drawing (it ended at once): draw it again, larger or clearer."


def number_prompt(max_digits):
    return f"Write a number of 1 to {max_digits} digits in the box: it is read each time you lift the pen."


class Mode(NamedTuple):
    """How the pad looks for one kind of model; sizes are (height, width)."""

    canvas: tuple  # the browser's canvas, in its own pixels (a narrow notebook shrinks it on screen)
    resolution: tuple  # what the canvas is shrunk to before sending: ample for the model's 20-pixel-high ink
    brush: int  # in canvas pixels
    prompt: str
    strip_row: int | None  # tiles per row of the strip (None: one row)
    strip_scale: int  # each tile of the strip is the model's input this many times enlarged
    seen_zoom: int  # how much the static view enlarges the model's input


def mode_for(image_size):
    """The square pad for a model of square images, the wide one for a reader of numbers."""
    H, W = pair(image_size)
    if W <= H:
        return Mode((280, 280), (112, 112), 22, PROMPT, STRIP_ROW, 2, 4)
    # 180 high: a digit written across most of it is about as tall as people draw one on the square pad
    # (half its 280 and more), and 4 : 1 makes it 720 wide, about a notebook's width; the brush keeps
    # MNIST's stroke, a tenth of the digit. One tile per row of the strip, 3× (84 × 336), as large as the
    # input shown above it: each map spans the whole number, and the rows read down as the maps sweep right.
    return Mode((180, round(180 * W / H)), (72, round(72 * W / H)), 14, number_prompt(W // H), 1, 3, 3)


def size_trait(height, width):
    """A synced (height, width) trait: a JSON list [height, width] in the browser."""
    return traitlets.Tuple(traitlets.Int(), traitlets.Int(), default_value=(height, width)).tag(sync=True)


class DrawingPad(StaticFallback, anywidget.AnyWidget):
    _esm = HERE / "drawing_pad.js"
    _css = HERE / "drawing_pad.css"

    # set from the model, read by the browser; every size is (height, width)
    image_size = size_trait(28, 28)  # the model's input
    canvas_size = size_trait(280, 280)  # the browser's canvas, in its own pixels
    # from the browser
    pixels = traitlets.Bytes(b"").tag(sync=True, **bytes_serialization)  # ink 0–255, height × width bytes, row by row
    resolution = size_trait(112, 112)  # what the canvas is shrunk to before it is sent as `pixels`
    brush = traitlets.Int(22).tag(sync=True)  # brush width in canvas pixels
    # to the browser
    caption = traitlets.Unicode("").tag(sync=True)  # "" while there is nothing to caption
    message = traitlets.Unicode(PROMPT).tag(sync=True)  # shown instead of a caption
    seen_png = traitlets.Bytes(b"").tag(sync=True)  # the input the model sees (28×28, or 28×112 for a reader)
    strip_png = traitlets.Bytes(b"").tag(sync=True)  # the caption strip: one attention map per character
    seconds = traitlets.Float(0.0).tag(sync=True)  # Python's time for the last stroke
    sureness = traitlets.Float(-1.0).tag(sync=True)  # how sure the model was of what it wrote (-1: nothing written)
    strip_space = traitlets.Int(0).tag(sync=True)  # pixels kept for the strip from the start: the page never jumps

    def __init__(self, model=None, layer=None, head=None, **kwargs):
        """model: a VisionLanguageModel (default: the shipped MNIST captioner); a reader of numbers (wider images
        than high) gets the wide pad. layer, head: which maps the strip shows (None = mean)."""
        if model is None:
            from ..pretrained import load_captioner

            model = load_captioner()
        image_size = pair(model.config.vision.image_size)
        mode = mode_for(image_size)  # not `layout`: ipywidgets' CSS layout trait has that name
        defaults = dict(image_size=image_size, canvas_size=mode.canvas, resolution=mode.resolution,
                        brush=mode.brush, message=mode.prompt)
        super().__init__(**{**defaults, **kwargs})  # a caller's resolution or brush wins
        self.model, self.layer, self.head, self.mode = model, layer, head, mode
        self.seen = None  # the model's last input, (1, H, W)
        longest = model.config.decoder.block_size - 2  # <bos> and <eos> are never shown
        self.strip_space = self._strip_height(longest, mode.strip_scale, mode.strip_row)

    @classmethod
    def for_numbers(cls, model=None, **kwargs):
        """The wide pad with a reader of numbers: write a number, see it read (default: the shipped reader)."""
        if model is None:
            from ..pretrained import load_reader

            model = load_reader()
        H, W = pair(model.config.vision.image_size)
        if W <= H:
            raise ValueError(f"this model reads {H}×{W} images, not a wide canvas: make a reader of numbers with "
                             "tasks.numbers.new_reader(), or call DrawingPad.for_numbers() alone for the shipped "
                             "reader")
        return cls(model, **kwargs)

    @property
    def wide(self):
        """True for a reader of numbers: its image is wider than high."""
        return self.image_size[1] > self.image_size[0]

    @traitlets.validate("resolution")
    def _check_resolution(self, proposal):
        height, width = proposal["value"]
        if not (8 <= height <= 2048 and 8 <= width <= 2048):
            raise traitlets.TraitError(f"resolution is the (height, width) in pixels the canvas is shrunk to before "
                                       f"it is sent, each from 8 to 2048; got {proposal['value']}")
        return height, width

    @traitlets.validate("canvas_size")
    def _check_canvas_size(self, proposal):
        height, width = proposal["value"]
        if not (16 <= height <= 4096 and 16 <= width <= 4096):
            raise traitlets.TraitError(f"canvas_size is the (height, width) of the canvas in screen pixels, each from "
                                       f"16 to 4096; got {proposal['value']}")
        return height, width

    @traitlets.observe("pixels")
    def _on_pixels(self, change):
        try:
            self.update_from_pixels(change["new"])
        except Exception as err:  # show it in the widget: a traceback here would only reach the kernel log
            self.message, self.caption = f"Something went wrong: {err}", ""
            raise

    def update_from_pixels(self, pixels):
        """Read a drawing and update every output trait at once; returns the Generation (None if unreadable).

        pixels: bytes of a grey image as the browser sends them (height × width values of `resolution`,
        ink 0–255), or any picture preprocess_drawing accepts (numpy, PIL, tensor).
        A blank drawing gets the prompt; a dot, a number too wide for the reader's canvas or one of more
        separate digits than it reads, a message saying so (preprocess_number's, read_number's); no error.
        """
        start = time.perf_counter()
        if isinstance(pixels, (bytes, bytearray, memoryview)):
            pixels = self._bytes_to_image(pixels)
        try:
            with one_thread():
                seen = self._model_input(pixels)  # (1, H, W)
        except BlankImageError:
            self._show(start, message=self.mode.prompt)
            return None
        except Unreadable as err:
            self._show(start, message=str(err))
            return None
        return self.show_input(seen, start)

    def show_input(self, seen, start=None):
        """Write for `seen`, already the model's input ((1, H, W) in [0, 1]: a drawing made ready, or a test
        image), and show it with the strip of maps; returns the Generation (None when the model cannot write)."""
        start = time.perf_counter() if start is None else start
        self.seen = seen  # kept, so that a subclass can write again for the same input
        seen_png = _png(np.rint(seen[0].numpy() * 255).astype(np.uint8))
        try:
            with one_thread():
                caption = self._write(seen)
        except Unreadable as err:
            self._show(start, message=str(err), seen_png=seen_png)
            return None
        except BlankImageError:  # a blank test image handed over as it is
            self._show(start, message=self.mode.prompt, seen_png=seen_png)
            return None
        if not caption.text:  # nothing written: no maps to draw
            self._show(start, message=WROTE_NOTHING, seen_png=seen_png)
            return caption
        strip_png = _png(self._strip(caption))
        self._show(start, caption=caption.text, seen_png=seen_png, strip_png=strip_png,
                   sureness=self._sureness(caption))
        return caption

    def _write(self, seen):
        """What the model writes for its input, with its maps: the caption (a question pad writes an answer)."""
        return self.model.generate_text(seen)[0]

    def _model_input(self, picture):
        """The drawing as the model's input (1, H, W); raises Unreadable for a drawing the model cannot read: a dot,
        scattered specks, or (a reader) more digits than it reads."""
        self._check_strokes(picture)
        if not self.wide:
            return self._not_a_blot(preprocess_drawing(picture))  # (1, 28, 28)
        try:
            seen = self._not_a_blot(preprocess_number(picture, canvas=self.image_size))  # (1, 28, 112): the reader's
            check_digit_count(self.model, seen[0])  # read_number's rule: no more pieces of ink than digits
            return seen
        except BlankImageError:
            raise
        except ValueError as err:  # a dot, or more digits than the reader reads: the learner should hear why
            text = str(err)
            raise Unreadable(text[:1].upper() + text[1:] + ".") from err

    def _check_strokes(self, picture):
        """Refuse what was not drawn with strokes: a tap (the ink no larger than a dot of the brush), or specks
        scattered over the pad (drawings.check_strokes: the rule the caption command and read_number share)."""
        _, ink = drawn_ink(picture)
        if not ink.any():
            return  # blank: the prompt says what to do
        thing = "number" if self.wide else "digit"
        rows, cols = ink.any(1).nonzero().flatten(), ink.any(0).nonzero().flatten()
        brush = self.brush * ink.shape[0] / self.canvas_size[0]  # the brush's width in the picture's pixels
        if rows[-1] - rows[0] + 1 <= 1.6 * brush and cols[-1] - cols[0] + 1 <= 1.6 * brush:
            raise Unreadable(f"That is a dot, not a {thing}: draw the whole {thing}, with strokes.")
        try:
            check_strokes(picture, thing, f"clear the pad and draw a {thing}")
        except NotADrawing as err:
            raise Unreadable(str(err)) from err

    def _not_a_blot(self, seen):
        """The model's input, unless ink covers most of it (drawings.check_not_a_blot)."""
        thing = "number" if self.wide else "digit"
        try:
            return check_not_a_blot(seen, thing, f"clear the pad and draw a {thing}")
        except NotADrawing as err:
            raise Unreadable(str(err)) from err

    def _sureness(self, written):
        """How sure the model was of what it wrote: the product of its characters' probabilities."""
        return written.sureness

    def _strip(self, written):
        """The strip of maps under the pad: one tile per character written, each its map over the input."""
        return render_strip(written, self.layer, self.head, self.mode.strip_scale, row_length=self.mode.strip_row)

    def _strip_height(self, characters, scale, per_row):
        """The height of a strip of `characters` tiles, `per_row` to a row (what render_strip draws)."""
        rows = -(-characters // (per_row or characters))
        return rows * (self.image_size[0] * scale + STRIP_LABEL + 2 * STRIP_GAP)

    def _show(self, start, caption="", message="", seen_png=b"", strip_png=b"", sureness=None):
        with self.hold_sync():  # one message to the browser, not five
            self.caption, self.message, self.seen_png, self.strip_png = caption, message, seen_png, strip_png
            self.sureness = -1.0 if sureness is None else sureness
            self.seconds = time.perf_counter() - start

    def static_text(self):
        """The line a reader sees where the widget cannot run (see static.py)."""
        if self.wide:
            state = f"it read {self.caption!r}" if self.caption else "nothing written yet"
            return (f"DrawingPad for numbers ({state}). Run the cell to write a number and see where the reader "
                    "looked for each digit.")
        state = f"its caption: {self.caption!r}" if self.caption else "nothing drawn yet"
        return f"DrawingPad ({state}). Run the cell to draw a digit and see the caption and where the model looked."

    def static_png(self):
        """The pad as a picture: the canvas, or what the model saw with the caption's strip of maps."""
        thing = "number" if self.wide else "digit"
        if not self.caption:
            canvas = blank_canvas((70, 280) if self.wide else 140, f"draw a {thing} here")
            result, where = ("what the reader reads", "below") if self.wide else ("its caption", "beside")
            return png(with_note(canvas, f"Run the cell to draw a {thing} here: {result} appears {where} it."))
        seen = zoom(as_image(self.seen_png).convert("RGB"), self.mode.seen_zoom)  # the model's input, enlarged
        note = self.static_note()
        combined = stacked if self.wide else side_by_side  # a wide input above its strip, a square one beside it
        return png(with_note(combined(seen, as_image(self.strip_png)), note))

    def static_note(self):
        """The line under the static view's picture of what was written."""
        return f"{self.caption}{self.sure_note()}  (run the cell to draw your own {'number' if self.wide else 'digit'})"

    def sure_note(self):
        """", 97% sure" after what was written; with ": unsure, check it" under one half."""
        if self.sureness < 0:
            return ""
        return f", {100 * self.sureness:.0f}% sure" + (": unsure, check it" if self.sureness < 0.5 else "")

    def _bytes_to_image(self, pixels):
        height, width = self.resolution
        if len(pixels) == 0:
            return np.zeros((height, width), dtype=np.uint8)  # nothing sent: a blank canvas
        if len(pixels) != height * width:
            raise ValueError(f"expected {height}×{width} = {height * width} bytes of pixels (the resolution trait, "
                             f"height × width), got {len(pixels)}")
        return np.frombuffer(pixels, dtype=np.uint8).reshape(height, width).copy()  # writable, as torch wants


class Unreadable(ValueError):
    """A drawing the reader cannot read (a dot, too many digits): its message is shown in the pad."""


@contextmanager
def one_thread():
    """Run torch on one thread for a while. One small image gains nothing from a second thread, and
    when another process keeps the other core busy the threads wait on each other (measure it on
    your machine with tests/benchmarks/bench_drawing_pad.py)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _png(picture):
    """A PIL image or a uint8 array as PNG bytes; low compression, as speed matters more than size here."""
    from PIL import Image

    picture = picture if isinstance(picture, Image.Image) else Image.fromarray(picture)
    buffer = io.BytesIO()
    picture.save(buffer, format="png", compress_level=1)
    return buffer.getvalue()
