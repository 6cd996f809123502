"""Which device to compute on: `pick_device("auto")` takes a GPU when there is one.

The notebooks, `train()` and the command lines all choose through this one function, so "auto"
means the same everywhere: CUDA, else Apple's MPS, else the CPU.
"""

import torch

CHOICES = ("auto", "cpu", "cuda", "mps")


def pick_device(name="auto"):
    """A torch.device for "auto", "cpu", "cuda" (or "cuda:1"), or "mps"; a clear error for one this machine lacks."""
    if isinstance(name, torch.device):
        name = str(name)
    kind = name.split(":")[0] if isinstance(name, str) else None
    if kind not in CHOICES:
        raise ValueError(f"device must be one of {', '.join(CHOICES)} (or cuda:N), got {name!r}")
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but PyTorch sees no CUDA GPU here "
                         f"(torch {torch.__version__}); use --device cpu or auto")
    if kind == "mps" and not _mps_available():
        raise ValueError("device 'mps' asked for, but this PyTorch has no Apple GPU (MPS) here; use cpu or auto")
    return torch.device(name)


def describe(device):
    """'cuda (NVIDIA H100 80GB HBM3)', 'cpu (2 threads, AVX2)': what a notebook or a record prints."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        threads = torch.get_num_threads()
        return f"cpu ({threads} thread{'s' if threads != 1 else ''}, {torch.backends.cpu.get_cpu_capability()})"
    return device.type


def synchronize(device):
    """Wait for the device's queued work, so that a wall clock read next measures it (a no-op on the CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _mps_available():
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
