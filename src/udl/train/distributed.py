"""Data parallelism with PyTorch DDP, launched by ``torchrun``.

``torchrun --nproc_per_node=P script.py`` starts P copies of ``script.py`` and tells
each one who it is through environment variables: ``RANK`` (0..P-1 over all
machines), ``LOCAL_RANK`` (the GPU to use on this machine) and ``WORLD_SIZE`` (P).
Every process builds the same model, ``fit`` wraps it in
``DistributedDataParallel``, and each process trains on its own slice of every
global batch; DDP averages the gradients across processes during ``backward``, so
all copies take the same step, the one a single process would take on the whole
batch (up to float rounding).

The helpers read the environment, so they answer correctly before the process
group exists and after it is destroyed. A script launched by torchrun calls
``cleanup()`` when it is done.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world_size() -> int:
    """Number of processes training together (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's index among all processes, 0..world_size()-1."""
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    """This process's index on its machine: the GPU it drives."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """True on the process that writes files and shows progress (rank 0)."""
    return rank() == 0


def init(device: torch.device) -> None:
    """Join the process group if torchrun launched several processes.

    Uses NCCL for CUDA tensors and gloo on CPU; the rendezvous address comes from
    the environment torchrun sets (``MASTER_ADDR``, ``MASTER_PORT``). Does nothing in
    a single process or when the group already exists.
    """
    if world_size() == 1 or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def cleanup() -> None:
    """Leave the process group (call once at the end of a torchrun script)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def shard(t: torch.Tensor) -> torch.Tensor:
    """This process's contiguous slice of a global batch along dim 0.

    With P processes a global batch of B rows is cut into P slices of B/P rows;
    process r takes rows [r*B/P, (r+1)*B/P). The slices are equal so that the mean
    of the per-process mean gradients is the mean gradient over the whole batch.
    """
    if len(t) % world_size():
        raise ValueError(f"A global batch of {len(t)} rows cannot be split evenly "
                         f"across {world_size()} processes.")
    return t.tensor_split(world_size())[rank()]


def average(t: torch.Tensor) -> torch.Tensor:
    """Mean of ``t`` over all processes (``t`` itself in a single process)."""
    if world_size() == 1:
        return t
    t = t.clone()
    dist.all_reduce(t)  # sum; gloo has no AVG
    return t / world_size()


def gather(obj) -> list:
    """``[obj of rank 0, obj of rank 1, ...]``, the same list on every process."""
    if world_size() == 1:
        return [obj]
    objs = [None] * world_size()
    dist.all_gather_object(objs, obj)
    return objs
