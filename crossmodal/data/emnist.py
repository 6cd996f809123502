"""EMNIST: handwritten digits and letters in MNIST's format, for reading words (opt-in, never needed by CI).

Like MNIST, it comes from torchvision into the folder named by CROSSMODAL_DATA (see mnist.py).
EMNIST stores each image transposed relative to MNIST (column by column); `load_emnist` turns
them upright, so a letter looks as it was written.
"""

from pathlib import Path

import torch

from .mnist import data_root

SPLITS = ("byclass", "bymerge", "balanced", "letters", "digits", "mnist")  # torchvision's EMNIST.splits


def emnist_files(split, train=True, root=None):
    """The (images, labels) files of a split, where torchvision puts them: root/EMNIST/raw/emnist-<split>-..."""
    raw = (Path(root) if root is not None else data_root()) / "EMNIST" / "raw"
    prefix = f"emnist-{split}-{'train' if train else 'test'}"
    return raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"


def load_emnist(split, train=True, root=None):
    """One EMNIST split as tensors: images (N, 1, 28, 28) float in [0, 1], upright as MNIST's; labels (N,).

    Labels are EMNIST's own: for "letters" 1–26 stand for a–z, for "byclass" 0–9 are digits, then
    A–Z, then a–z (torchvision's EMNIST.classes_split_dict names them).
    """
    if split not in SPLITS:
        raise ValueError(f"EMNIST has no split {split!r}; choose one of {', '.join(SPLITS)}")
    image_file, label_file = emnist_files(split, train, root)
    if not (image_file.is_file() and label_file.is_file()):
        _download(split, train, root)
    images, labels = _read(image_file), _read(label_file)
    if images.dim() != 3 or images.shape[1:] != (28, 28) or labels.dim() != 1 or len(labels) != len(images):
        raise RuntimeError(f"EMNIST is present but unreadable: {image_file} and {label_file} do not hold one label "
                           "per 28×28 image; delete them to download them again")
    upright = images.transpose(1, 2)  # (N, 28, 28): stored column by column, so rows and columns swap
    return upright.unsqueeze(1).float().div_(255), labels.long()


def _download(split, train, root):
    from torchvision.datasets import EMNIST

    folder = Path(root) if root is not None else data_root()
    try:
        EMNIST(str(folder), split=split, train=train, download=True)
    except Exception as err:  # no network, read-only folder ...
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RuntimeError(f"EMNIST is not in {folder / 'EMNIST' / 'raw'} and could not be downloaded ({reason}): "
                           "set the CROSSMODAL_DATA environment variable to a folder that holds EMNIST/raw/, "
                           "or connect to the internet.") from None


def _read(path):
    """An IDX file as a uint8 tensor, or a RuntimeError naming the file."""
    from torchvision.datasets.mnist import read_sn3_pascalvincent_tensor

    try:
        x = read_sn3_pascalvincent_tensor(str(path), strict=True)
    except Exception:  # torchvision asserts on a bad header or a short file; no message of its own
        raise RuntimeError(f"EMNIST is present but unreadable: {path} is truncated or not an IDX file; "
                           "delete it to download it again") from None
    if x.dtype != torch.uint8:
        raise RuntimeError(f"EMNIST is present but unreadable: {path} holds {x.dtype} values, not bytes")
    return x
