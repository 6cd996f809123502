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

from ..data.questions import ORDINALS, PHRASINGS, asked_ordinal, final_answer
from ..images import BlankImageError
from ..nn.model import Generation
from ..tasks.questions import answer_with_maps
from ..viz import render_strip
from .drawing_pad import DrawingPad, Unreadable
from .static import StaticFallback

FIRST_QUESTION = "What is the second digit?"
PROMPT = "Write a number of up to four digits: the answer to the question appears when you lift the pen."
SHOWN, SHOWN_SCALE, SHOWN_PER_ROW = 8, 2, 2  # the answer's strip: its last 8 characters, 2 to a row, 2× the input


def digit_count(model, image):
    """How many digits the answerer sees in `image`, asked in one of its own phrasings; None if it answers oddly."""
    answer = model.generate_text(image, PHRASINGS["count"][0], with_maps=False)[0].text
    return int(answer) if answer.isdigit() else None


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
        self.mode = self.mode._replace(prompt=PROMPT)  # a blank canvas asks for a number to ask about
        self.message = PROMPT
        self.question = question
        self.strip_space = self._strip_height(SHOWN, SHOWN_SCALE, SHOWN_PER_ROW)

    def _write(self, seen):
        try:
            self._check_fits(seen)
            return answer_with_maps(self.model, seen, self.question)  # the question is checked once, there
        except (BlankImageError, Unreadable):
            raise
        except ValueError as err:  # a question it cannot read: the learner should hear why
            raise Unreadable(f"The answerer cannot read this question: {err}.") from err

    def _check_fits(self, seen):
        """A question about the k-th digit of a number with fewer digits gets a sentence, not a made-up digit."""
        k = asked_ordinal(self.question)
        if k is None:
            return
        count = digit_count(self.model, seen)
        if count is not None and k >= count:
            raise Unreadable(f"The number here has {count} digit{'s' * (count != 1)}: it has no {ORDINALS[k]} digit. "
                             "Ask about another digit, or write a longer number.")

    def _strip(self, written):
        """A compact strip: the last SHOWN characters (the conclusion and the working just before it), two to a row,
        so that a long answer (a sum's running total) fits a laptop's screen."""
        shown = [i for i, c in enumerate(written.text) if c != " "][-SHOWN:]  # a space's map says nothing
        if len(shown) < len(written.text):
            written = Generation("".join(written.text[i] for i in shown), written.attention[shown], written.image)
        return render_strip(written, self.layer, self.head, SHOWN_SCALE, row_length=SHOWN_PER_ROW)

    def _sureness(self, written):
        """How sure it was of its conclusion (the characters after the working: "yes", "10"), which is what is
        graded; a long working is right step by step with probabilities that multiply to little."""
        conclusion = len(final_answer(written.text)) or len(written.text)  # no conclusion written: all of it
        return float(written.probs[len(written.text) - conclusion :].prod())

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
        return f"{self.question}  →  {self.caption}{self.sure_note()}  (run the cell to ask your own)"


class AskThePicture(StaticFallback, widgets.VBox):
    def __init__(self, model=None, images=None, question=FIRST_QUESTION):
        """model: a question answerer (default: the shipped one). images: (N, 1, 28, W) test numbers in [0, 1] to
        pick from (it opens on the first the question fits: a number with a second digit, for "What is the second
        digit?"); without them, only drawing."""
        if images is not None and len(images) == 0:  # nothing to pick from: the picker's range would be empty
            raise ValueError("images is empty: give at least one test number shaped (N, 1, 28, W), or leave images "
                             "out to draw only")
        self.pad = QuestionPad(model, question=question)
        self.images = images
        self.question = widgets.Text(question, description="question", continuous_update=False,
                                     layout=widgets.Layout(width="420px"))  # answered on Enter, not per keystroke
        controls = [self.question]
        if images is not None:
            self.picked = widgets.BoundedIntText(self._first_fitting(images, question), min=0, max=len(images) - 1,
                                                 description="test number", layout=widgets.Layout(width="200px"))
            self.picked.observe(self._on_pick, "value")
            controls.append(self.picked)
        super().__init__([widgets.HBox(controls), self.pad])
        self.add_class("crossmodal-ask")  # a handle for pages and browser tests
        self.question.observe(self._on_question, "value")
        if images is not None:
            self._on_pick()

    def _first_fitting(self, images, question, looked_at=50):
        """The first of the images (of the first `looked_at`) that the question fits, or 0."""
        k = asked_ordinal(question)
        if k is None:
            return 0
        for i in range(min(len(images), looked_at)):
            count = digit_count(self.pad.model, images[i])
            if count is not None and count > k:
                return i
        return 0

    def _on_question(self, change):
        self.pad.question = change["new"]

    def _on_pick(self, change=None):
        self.pad.show_input(self.images[self.picked.value])  # already the answerer's input: no preprocessing

    def static_text(self):
        return self.pad.static_text()

    def static_png(self):
        return self.pad.static_png()
