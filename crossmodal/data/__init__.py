"""The data: MNIST and its captions, EMNIST, augmentation, handwritten numbers, questions about them, and
sentences about numbers for a language model. No model here: the tasks (crossmodal/tasks/) turn these into
training streams and test sets.

    mnist.py      MNIST loaded offline or through torchvision; caption_for(7) == "This is the number seven."
    emnist.py     EMNIST's digits and letters, upright
    augment.py    handwriting varies: pose, stroke width, blur
    numbers.py    numbers of 1 to 4 digits written on one canvas, byte-exact; the fixed test set
    questions.py  seven kinds of question about a number, each with one exact answer; held-out phrasings
    facts.py      the grammar of sentences about numbers a language model reads
    phrasings.py  those questions in many phrasings, about a picture or in text; a split of the phrasings
"""

from .augment import PERTURBATIONS, augment
from .emnist import load_emnist
from .mnist import ALL_CAPTIONS, DIGIT_WORDS, caption_for, load_mnist
from .numbers import Numbers, make_numbers, test_numbers
from .questions import Question, test_questions

__all__ = ["ALL_CAPTIONS", "DIGIT_WORDS", "Numbers", "PERTURBATIONS", "Question", "augment", "caption_for",
           "load_emnist", "load_mnist", "make_numbers", "test_numbers", "test_questions"]
