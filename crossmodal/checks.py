"""`check`: how a notebook states a claim about a trained result, so that it holds on any CPU.

CPUs of different generations (AVX-512, AVX2, ...) round floats differently in their last bits, and
training amplifies those bits: the loss, the accuracy, the mistakes and every sampled caption after them
move a little from machine to machine. A notebook shows those numbers to the reader, in cells that the
test run (strict nbval) does not compare, and states what the prose claims about them with `check`:
a tolerance every correct run meets. The ✓ line it prints is the same everywhere, so nbval compares it.
"""


def check(claim: str, holds: bool, measured: str = "") -> None:
    """Print `✓ claim` when `holds`; otherwise stop the notebook, saying what was measured instead.

    >>> check("the loss ends below the blind floor", 0.025 < 0.092, "0.025 against 0.092")
    ✓ the loss ends below the blind floor
    """
    if not holds:
        raise AssertionError(f"expected {claim}, but this run measured {measured or 'otherwise'}")
    print(f"✓ {claim}")


class NotAttempted(Exception):
    """The learner's exercise cell still gives None: there is nothing to check yet."""


def exercise(name, check_answer, attempt, solution):
    """Check an exercise: first the notebook's own solution, then the learner's attempt.

    check_answer(answer) raises AssertionError with a hint when an answer is wrong. The solution (a function or a
    value, kept in the collapsed cell above the exercise) must pass, every time the notebook runs, so that it never
    goes stale: the tests that run every notebook check every solution this way. Then the attempt: a value, or a
    function, as the exercise asks; None, or a function that returns None, has not been attempted yet, and says so
    instead of failing. A ✓ line never shows the answer.
    """
    check_answer(solution)
    shown = getattr(solution, "__name__", None)
    try:
        check_answer(_answering(attempt))
    except NotAttempted:
        where = f"`{shown}`, in the collapsed cell before it," if shown else "the collapsed cell before it"
        where += " shows one"
        print(f"{name}: not attempted yet — write your answer in place of `None` and run the cell again; {where}")
        return False
    print(f"{name} ✓")
    return True


def _answering(attempt):
    """The attempt, with None (or a function's None) turned into NotAttempted."""
    if attempt is None:
        raise NotAttempted
    if not callable(attempt) or isinstance(attempt, type):
        return attempt

    def answering(*args, **kwargs):
        answer = attempt(*args, **kwargs)
        if answer is None:
            raise NotAttempted
        return answer

    return answering
