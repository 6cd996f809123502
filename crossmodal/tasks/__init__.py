"""The tasks: what `python -m crossmodal.train --task NAME` trains, one module each, listed in TASKS.

    captions   caption single MNIST digits: "This is the number seven."            (notebooks 04–06)
    numbers    read handwritten numbers of 1 to 4 digits: "2026"                     (notebook 07)
    questions  answer questions about them: "Add up the digits." -> "2+0=2, ..., 10"   (notebook 08)
    text       a language model reads facts about numbers, text only                   (notebook 10)
    eyes       that language model given eyes: Flamingo, trained on captions only       (notebook 10)

Each module owns its model factory, training stream, test set and evaluation (task.py says what a Task holds);
metrics.py and transfer.py hold the measurements they share.
"""

from . import captions, eyes, numbers, questions, text
from .task import Task

TASKS = {module.TASK.name: module.TASK for module in (captions, numbers, questions, text, eyes)}


def get_task(name):
    """The Task called `name`, or a ValueError listing the tasks there are."""
    if name not in TASKS:
        raise ValueError(f"no task {name!r}: the tasks are {', '.join(TASKS)}")
    return TASKS[name]


__all__ = ["TASKS", "Task", "get_task"]
