"""Interactive views of the captioner for notebooks.

AttentionExplorer (ipywidgets): pick an image, a character, a layer and a head; see the map.
DrawingPad (anywidget): draw a digit with mouse, pen or finger; read the caption and its maps.
    With a reader of numbers it is wide: write a number, see it read and where each digit was found
    (DrawingPad.for_numbers() brings the shipped reader).
"""

import sys

from .drawing_pad import DrawingPad
from .explorer import AttentionExplorer


def enable_colab():
    """In Google Colab, turn on the widget manager that custom widgets need; elsewhere do nothing.

    Returns True when running in Colab. Call it once, before displaying a widget.
    """
    if "google.colab" not in sys.modules:
        return False
    from google.colab import output

    output.enable_custom_widget_manager()
    return True


__all__ = ["AttentionExplorer", "DrawingPad", "enable_colab"]
