"""The next batch made beside the step gives exactly the stream's batches, raises the stream's errors where the batch
was wanted, and stops cleanly when the loop stops early."""

import threading

import pytest

from crossmodal.training.prefetch import prefetched


def test_the_same_items_in_the_same_order():
    assert list(prefetched(iter(range(50)))) == list(range(50))
    assert list(prefetched(iter([]))) == []


def test_an_error_in_the_stream_is_raised_in_the_loop_after_the_batches_before_it():
    def stream():
        yield 1
        yield 2
        raise ValueError("batch 3 cannot be made")

    seen = []
    with pytest.raises(ValueError, match="batch 3"):
        for item in prefetched(stream()):
            seen.append(item)
    assert seen == [1, 2]


def test_stopping_early_ends_the_thread_without_making_the_rest():
    made = []

    def stream():
        for i in range(1000):
            made.append(i)
            yield i

    for item in prefetched(stream()):
        if item == 3:
            break
    assert not any(t.name == "next batch" and t.is_alive() for t in threading.enumerate())
    assert len(made) <= 6  # the one in use, one waiting, and one the thread was making
