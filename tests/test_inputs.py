"""The input contract (crossmodal/images.py): one place, one rule for blank images."""

import pytest
import torch

import crossmodal
from crossmodal import BlankImageError, images, preprocess_drawing


def test_names_are_importable_from_the_package_and_their_home():
    for name in ("BlankImageError", "preprocess_drawing", "to_image_batch"):
        assert getattr(crossmodal, name) is getattr(images, name)


def faint(paper, ink):
    """A 28×28 picture of a bar in shade `ink` on paper of shade `paper`."""
    x = torch.full((28, 28), paper)
    x[8:20, 12:16] = ink
    return x


@pytest.mark.parametrize("paper, ink", [
    (0.0, 0.05), (0.0, 0.15),  # white on black: too faint, then just visible
    (0.5, 0.53), (0.5, 0.58),  # on grey paper: 0.08 above it is ink (16% of the way to white), 0.03 is not
    (1.0, 0.95), (1.0, 0.85),  # dark ink on white paper
    (0.3, 0.3),  # nothing drawn
])
@pytest.mark.filterwarnings("ignore::crossmodal.images.NotMNISTLikeWarning")  # grey and white paper, on purpose
def test_caption_and_preprocess_drawing_agree_on_blank(tiny_model, paper, ink):
    def blank(f):
        try:
            f(faint(paper, ink))
        except BlankImageError:
            return True
        return False

    assert blank(tiny_model.caption) == blank(preprocess_drawing)
