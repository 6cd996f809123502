"""The drawing pad: draw a digit, and at each stroke's end read the model's caption and where it looked.

The browser half (drawing_pad.js) is a canvas drawn on with pointer events (mouse, pen, touch).
When a stroke ends it shrinks the canvas to `resolution` × `resolution` and sends the ink as
bytes in `pixels`. The Python half answers in `update_from_pixels`:

    pixels → preprocess_drawing → (1, 28, 28), what the model sees → model.caption
           → caption, seen_png (the 28×28 input) and strip_png (one map per character)

All of it is plain Python on traits, so a test can drive it without a browser. It is one
anywidget, which runs in JupyterLab, Notebook 7, VS Code and Colab alike.
"""

import io
import time
from contextlib import contextmanager
from pathlib import Path

import anywidget
import numpy as np
import torch
import traitlets
from ipywidgets.widgets.trait_types import bytes_serialization

from ..inputs import BlankImageError, preprocess_drawing
from ..viz import render_strip
from .static import StaticFallback, as_image, blank_canvas, png, side_by_side, with_note, zoom

HERE = Path(__file__).parent
STRIP_ROW = 13  # tiles per row of the strip: "This is the " over "number seven.", to fit a notebook's width
PROMPT = "Draw a digit (0–9) in the box: the caption appears when you lift the pen."


class DrawingPad(StaticFallback, anywidget.AnyWidget):
    _esm = HERE / "drawing_pad.js"
    _css = HERE / "drawing_pad.css"

    # from the browser
    pixels = traitlets.Bytes(b"").tag(sync=True, **bytes_serialization)  # ink 0–255, resolution² bytes, row by row
    resolution = traitlets.Int(112).tag(sync=True)  # side the canvas is shrunk to before sending: ample for 20×20
    brush = traitlets.Int(22).tag(sync=True)  # brush width in canvas pixels (the canvas is 280 × 280)
    # to the browser
    caption = traitlets.Unicode("").tag(sync=True)  # "" while there is nothing to caption
    message = traitlets.Unicode(PROMPT).tag(sync=True)  # shown instead of a caption
    seen_png = traitlets.Bytes(b"").tag(sync=True)  # the 28×28 input the model sees
    strip_png = traitlets.Bytes(b"").tag(sync=True)  # the caption strip: one attention map per character
    seconds = traitlets.Float(0.0).tag(sync=True)  # Python's time for the last stroke

    def __init__(self, model=None, layer=None, head=None, **kwargs):
        """model: a Captioner (default: the shipped one). layer, head: which maps the strip shows (None = mean)."""
        super().__init__(**kwargs)
        if model is None:
            from ..pretrained import load_pretrained

            model = load_pretrained()
        self.model, self.layer, self.head = model, layer, head

    @traitlets.observe("pixels")
    def _on_pixels(self, change):
        try:
            self.update_from_pixels(change["new"])
        except Exception as err:  # show it in the widget: a traceback here would only reach the kernel log
            self.message, self.caption = f"Something went wrong: {err}", ""
            raise

    def update_from_pixels(self, pixels):
        """Caption a drawing and update every output trait at once; returns the Caption (None if blank).

        pixels: bytes of a square grey image as the browser sends them (resolution² values,
        ink 0–255), or any picture preprocess_drawing accepts (numpy, PIL, tensor).
        """
        start = time.perf_counter()
        if isinstance(pixels, (bytes, bytearray, memoryview)):
            pixels = self._bytes_to_image(pixels)
        try:
            with one_thread():
                seen = preprocess_drawing(pixels)  # (1, 28, 28)
                caption = self.model.caption(seen)
        except BlankImageError:
            with self.hold_sync():  # one message to the browser, not four
                self.caption, self.message, self.seen_png, self.strip_png = "", PROMPT, b"", b""
                self.seconds = time.perf_counter() - start
            return None
        seen_png = _png(np.rint(seen[0].numpy() * 255).astype(np.uint8))
        strip_png = _png(render_strip(caption, self.layer, self.head, row_length=STRIP_ROW))
        with self.hold_sync():
            self.caption, self.message, self.seen_png, self.strip_png = caption.text, "", seen_png, strip_png
            self.seconds = time.perf_counter() - start
        return caption

    def static_text(self):
        """The line a reader sees where the widget cannot run (see static.py)."""
        state = f"its caption: {self.caption!r}" if self.caption else "nothing drawn yet"
        return f"DrawingPad ({state}). Run the cell to draw a digit and see the caption and where the model looked."

    def static_png(self):
        """The pad as a picture: the canvas, or what the model saw with the caption's strip of maps."""
        if not self.caption:
            return png(with_note(blank_canvas(), "Run the cell to draw a digit here: its caption appears beside it."))
        seen = zoom(as_image(self.seen_png).convert("RGB"), 4)  # the 28×28 input, 112×112
        note = f"{self.caption}  (run the cell to draw your own digit)"
        return png(with_note(side_by_side(seen, as_image(self.strip_png)), note))

    def _bytes_to_image(self, pixels):
        side = self.resolution
        if len(pixels) == 0:
            return np.zeros((side, side), dtype=np.uint8)  # nothing sent: a blank canvas
        if len(pixels) != side * side:
            raise ValueError(f"expected {side}×{side} = {side * side} bytes of pixels (the resolution trait), "
                             f"got {len(pixels)}")
        return np.frombuffer(pixels, dtype=np.uint8).reshape(side, side).copy()  # writable, as torch wants


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
