"""EMNIST (emnist.py): read from CROSSMODAL_DATA, returned upright, and a one-sentence error when missing offline."""

import struct

import pytest
import torch

from crossmodal import load_emnist
from crossmodal.data.emnist import emnist_files


def write_idx(path, data):
    """An IDX file as EMNIST's (and MNIST's) are: zero, zero, type 0x08 (uint8), dimensions, big-endian sizes, bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes([0, 0, 0x08, data.dim()]) + struct.pack(f">{data.dim()}I", *data.shape)
                     + data.numpy().tobytes())


def an_l():
    """An upright "L": a bar down the left side, a foot along the bottom; not symmetric under transposition."""
    image = torch.zeros(28, 28, dtype=torch.uint8)
    image[4:24, 6:9] = 255  # the stem, rows 4-23
    image[21:24, 6:20] = 255  # the foot, columns 6-19
    return image


def test_emnist_images_come_back_upright(tmp_path):
    upright = torch.stack([an_l(), an_l().flip(1)])
    images_file, labels_file = emnist_files("letters", train=False, root=tmp_path)
    write_idx(images_file, upright.transpose(1, 2).contiguous())  # EMNIST stores each image transposed
    write_idx(labels_file, torch.tensor([12, 10], dtype=torch.uint8))
    images, labels = load_emnist("letters", train=False, root=tmp_path)
    assert images.shape == (2, 1, 28, 28) and labels.tolist() == [12, 10]
    assert torch.equal(images[:, 0], upright.float() / 255)


def test_missing_emnist_offline_names_the_variable(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading gzip.zip: no network")

    monkeypatch.setattr("torchvision.datasets.EMNIST", offline)
    monkeypatch.setenv("CROSSMODAL_DATA", str(tmp_path))
    with pytest.raises(RuntimeError, match="set the CROSSMODAL_DATA environment variable") as err:
        load_emnist("digits")
    assert str(err.value).count(". ") == 0 and "no network" in str(err.value)  # one sentence, with the reason


def test_unknown_split_and_broken_file_are_named(tmp_path):
    with pytest.raises(ValueError, match="no split 'words'"):
        load_emnist("words", root=tmp_path)
    images_file, labels_file = emnist_files("digits", root=tmp_path)
    images_file.parent.mkdir(parents=True)
    images_file.write_bytes(b"\x00\x00\x08\x03 truncated")
    write_idx(labels_file, torch.zeros(1, dtype=torch.uint8))
    with pytest.raises(RuntimeError, match="unreadable.*truncated"):
        load_emnist("digits", root=tmp_path)
