"""The next batch made beside the current step: a stream's batches from a background thread, one ahead.

    for batch in prefetched(stream.batches(epoch, batch_size, seed)):
        ...

Writing numbers (data/numbers.py) and posing digits is work outside the model; done beside the step, it fills
the moments the step leaves a core idle (the interpreter between kernels, the optimizer's small tensors).
PyTorch releases the interpreter lock inside its kernels, so a thread is enough. The batches, their order and
their contents are exactly the stream's: only when each is made changes. An error in the stream is raised here,
in the training loop, as it would have been without the thread.
"""

import queue
import threading

_DONE = object()


def prefetched(batches, ahead=1):
    """Yield what the iterator `batches` yields, each made in a background thread while the one before is used."""
    made = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def offer(item):  # False once the loop has stopped taking batches
        while not stop.is_set():
            try:
                made.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for batch in batches:
                if not offer(batch):
                    return
            offer(_DONE)
        except BaseException as err:  # handed to the loop, which raises it where the batch was wanted
            offer(err)

    worker = threading.Thread(target=produce, name="next batch", daemon=True)
    worker.start()
    try:
        while True:
            item = made.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:  # the loop stopped early (its last step, an error): let the thread end without making more
        stop.set()
        worker.join()
