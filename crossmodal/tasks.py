"""What `python -m crossmodal.train --task T` trains: each task's model, the configuration it starts from,
and its data (a training stream, and a test set to evaluate after every epoch).

    mnist      caption single MNIST digits: "This is the number seven."   (Captioner.for_mnist)
    numbers    read numbers of 1 to 4 digits: "2026"                       (numbers.py, reading.py)
    questions  answer questions about such numbers: "Add up the digits." -> "10"   (questions.py)
"""

from .config import CaptionerConfig, VisionConfig
from .model import Captioner
from .numbers import NumberBatches, reader_config
from .numbers import test_set as number_test_set
from .questions import QuestionBatches, answerer_config, question_answerer, test_questions

TASKS = ("mnist", "numbers", "questions")


def default_model_config():
    """The captioner `python -m crossmodal.train` builds: the library's, with the convolutional stem.

    Early convolutions (vit.ConvStem) reach 99% caption exact match in about 2,000 steps, where the
    plain patch projection stops near 97.5% after 2,345 (README, "Time to accuracy"). The maps keep
    the 7×7 grid. `--vision.stem patch` trains the plain ViT.
    """
    return CaptionerConfig(vision=VisionConfig(stem="conv"))


def base_config(task):
    """The configuration a task's model starts from, before any flag changes it."""
    return {"mnist": default_model_config, "numbers": reader_config, "questions": answerer_config}[task]()


def new_model(task, config):
    """A freshly initialised model for `task`, with the tokenizer of what it writes."""
    if task == "numbers":
        return Captioner.for_numbers(config)
    return question_answerer(config) if task == "questions" else Captioner.for_mnist(config)


def task_data(task, model, cfg, mnist):
    """(training data, test data) for train.train, from MNIST's ((train images, labels), (test images, labels)).

    mnist: MNIST itself. numbers and questions: a stream of numbers written from the training digits
    (augmented as cfg says), and the fixed test set of numbers.test_set() or questions.test_questions().
    """
    (images, labels), test = mnist
    if task == "mnist":
        return (images, labels), test
    augment = {"augment": cfg.augment, "strokes": cfg.augment and cfg.augment_strokes}
    if task == "numbers":
        return NumberBatches(images, labels, model.tokenizer, **augment), number_test_set()
    return QuestionBatches(images, labels, model.tokenizer, kinds=cfg.kinds_asked(), **augment), test_questions()
