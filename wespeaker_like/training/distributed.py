"""torchrun integration: process group, device choice and gradient averaging.

One process per GPU (nccl) or one or more CPU processes (gloo). Objectives may take several
optimiser steps per batch over different parameter sets (CLUB, identity-change, EMA teachers), so
gradients are averaged explicitly with one coalesced all-reduce per optimiser step instead of
through ``DistributedDataParallel``'s single-backward hooks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

import torch
import torch.distributed as dist


@dataclass
class DistContext:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistContext:
    """Read torchrun's environment (RANK, LOCAL_RANK, WORLD_SIZE); single process without it.

    ``device``: ``auto`` (GPU if available), ``cpu`` or ``cuda``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("trainer.device is 'cuda' but no GPU is visible")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistContext(rank, local_rank, world_size, dev)


def world() -> tuple:
    """(rank, world_size) of the process group, (0, 1) without one."""
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_across_ranks(x: torch.Tensor) -> torch.Tensor:
    """(N, ...) per rank -> (world_size * N, ...), rank-major, differentiable.

    The gradient of the gathered tensor is summed over ranks back into each rank's rows: every rank
    computes the same batch-wide loss, so after ``average_gradients`` the parameters get exactly that
    loss's gradient (a contrastive loss over the global batch, as one process would compute it).
    """
    if world()[1] == 1:
        return x
    return _GatherRows.apply(x)


class _GatherRows(torch.autograd.Function):
    """all_gather forward; all_reduce(sum) of the gathered gradient backward (gloo has no reduce-scatter)."""

    @staticmethod
    def forward(ctx, x):
        rank, world_size = world()
        parts = [torch.empty_like(x) for _ in range(world_size)]
        dist.all_gather(parts, x.contiguous())
        ctx.rows = (rank * len(x), (rank + 1) * len(x))
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rows[0]:ctx.rows[1]]


def average_gradients(parameters: Iterable[torch.nn.Parameter], world_size: int) -> None:
    """All-reduce (mean) gradients in one flat buffer, exactly as one big batch would give them.

    A parameter with a gradient on some rank gets a zero gradient on the others (their share of the
    batch did not touch it); one without a gradient on every rank keeps ``grad is None``, so its
    optimiser leaves it untouched (no momentum or weight-decay drift from zero-filled gradients).
    """
    params = [p for p in parameters if p.requires_grad]
    if world_size == 1 or not params:
        return
    has_grad = torch.tensor([p.grad is not None for p in params], dtype=torch.int32, device=params[0].device)
    dist.all_reduce(has_grad)
    params = [p for p, count in zip(params, has_grad.tolist()) if count > 0]
    if not params:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for p in params:
        n = p.grad.numel()
        p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
        offset += n


def maybe_sync_batchnorm(module: torch.nn.Module, enabled: bool, ctx: DistContext) -> torch.nn.Module:
    """With ``enabled`` and several ranks, BatchNorm layers normalise over the global batch
    (``SyncBatchNorm``, GPUs only); otherwise ``module`` unchanged. Parameters are kept, not copied."""
    if not enabled or ctx.world_size == 1:
        return module
    if ctx.device.type == "cpu":
        raise ValueError("trainer.sync_batchnorm needs GPU processes (torch's SyncBatchNorm does not run on CPU)")
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)


def broadcast_module(module: torch.nn.Module) -> None:
    """Give every rank rank 0's parameters and buffers."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def ranks_agree(module: torch.nn.Module, world_size: int) -> bool:
    """True when every rank holds the same parameters (a cheap divergence check: per-tensor sums)."""
    if world_size == 1:
        return True
    sums = torch.stack([p.detach().double().sum() for p in module.parameters()])
    gathered = [torch.empty_like(sums) for _ in range(world_size)]
    dist.all_gather(gathered, sums)
    return all(torch.allclose(g, gathered[0], rtol=1e-9, atol=1e-9) for g in gathered)


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
