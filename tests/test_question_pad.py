"""The question pad of notebook 08, driven without a browser: ask, write or pick a number, read the answer."""

import numpy as np
import pytest
import torch

from crossmodal.tasks.questions import answer_questions, answer_with_maps
from crossmodal.widgets import AskThePicture, QuestionPad
from crossmodal.widgets.question_pad import FIRST_QUESTION, PROMPT

from .test_questions import tiny_answerer
from .test_viz import captioner
from .test_widgets import SEVENTY_ONE, WIDE, decoded, drawn, static_view


@pytest.fixture
def pad():
    return QuestionPad(tiny_answerer())


@pytest.fixture(scope="module")
def numbers():
    """Four numbers of 1 to 4 digits, each already the answerer's input (N, 1, 28, 112)."""
    torch.manual_seed(0)
    return torch.rand(4, 1, 28, 112) * (torch.rand(4, 1, 28, 112) > 0.8)


def test_a_drawn_number_gets_the_answer_to_the_question_with_one_map_per_character(pad):
    assert pad.message == PROMPT and pad.caption == ""
    pad.pixels = drawn(SEVENTY_ONE, WIDE)
    expected = answer_with_maps(pad.model, pad.seen, pad.question)
    assert pad.caption == expected.text != "" and pad.message == ""
    shown = min(8, len(expected.text.replace(" ", "")))  # its last 8 characters (no spaces), 2 to a row, 2× zoomed
    assert decoded(pad.strip_png).shape[0] == -(-shown // 2) * (2 * 28 + 18 + 4) - 4 <= pad.strip_space


def test_a_new_question_answers_the_same_picture_again(pad, numbers):
    pad.show_input(numbers[1])
    pad.question = "Read it backwards."
    assert pad.caption == answer_questions(pad.model, numbers[1:2], ["Read it backwards."])[0]
    assert torch.equal(pad.seen, numbers[1])


@pytest.mark.parametrize("question, words", [
    ("Is there a ß?", "not in the vocabulary"), ("", "empty"), ("What is the sum of the digits? " * 3, "at most"),
])
def test_a_question_it_cannot_read_gets_a_message_not_an_error(pad, numbers, question, words):
    pad.show_input(numbers[0])
    pad.question = question
    assert pad.caption == "" and pad.strip_png == b"" and pad.seen_png != b""
    assert pad.message.startswith("The answerer cannot read this question") and words in pad.message
    pad.question = "Read the number."  # and a good question answers again
    assert pad.caption and pad.message == ""


def test_a_captioner_or_a_reader_is_not_an_answerer():
    with pytest.raises(ValueError, match="needs a question answerer"):
        QuestionPad(captioner(4))


def test_ask_the_picture_answers_the_picked_number_and_the_typed_question(numbers):
    ask = AskThePicture(tiny_answerer(), numbers, question="How many digits are there?")
    model = ask.pad.model
    assert ask.pad.caption == answer_questions(model, numbers[:1], ["How many digits are there?"])[0]
    ask.picked.value = 2
    assert ask.pad.caption == answer_questions(model, numbers[2:3], ["How many digits are there?"])[0]
    np.testing.assert_array_equal(decoded(ask.pad.seen_png), np.rint(numbers[2, 0].numpy() * 255))
    ask.question.value = "Which digit is the largest?"
    assert ask.pad.question == "Which digit is the largest?"
    assert ask.pad.caption == answer_questions(model, numbers[2:3], ["Which digit is the largest?"])[0]


def test_ask_the_picture_without_images_only_draws():
    ask = AskThePicture(tiny_answerer())
    assert not hasattr(ask, "picked") and ask.pad.caption == ""
    assert "nothing written yet" in static_view(ask)["text/plain"]


def test_the_static_view_shows_the_question_the_answer_and_the_maps(numbers):
    ask = AskThePicture(tiny_answerer(), numbers)
    bundle = static_view(ask)
    assert repr(ask.pad.question) in bundle["text/plain"] and repr(ask.pad.caption) in bundle["text/plain"]
    picture, seen = decoded(bundle["image/png"]), decoded(ask.pad.seen_png)
    np.testing.assert_array_equal(picture[:84:3, :336:3, 0], seen)  # what the answerer saw, zoomed 3×, on top


@pytest.fixture(scope="module")
def shipped():
    from crossmodal import load_answerer

    return load_answerer()


def test_the_shipped_answerer_answers_questions_about_a_test_number(shipped, mnist_test):
    from crossmodal.data.questions import test_questions

    test = test_questions("seen")
    images = test.numbers.images[:8].float() / 255
    ask = AskThePicture(shipped, images, question="What number is written?")
    assert ask.pad.caption == test.numbers.texts[0]
    ask.question.value = "How many digits are there?"
    assert ask.pad.caption == str(len(test.numbers.texts[0]))


# ---- a learner's first hour (issue #31): it opens on a question that fits, says when one does not, stays compact,
# and says how sure it is


@pytest.fixture(scope="module")
def test_numbers_and_texts():
    from crossmodal.data.questions import test_questions

    test = test_questions()
    return test.numbers.images[:40].float() / 255, test.numbers.texts[:40]


def test_ask_the_picture_opens_on_a_number_the_question_fits(shipped, test_numbers_and_texts):
    images, texts = test_numbers_and_texts
    assert len(texts[0]) == 1  # the test set opens on a one-digit number, which has no second digit
    ask = AskThePicture(shipped, images)
    assert len(texts[ask.picked.value]) >= 2 and ask.pad.caption == texts[ask.picked.value][1]


def test_a_question_about_a_digit_the_number_lacks_gets_a_sentence(shipped, test_numbers_and_texts):
    images, texts = test_numbers_and_texts
    ask = AskThePicture(shipped, images)
    ask.picked.value = 0  # a "1": no second digit
    assert ask.pad.caption == "" and "has 1 digit: it has no second digit" in ask.pad.message
    ask.question.value = "What is the first digit?"
    assert ask.pad.caption == texts[0]


def test_a_long_answer_fits_a_laptops_screen_and_says_how_sure_it_is(shipped, test_numbers_and_texts):
    from io import BytesIO

    from PIL import Image

    images, texts = test_numbers_and_texts
    ask = AskThePicture(shipped, images, question="Add up the digits.")
    ask.picked.value = next(i for i, t in enumerate(texts) if len(t) == 4)
    assert len(ask.pad.caption) > 15  # the running total of four digits
    height = Image.open(BytesIO(ask.pad.strip_png)).height
    assert height <= ask.pad.strip_space <= 400  # the space kept for it from the start, on one screen
    assert 0 < ask.pad.sureness <= 1
    assert f"{100 * ask.pad.sureness:.0f}% sure" in ask.pad.static_note()


def test_an_unsure_answer_is_marked(pad, numbers):
    pad.show_input(numbers[0])  # a tiny untrained answerer: unsure of anything it writes
    assert 0 <= pad.sureness < 0.5 and "unsure, check it" in pad.static_note()


def test_a_blank_picture_gets_the_prompt_not_an_answer(pad, numbers):
    """The answerer refuses a blank picture as read_number does ('8 has 7: no' about nothing, issue #30)."""
    pad.show_input(numbers[0])
    assert pad.caption
    pad.show_input(torch.zeros(1, 28, 112))
    assert pad.caption == "" and pad.strip_png == b"" and pad.message == PROMPT


# ---- issue #39: a question outside the answerer's grammar, or none, gets a sentence, never a made-up answer; the
# widgets' own bad arguments too

BAD_QUESTIONS = [  # (the question, the words of the sentence)
    (None, "a question is a str"), (7, "a question is a str"), ("", "empty or holds only spaces"),
    ("7", "'7' is not a question the answerer was taught"),
    ("What is the tenth digit?", "is not a question the answerer was taught"),
    ("What is the ninth digit?", "is not a question the answerer was taught"),
    ("Is there a 77?", "is not a question the answerer was taught"),
    ("is there a 7?", "is not a question the answerer was taught"),
]


@pytest.mark.parametrize("question, words", BAD_QUESTIONS, ids=[repr(q) for q, _ in BAD_QUESTIONS])
def test_a_question_outside_the_grammar_is_refused_not_answered(shipped, test_numbers_and_texts, question, words):
    images, _ = test_numbers_and_texts
    with pytest.raises(ValueError, match=words):
        answer_with_maps(shipped, images[3], question)
    with pytest.raises(ValueError, match=words):
        answer_questions(shipped, images[3:4], [question])
    pad = QuestionPad(shipped, question=FIRST_QUESTION)
    pad.show_input(images[3])
    pad.question = question if isinstance(question, str) else ""
    assert pad.caption == "" and "The answerer cannot read this question" in pad.message


def test_spaces_around_a_question_are_not_part_of_it(shipped, test_numbers_and_texts):
    images, texts = test_numbers_and_texts
    k = next(i for i, t in enumerate(texts) if "7" in t)
    right = f"{texts[k]} has 7: yes"
    assert answer_with_maps(shipped, images[k], " Is there a 7?").text == right
    assert answer_questions(shipped, images[k : k + 1], ["Is there a 7?\n"]) == [right]


def test_an_answerer_is_never_asked_nothing(shipped, test_numbers_and_texts):
    images, _ = test_numbers_and_texts
    for questions in (None, "Is there a 7?", 7):  # not a list of questions
        with pytest.raises(ValueError, match="questions must be a list of strings, one per image"):
            answer_questions(shipped, images[:2], questions)
    with pytest.raises(ValueError, match="this model answers questions .*give every image a question"):
        shipped.generate_text(images[:2])


def test_the_widgets_refuse_their_own_bad_arguments(shipped):
    import traitlets

    from crossmodal.widgets import DrawingPad

    with pytest.raises(traitlets.TraitError, match=r"canvas_size .* each from 16 to 4096; got \(0, 0\)"):
        DrawingPad(shipped, canvas_size=(0, 0))
    with pytest.raises(ValueError, match="images is empty: give at least one test number"):
        AskThePicture(shipped, torch.zeros(0, 1, 28, 112))
