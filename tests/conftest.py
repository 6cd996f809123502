import os

import pytest
import torch

from crossmodal import DecoderConfig, VisionConfig, VLMConfig
from crossmodal.tasks.captions import new_captioner

torch.set_num_threads(2)


def tiny_config(**decoder):
    return VLMConfig(VisionConfig(dim=32, depth=2, num_heads=2, patch_size=7),
                           DecoderConfig(dim=32, depth=2, num_heads=2, **decoder))


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    return new_captioner(tiny_config()).eval()


@pytest.fixture(scope="session")
def mnist_test():
    """The 10,000 MNIST test images; CI must have them (CROSSMODAL_DATA), elsewhere the test is skipped."""
    from crossmodal import load_mnist

    try:
        return load_mnist(train=False)
    except RuntimeError as err:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(err))


@pytest.fixture(scope="session")
def mnist_train():
    from crossmodal import load_mnist

    try:
        return load_mnist(train=True)
    except RuntimeError as err:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(err))
