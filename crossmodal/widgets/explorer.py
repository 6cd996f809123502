"""The attention explorer: pick an image, a character of its caption, a layer and a head (or the
mean), and see where the model looked when it wrote that character.

Plain ipywidgets, so it runs wherever widgets do. Every control is an attribute (`index`, `char`,
`layer`, `head`) and the outputs are too (`picture` holds PNG bytes, `caption_html` the caption
with the character highlighted), so a test or a notebook cell can drive it without a browser.
"""

import html
import io

import ipywidgets as widgets

from ..viz import attention_map, plot_attention
from .static import StaticFallback, as_image, png, with_note

MEAN = -1  # the dropdowns' value for "mean over layers / heads" (a Dropdown cannot hold None)


class AttentionExplorer(StaticFallback, widgets.VBox):
    def __init__(self, model, images, labels=None):
        """model: a VisionLanguageModel. images: (N, 1, 28, 28) in [0, 1], e.g. the MNIST test set or a
        small gallery. labels: (N,) true digits, shown beside the caption when given."""
        self.model, self.images, self.labels = model, images, labels
        self._captions = {}  # image index -> Caption: each image is captioned once
        layers = model.decoder.image_layers  # cross-attention layers; for a prefix decoder, every layer
        self.index = widgets.BoundedIntText(0, min=0, max=len(images) - 1, description="image",
                                            layout=widgets.Layout(width="180px"))
        self.char = widgets.IntSlider(0, min=0, max=0, description="character",
                                      continuous_update=False)  # one redraw on release, not a queue while dragging
        self.layer = widgets.Dropdown(options=[("mean", MEAN)] + [(str(i), i) for i in range(layers)],
                                      value=MEAN, description="layer", layout=widgets.Layout(width="160px"))
        heads = model.config.decoder.num_heads  # also for a blind captioner, which has no cross-attention layer
        self.head = widgets.Dropdown(options=[("mean", MEAN)] + [(str(h), h) for h in range(heads)],
                                     value=MEAN, description="head", layout=widgets.Layout(width="160px"))
        self.caption_html = widgets.HTML()
        self.picture = widgets.Image(format="png", layout=widgets.Layout(width="340px"))
        self.numbers = widgets.HTML()
        controls = widgets.HBox([self.index, self.layer, self.head])
        super().__init__([controls, self.char, self.caption_html, self.picture, self.numbers])
        self.add_class("crossmodal-explorer")  # a handle for pages and browser tests
        self.index.observe(self._on_image, "value")
        for control in (self.char, self.layer, self.head):
            control.observe(self._redraw, "value")
        self._on_image()

    @property
    def caption(self):
        """The Caption of the current image."""
        i = self.index.value
        if i not in self._captions:
            self._captions[i] = self.model.caption(self.images[i])
        return self._captions[i]

    def _on_image(self, change=None):
        self.char.max = len(self.caption.text) - 1  # may clamp char.value, which redraws too
        self._redraw()

    def _redraw(self, change=None):
        caption, char = self.caption, self.char.value
        layer, head = _or_none(self.layer.value), _or_none(self.head.value)
        self.caption_html.value = _highlighted(caption.text, char) + self._truth()
        if caption.attention.size(1) == 0:  # a blind captioner (cross_attention_every=0) writes without looking
            self.picture.value = b""
            self.numbers.value = "<small>this captioner has no cross-attention layers: no maps to show</small>"
            return
        fig = plot_attention(caption, char, layer, head)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90)
        self.picture.value = buffer.getvalue()
        m = attention_map(caption, char, layer, head)
        row, col = divmod(int(m.argmax()), m.shape[1])
        self.numbers.value = (f"<small>brightest patch: row {row}, column {col}, weight {m.max():.3f} "
                              f"(uniform would be {1 / m.size:.3f})</small>")

    def static_text(self):
        """The line a reader sees where the widget cannot run (see static.py)."""
        return ("AttentionExplorer: where the captioner looked while writing each character. "
                "Run the cell to explore: pick an image, a character, a layer and a head.")

    def static_png(self):
        """The explorer's current map with a line naming what it shows; b"" for a captioner without maps."""
        if not self.picture.value:
            return b""
        layer, head = self.layer.label, self.head.label
        note = (f"image {self.index.value}, character {self.char.value}, layer {layer}, head {head} "
                "(run the cell to explore)")
        return png(with_note(as_image(self.picture.value), note))

    def _truth(self):
        if self.labels is None:
            return ""
        return f" <small>(the image is a {int(self.labels[self.index.value])})</small>"


def _or_none(value):
    return None if value == MEAN else value


def _highlighted(text, char):
    """The caption as HTML, the chosen character marked."""
    before, ch, after = (html.escape(s) for s in (text[:char], text[char], text[char + 1:]))
    ch = ch if ch != " " else "␣"
    return (f"<span style='font-family: monospace; font-size: 1.3em'>{before}"
            f"<mark style='background: #fdbb2d; padding: 0 1px'>{ch}</mark>{after}</span>")
