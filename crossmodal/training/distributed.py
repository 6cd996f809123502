"""Data-parallel training on several processes, with PyTorch's own engine (nanoGPT's way: a few lines at the
edge of the loop, not a framework).

    torchrun --standalone --nproc_per_node 2 -m crossmodal.train --task captions --out runs/ddp
    torchrun --nnodes 2 --node_rank 0 --master_addr HOST --master_port 29500 --nproc_per_node 8 -m crossmodal.train ...

torchrun starts one process per GPU (or per share of a CPU) and tells each its RANK, LOCAL_RANK and WORLD_SIZE.
`Processes.start()` joins them into one group (NCCL on GPUs, gloo on CPUs); the model is wrapped in
DistributedDataParallel, which averages the gradients of every rank after each backward pass.

How a step is shared: every rank makes the same global batch (the streams are seeded per step) and keeps its
own slice of the rows (`shard`). Each rank's loss is a sum over the positions it counts, divided by the count
over *all* ranks and multiplied by the number of ranks, so DDP's average of the gradients is exactly the
gradient of the global batch's mean loss, whatever the split: N processes train as one would at the same
global batch. Only rank 0 evaluates and writes checkpoints and records; the others wait for it.

BatchNorm (the convolutional stem's) is made SyncBatchNorm on GPUs, so its statistics are the global batch's;
gloo cannot do that on CPUs, where each process normalises its own slice (a small difference, said once).
"""

import os
import warnings
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn


class Processes:
    """This process's place among the processes torchrun started: rank, world size, and the device of its rank."""

    def __init__(self, rank=0, world=1, local_rank=0):
        self.rank, self.world, self.local_rank = rank, world, local_rank

    @property
    def main(self):
        """Rank 0: the one that evaluates, prints, and writes."""
        return self.rank == 0

    @classmethod
    def start(cls, device):
        """Join the group torchrun set up (one process, no group, when not started by torchrun).

        device: the device the command asked for; under torchrun each GPU process takes the GPU of its local rank.
        Returns (Processes, the device this process computes on).
        """
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls(), device
        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=timedelta(minutes=30))  # env:// from torchrun's variables
        return cls(rank, world, local_rank), device

    def stop(self):
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()

    def wrap(self, model):
        """The model DDP-wrapped (gradients averaged over the ranks), or the model itself on one process."""
        if self.world == 1:
            return model
        device = next(model.parameters()).device
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
            if device.type == "cuda":
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            elif self.main:
                warnings.warn("BatchNorm on CPU processes normalises each process's slice of the batch (gloo has no "
                              "SyncBatchNorm): results differ a little from one process", stacklevel=2)
        ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def shard(self, batch):
        """This rank's rows of a global batch (a NamedTuple of tensors, or None where a field is unused)."""
        if self.world == 1:
            return batch
        return type(batch)(*(f.tensor_split(self.world)[self.rank] if isinstance(f, torch.Tensor) else f
                             for f in batch))

    def sum(self, tensor):
        """`tensor` summed over every rank (a copy; the tensor itself on one process)."""
        if self.world == 1:
            return tensor
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor

    def barrier(self):
        if self.world > 1:
            dist.barrier()


def unwrap(model):
    """The model inside a DDP wrapper (its attributes, its state_dict without 'module.')."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
