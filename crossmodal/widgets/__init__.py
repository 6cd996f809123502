"""Interactive views of the captioner for notebooks.

AttentionExplorer (ipywidgets): pick an image, a character, a layer and a head; see the map.
DrawingPad (anywidget): draw a digit with mouse, pen or finger; read the caption and its maps.
    With a reader of numbers it is wide: write a number, see it read and where each digit was found
    (DrawingPad.for_numbers() brings the shipped reader).
AskThePicture (ipywidgets around QuestionPad, a DrawingPad): type a question, write or pick a number, read the
    answer and where each of its characters looked (the shipped question answerer by default).
"""

import sys

from .drawing_pad import DrawingPad
from .explorer import AttentionExplorer
from .question_pad import AskThePicture, QuestionPad


def enable_colab():
    """In Google Colab, turn on the widget manager that custom widgets need; elsewhere do nothing.

    Returns True when running in Colab. Call it once, before displaying a widget.
    """
    if "google.colab" not in sys.modules:
        return False
    from google.colab import output

    output.enable_custom_widget_manager()
    return True


__all__ = ["AskThePicture", "AttentionExplorer", "DrawingPad", "QuestionPad", "enable_colab"]
