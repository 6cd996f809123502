"""One rule for choosing the device: "auto" takes a GPU when there is one; a missing one is a clear error."""

import pytest
import torch

from crossmodal.devices import describe, pick_device


def test_auto_takes_the_best_device_here():
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert pick_device("auto").type == expected
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("name", ["gpu", "tpu", "", None, "CPU"])
def test_unknown_names_are_refused(name):
    with pytest.raises(ValueError, match="device must be one of auto, cpu, cuda, mps"):
        pick_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_missing_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="sees no CUDA GPU"):
        pick_device("cuda")


def test_describe_names_the_threads_and_kernels_of_a_cpu():
    text = describe("cpu")
    assert text.startswith("cpu (") and f"{torch.get_num_threads()} threads" in text
    assert torch.backends.cpu.get_cpu_capability() in text
