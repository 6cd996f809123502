"""What a widget shows where no widget can run: on GitHub, in Colab's preview, in an untrusted notebook.

A live front end draws a widget from its model, named by the `application/vnd.jupyter.widget-view+json`
entry of the widget's display data. A stored notebook read elsewhere has no live model, and the reader
falls back to the other entries, which ipywidgets fills with only the widget's Python repr. So each of
our widgets puts a picture of its current state (`image/png`) and a line saying to run the cell
(`text/plain`) beside the widget-view entry: a reader sees what the widget does before running anything,
and a running notebook still shows the live widget (front ends rank the widget view first).
"""

import io

import numpy as np
from IPython.display import display
from PIL import Image, ImageDraw

from ..nn.layers import pair
from ..viz import font

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class StaticFallback:
    """Mix into a widget class that defines `static_text()` (one line) and `static_png()` (PNG bytes or b"")."""

    def _repr_mimebundle_(self, **kwargs):
        data = {"text/plain": self.static_text()}
        png = self.static_png()
        if png:
            data["image/png"] = png
        if self._view_name is not None:
            data[WIDGET_VIEW] = {"version_major": 2, "version_minor": 0, "model_id": self.model_id}
        return data

    def _ipython_display_(self, **kwargs):
        """ipywidgets 7 (Colab's) displays a widget with this method and never asks _repr_mimebundle_: same data."""
        display(self._repr_mimebundle_(), raw=True)
        if hasattr(self, "_handle_displayed"):  # ipywidgets 7: run the widget's on_displayed callbacks
            self._handle_displayed(**kwargs)


def png(picture):
    """A PIL image or a uint8 array as PNG bytes."""
    picture = picture if isinstance(picture, Image.Image) else Image.fromarray(picture)
    buffer = io.BytesIO()
    picture.save(buffer, format="png", optimize=True)
    return buffer.getvalue()


def with_note(picture, note, width=None):
    """`picture` (PIL) on white, with a grey line of text under it: the note a static view needs."""
    face = font(13)
    width = max(width or 0, picture.width, int(face.getlength(note)) + 16)
    canvas = Image.new("RGB", (width, picture.height + 26), "white")
    canvas.paste(picture.convert("RGB"), (0, 0))
    ImageDraw.Draw(canvas).text((4, picture.height + 6), note, fill=(90, 90, 90), font=face)
    return canvas


def blank_canvas(size=140, prompt="draw a digit here"):
    """The drawing pad's empty canvas: dark, a light frame, the prompt in it. size: a side, or (height, width)."""
    height, width = pair(size)
    canvas = Image.new("RGB", (width, height), (17, 17, 17))
    pen = ImageDraw.Draw(canvas)
    pen.rectangle([0, 0, width - 1, height - 1], outline=(200, 200, 200), width=2)
    pen.text((width / 2, height / 2), prompt, fill=(150, 150, 150), font=font(12), anchor="mm")
    return canvas


def side_by_side(left, right, gap=12):
    """Two PIL images next to each other, tops aligned, on white."""
    canvas = Image.new("RGB", (left.width + gap + right.width, max(left.height, right.height)), "white")
    canvas.paste(left.convert("RGB"), (0, 0))
    canvas.paste(right.convert("RGB"), (left.width + gap, 0))
    return canvas


def stacked(top, bottom, gap=12):
    """Two PIL images one above the other, left edges aligned, on white."""
    canvas = Image.new("RGB", (max(top.width, bottom.width), top.height + gap + bottom.height), "white")
    canvas.paste(top.convert("RGB"), (0, 0))
    canvas.paste(bottom.convert("RGB"), (0, top.height + gap))
    return canvas


def as_image(png_bytes):
    return Image.open(io.BytesIO(png_bytes), formats=["PNG"])  # the widget's own PNGs, and nothing else


def zoom(picture, factor):
    """Nearest-neighbour zoom of a PIL image, so that a 28 × 28 digit stays sharp."""
    array = np.asarray(picture)
    return Image.fromarray(array.repeat(factor, axis=0).repeat(factor, axis=1))
