"""One command line for one or many GPUs: ``torchrun --nproc_per_node N -m srprep train ...``.

torchrun sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; with more than one process the trainer joins the
process group (NCCL on CUDA, gloo on CPU), puts each process on GPU ``LOCAL_RANK``, wraps the network in
DistributedDataParallel and lets each process sample its own slice of every step's indices
(:class:`~srprep.train.data.BatchIndexSampler`). Without torchrun nothing here does anything.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from srprep.errors import SrprepError

__all__ = ["DistInfo", "resolve_device", "init_distributed", "barrier", "all_reduce_mean", "shutdown"]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> cuda if available else cpu; anything else as torch spells it (``cpu``, ``cuda:1``)."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as exc:
        raise SrprepError(f"train.device: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SrprepError("train.device is cuda, but CUDA is not available in this PyTorch build / machine")
    return device


def init_distributed(device_spec: str) -> tuple[DistInfo, torch.device]:
    """Join the process group when launched by torchrun with several processes; pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_spec)
    if world <= 1:
        return DistInfo(), device
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank, world, local_rank), device


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_reduce_mean(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Mean of ``t`` over processes (asynchronous on the device: no host sync)."""
    if not info.enabled:
        return t
    t = t.clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t / info.world


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
