"""Ask the picture (notebook 08): type a question, write a number or pick one from the test set, and read
the answer with, for each of its characters, where the answerer looked.

QuestionPad is the wide drawing pad of drawing_pad.py with a question: for a drawing it writes
tasks.questions.answer_with_maps(model, drawing, question) instead of a caption, and a new question answers the
same picture again. AskThePicture puts a text box for the question and a picker of test numbers above it.
A question the answerer cannot read (a character outside its vocabulary, empty, too long) gets a message in
the pad, as an unreadable drawing does. All of it is traits, so tests drive it without a browser.
"""

import time

import ipywidgets as widgets
import traitlets

from ..images import BlankImageError
from ..tasks.questions import answer_with_maps
from .drawing_pad import DrawingPad, Unreadable
from .static import StaticFallback

FIRST_QUESTION = "What is the second digit?"
PROMPT = "Write a number of up to four digits: the answer to the question appears when you lift the pen."


class QuestionPad(DrawingPad):
    question = traitlets.Unicode(FIRST_QUESTION)  # set from Python (AskThePicture's text box), not the browser

    def __init__(self, model=None, question=FIRST_QUESTION, **kwargs):
        """model: a question answerer (default: the shipped one, crossmodal.load_answerer())."""
        if model is None:
            from ..pretrained import load_answerer

            model = load_answerer()
        if not getattr(model.tokenizer, "chat_template", None):
            raise ValueError("QuestionPad needs a question answerer (a model whose tokenizer has a chat template, "
                             "e.g. crossmodal.load_answerer()); to read numbers without questions use "
                             "DrawingPad.for_numbers()")
        super().__init__(model, **kwargs)
        if not self.wide:
            raise ValueError("QuestionPad needs an answerer of numbers (images wider than high, "
                             "tasks.questions.answerer_config())")
        self.message = PROMPT
        self.question = question

    def _write(self, seen):
        try:
            return answer_with_maps(self.model, seen, self.question)  # the question is checked once, there
        except BlankImageError:
            raise
        except ValueError as err:  # a question it cannot read: the learner should hear why
            raise Unreadable(f"The answerer cannot read this question: {err}.") from err

    @traitlets.observe("question")
    def _on_question(self, change):
        if self.seen is not None:  # a picture is there: answer the new question about it
            self.show_input(self.seen, time.perf_counter())

    def static_text(self):
        """The line a reader sees where the widget cannot run (see static.py)."""
        state = f"asked {self.question!r}, it answered {self.caption!r}" if self.caption else "nothing written yet"
        return (f"QuestionPad ({state}). Run the cell to write a number, ask about it and see where the answerer "
                "looked for each character of its answer.")

    def static_note(self):
        return f"{self.question}  →  {self.caption}  (run the cell to ask your own)"


class AskThePicture(StaticFallback, widgets.VBox):
    def __init__(self, model=None, images=None, question=FIRST_QUESTION):
        """model: a question answerer (default: the shipped one). images: (N, 1, 28, W) test numbers in [0, 1] to
        pick from (the first is shown to start with); without them, only drawing."""
        self.pad = QuestionPad(model, question=question)
        self.images = images
        self.question = widgets.Text(question, description="question", continuous_update=False,
                                     layout=widgets.Layout(width="420px"))  # answered on Enter, not per keystroke
        controls = [self.question]
        if images is not None:
            self.picked = widgets.BoundedIntText(0, min=0, max=len(images) - 1, description="test number",
                                                 layout=widgets.Layout(width="200px"))
            self.picked.observe(self._on_pick, "value")
            controls.append(self.picked)
        super().__init__([widgets.HBox(controls), self.pad])
        self.add_class("crossmodal-ask")  # a handle for pages and browser tests
        self.question.observe(self._on_question, "value")
        if images is not None:
            self._on_pick()

    def _on_question(self, change):
        self.pad.question = change["new"]

    def _on_pick(self, change=None):
        self.pad.show_input(self.images[self.picked.value])  # already the answerer's input: no preprocessing

    def static_text(self):
        return self.pad.static_text()

    def static_png(self):
        return self.pad.static_png()
