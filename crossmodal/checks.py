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
