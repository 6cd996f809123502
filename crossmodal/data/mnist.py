"""MNIST: handwritten digits, and the sentence that captions each one ("This is the number seven.").

Images are float tensors in [0, 1], white digit on black, (B, 1, 28, 28) (see images.py for the
input contract). MNIST comes from torchvision into the folder named by the CROSSMODAL_DATA
environment variable (default: ~/.cache/crossmodal).
"""

import os
from pathlib import Path

import torch

DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def caption_for(digit):
    """The sentence the captioner learns: caption_for(7) == 'This is the number seven.'"""
    return f"This is the number {DIGIT_WORDS[int(digit)]}."


ALL_CAPTIONS = [caption_for(d) for d in range(10)]


def data_root():
    return Path(os.environ.get("CROSSMODAL_DATA") or Path.home() / ".cache" / "crossmodal")


def load_mnist(train, root=None):
    """All of MNIST's train or test split as tensors: images (N, 1, 28, 28) float in [0, 1], labels (N,).

    Downloaded with torchvision when the files are not there; files that are there are checked
    (their header, 28×28 images, one label in 0–9 per image) and never silently misread.
    """
    root = Path(root) if root is not None else data_root()
    raw, split = root / "MNIST" / "raw", "train" if train else "t10k"
    image_file, label_file = raw / f"{split}-images-idx3-ubyte", raw / f"{split}-labels-idx1-ubyte"
    missing = [f.name for f in (image_file, label_file) if not f.is_file()]
    if missing:
        _download(root, train, missing)
    images, labels = _read_idx(image_file), _read_idx(label_file)
    if images.dim() != 3 or images.shape[1:] != (28, 28):
        raise _unreadable(image_file, f"holds arrays shaped {tuple(images.shape)}, not 28×28 images")
    if labels.dim() != 1 or len(labels) != len(images):
        raise _unreadable(label_file, f"holds {len(labels)} labels for the {len(images)} images of {image_file.name}")
    if labels.min() < 0 or labels.max() > 9:
        raise _unreadable(label_file, f"holds labels from {labels.min()} to {labels.max()}, not digits 0–9")
    return images.unsqueeze(1).float().div_(255), labels.long()


def _download(root, train, missing):
    import socket

    from torchvision.datasets import MNIST

    raw = Path(root) / "MNIST" / "raw"
    made = [folder for folder in (raw, *raw.parents) if not folder.exists()]  # the folders torchvision will make
    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(10)  # offline, each mirror fails fast rather than after minutes
    try:
        MNIST(str(root), train=train, download=True)
    except Exception as err:  # no network, read-only folder ...
        for folder in made:  # deepest first: a failed attempt leaves no empty folder behind, only files it fetched
            try:
                folder.rmdir()
            except OSError:  # not empty (a file was fetched), or never made
                break
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if reason.startswith("Error downloading"):  # torchvision names the first file of its list, not ours
            reason = "no internet here?"
        raise RuntimeError(
            f"MNIST's {' and '.join(missing)} {'are' if len(missing) > 1 else 'is'} not in {root / 'MNIST' / 'raw'} "
            f"and could not be downloaded ({reason}); set the CROSSMODAL_DATA environment variable to a folder that "
            "holds MNIST/raw/, or connect to the internet."
        ) from None
    finally:
        socket.setdefaulttimeout(before)


def _read_idx(path):
    """An MNIST (IDX) file as a uint8 tensor, or a RuntimeError naming the file."""
    from torchvision.datasets.mnist import read_sn3_pascalvincent_tensor

    try:
        x = read_sn3_pascalvincent_tensor(str(path), strict=True)
    except Exception:  # torchvision asserts on a bad header or a short file; no message of its own
        raise _unreadable(path, "is truncated or not an MNIST (IDX) file") from None
    if x.dtype != torch.uint8:
        raise _unreadable(path, f"holds {x.dtype} values, not MNIST's bytes")
    return x


def _unreadable(path, reason):
    return RuntimeError(f"MNIST is present but unreadable: {path} {reason}. Delete it to download it again, or set "
                        "the CROSSMODAL_DATA environment variable to a folder holding a good copy of MNIST/raw/.")


class MNISTCaptions(torch.utils.data.Dataset):
    """MNIST as (image, caption) pairs for a DataLoader: image (1, 28, 28) in [0, 1], caption text.

    Training here indexes the tensors directly (tasks/captions.py), which is far faster on a CPU.
    """

    def __init__(self, train=True, root=None):
        self.images, self.labels = load_mnist(train, root)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], caption_for(self.labels[i])


def batches(images, labels, batch_size, shuffle=False, generator=None):
    """Yield (images, labels) minibatches from in-memory tensors (far faster than a DataLoader here)."""
    order = torch.randperm(len(labels), generator=generator) if shuffle else torch.arange(len(labels))
    for i in range(0, len(order), batch_size):
        idx = order[i : i + batch_size]
        yield images[idx], labels[idx]
