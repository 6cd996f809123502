"""torchrun: two data-parallel processes train exactly as one does at the same global batch (training/distributed.py).

`python -m torch.distributed.run --standalone --nproc_per_node 2 -m crossmodal.train ...` on the CPU (gloo), against
the same command as one process: the loss of every step and the saved weights agree to rounding; only rank 0 writes
the checkpoint and its record; and a finished run resumes under torchrun. The patch stem, as BatchNorm (the
convolutional stem's) normalises each process's slice of the batch on CPUs by design. MNIST is cut to a few thousand
digits in a CROSSMODAL_DATA folder of the test's own, so that loading and evaluating take no time.
"""

import json
import os
import struct
import subprocess
import sys

import torch
from safetensors.torch import load_file

from crossmodal.data.numbers import as_bytes

FLAGS = ["--threads", "1", "--vision.stem", "patch", "--vision.dim", "32", "--vision.depth", "1",
         "--vision.num-heads", "2", "--vision.patch-size", "7", "--decoder.dim", "32", "--decoder.depth", "1",
         "--decoder.num-heads", "2", "--steps", "6", "--batch-size", "32", "--warmup-steps", "2", "--lr", "1e-3",
         "--save-every", "3"]
# the captioner's recipe keeps a moving average of the weights: model.safetensors holds it, stepped.safetensors the
# weights the optimiser steps, so a resumed run goes on step for step
CHECKPOINT = ["config.json", "model.safetensors", "optimizer.safetensors", "stepped.safetensors", "tokenizer.json",
              "tokenizer_config.json", "trainer_state.json", "training.json"]


def write_idx(path, data):
    """An IDX file as MNIST's are: zero, zero, type 0x08 (uint8), dimensions, big-endian sizes, then the bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes([0, 0, 0x08, data.dim()]) + struct.pack(f">{data.dim()}I", *data.shape)
                     + data.numpy().tobytes())


def small_mnist(root, mnist_train, mnist_test):
    """root/MNIST/raw/ holding MNIST's first 2,048 training and 256 test digits, byte for byte."""
    for split, (images, labels), count in (("train", mnist_train, 2048), ("t10k", mnist_test, 256)):
        write_idx(root / "MNIST" / "raw" / f"{split}-images-idx3-ubyte", as_bytes(images[:count, 0]))
        write_idx(root / "MNIST" / "raw" / f"{split}-labels-idx1-ubyte", labels[:count].to(torch.uint8))


def start(processes, out, *flags, cwd, env):
    """`python -m crossmodal.train` (processes=None) or torchrun with that many processes, started, not awaited."""
    launcher = [] if processes is None else ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                                             str(processes)]
    command = [sys.executable, *launcher, "-m", "crossmodal.train", *FLAGS, "--out", str(out), *flags]
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process):
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    return out


def test_two_processes_train_as_one_and_only_rank_0_writes(tmp_path, mnist_train, mnist_test):
    """(A key's bias gets no gradient but rounding noise, which Adam's first steps turn into steps of ±lr: a peak lr
    of 1e-3 keeps that under the 1e-5 the weights are compared to.)"""
    small_mnist(tmp_path / "data", mnist_train, mnist_test)
    env = {**os.environ, "CROSSMODAL_DATA": str(tmp_path / "data"), "OMP_NUM_THREADS": "1"}
    two = start(2, tmp_path / "ddp", cwd=tmp_path, env=env)
    one = start(None, tmp_path / "one", cwd=tmp_path, env=env)
    printed, _ = finish(two), finish(one)

    ddp, single = (json.loads((tmp_path / run / "trainer_state.json").read_text()) for run in ("ddp", "one"))
    assert len(ddp["history"]["loss"]) == len(single["history"]["loss"]) == 6
    assert ddp["history"]["loss"][-1] < ddp["history"]["loss"][0] - 0.1  # it trained: the weights moved
    for step, (a, b) in enumerate(zip(ddp["history"]["loss"], single["history"]["loss"]), 1):
        assert abs(a - b) <= 1e-5 * abs(b), (step, a, b)
    ours, theirs = (load_file(tmp_path / run / "model.safetensors") for run in ("ddp", "one"))
    assert ours.keys() == theirs.keys()
    for name, tensor in theirs.items():
        torch.testing.assert_close(ours[name], tensor, rtol=1e-5, atol=1e-5, msg=name)

    # one checkpoint and one record, written by rank 0 alone: nothing else beside them, no lock or half-saved folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "ddp", "one"]
    for run in ("ddp", "one"):
        assert sorted(p.name for p in (tmp_path / run).iterdir()) == CHECKPOINT
    record = json.loads((tmp_path / "ddp" / "training.json").read_text())
    assert record["processes"] == 2 and record["steps"] == 6
    assert json.loads((tmp_path / "one" / "training.json").read_text())["processes"] == 1
    assert printed.count("trained in") == 1 and printed.count("checkpoint in") == 1  # only rank 0 speaks

    weights = (tmp_path / "ddp" / "model.safetensors").read_bytes()
    resumed = finish(start(2, tmp_path / "ddp", "--resume", cwd=tmp_path, env=env))  # a finished run: nothing to do
    assert resumed.count("trained in") == 1
    assert (tmp_path / "ddp" / "model.safetensors").read_bytes() == weights
    assert json.loads((tmp_path / "ddp" / "trainer_state.json").read_text())["history"] == ddp["history"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "ddp", "one"]
