"""Self-distillation losses: SDPN (prototypes, Sinkhorn-Knopp, me-max), KoLeo and DINO.

Shapes: B samples on this rank, K prototypes (or output units), V local views, D embedding size.
Several views of a batch are stacked **view-major**: row ``v*B + i`` is view ``v`` of sample ``i``.

The losses compute in at least float32 with autocast off (under AMP the inputs may be float16), and
the Sinkhorn-Knopp scaling in float64, where a prototype that no sample favours keeps a tiny
positive mass instead of underflowing to 0/0. Cross-entropies use ``log_softmax``, never
``log(p)`` of an underflowed probability.

With ``torch.distributed`` initialised, the Sinkhorn marginals, the me-max mean prediction and the
DINO centre are all-reduced, so every rank sees the statistics of the global batch. Gradients
through the me-max all-reduce are passed back unchanged: once the trainer averages parameter
gradients over the ranks (``training.distributed.average_gradients``), they equal those of one
process holding the whole batch.
"""

from __future__ import annotations

import math
from typing import Dict, Tuple

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _sum_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """In-place sum across ranks (identity in one process); returns ``tensor``."""
    if _world_size() > 1:
        dist.all_reduce(tensor)
    return tensor


class _MeanOverRanks(torch.autograd.Function):
    """Forward: mean across ranks. Backward: the incoming gradient unchanged (see module docstring)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        return _sum_over_ranks(tensor.clone()) / _world_size()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad


def _full_precision(tensor: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 -> float32; float32 and float64 unchanged."""
    return tensor if tensor.dtype in (torch.float32, torch.float64) else tensor.float()


def prototype_scores(embeddings: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of each embedding to each prototype: (N, D), (K, D) -> (N, K).

    Both sides are L2-normalised here (eps 1e-12), so callers pass the raw prototype parameter.
    These scores, divided by a temperature inside the losses, are the SDPN logits.
    """
    with torch.autocast(embeddings.device.type, enabled=False):
        return F.normalize(_full_precision(embeddings), dim=1) @ F.normalize(_full_precision(prototypes), dim=1).T


@torch.no_grad()
def sinkhorn_knopp(teacher_logits: torch.Tensor, temperature: float, iterations: int = 3) -> torch.Tensor:
    """Balanced soft assignments of B samples to K prototypes: (B, K) scores -> (B, K) targets.

    ``p = softmax(teacher_logits / temperature)`` per row, then on ``P = p^T`` (K, B): scale to total
    mass 1; ``iterations`` times, scale every prototype row to mass 1/K, then every sample column
    to mass 1/B_global; finally multiply by B_global. Each output row sums to 1; the per-prototype
    totals approach B_global/K only as the iterations grow (3 in SDPN: deliberately not converged).
    B_global is the batch summed over ranks, and the total and prototype masses are all-reduced, so
    each rank gets its rows of the targets of the concatenated batch. ``iterations=0`` returns ``p``.
    No gradient.
    """
    scores = teacher_logits.detach().double()
    assignment = torch.softmax(scores / temperature, dim=1).T
    num_prototypes = assignment.shape[0]
    global_batch = assignment.shape[1] * _world_size()
    assignment = assignment / _sum_over_ranks(assignment.sum())
    for _ in range(iterations):
        assignment = assignment / _sum_over_ranks(assignment.sum(dim=1, keepdim=True)) / num_prototypes
        assignment = assignment / assignment.sum(dim=0, keepdim=True) / global_batch
    return (assignment * global_batch).T.to(_full_precision(teacher_logits).dtype)


class SdpnLoss(nn.Module):
    """SDPN distillation: teacher targets by sharpening + Sinkhorn-Knopp, student cross-entropy over
    the local views, plus the me-max regulariser of the reference code (METHODS.md §4.3).

    Teacher probabilities ``softmax(s / teacher_temperature)`` sharpened by ``p^(1/T)`` renormalised,
    i.e. ``softmax(s / (teacher_temperature * sharpen_temperature))``: reference 0.1 x 0.25, paper
    0.04 x 1. ``sinkhorn_iterations=0`` skips the balancing. ``memax_weight`` 1 follows the official
    code, 0 the paper.
    """

    def __init__(self, student_temperature: float = 0.1, teacher_temperature: float = 0.1,
                 sharpen_temperature: float = 0.25, sinkhorn_iterations: int = 3, memax_weight: float = 1.0,
                 num_local_views: int = 4):
        super().__init__()
        self.student_temperature = float(student_temperature)
        self.teacher_temperature = float(teacher_temperature)
        self.sharpen_temperature = float(sharpen_temperature)
        self.sinkhorn_iterations = int(sinkhorn_iterations)
        self.memax_weight = float(memax_weight)
        self.num_local_views = int(num_local_views)

    def targets(self, teacher_logits_global: torch.Tensor) -> torch.Tensor:
        """Teacher targets (B, K) -> (B, K), no gradient."""
        return sinkhorn_knopp(teacher_logits_global, self.teacher_temperature * self.sharpen_temperature,
                              self.sinkhorn_iterations)

    def forward(self, student_logits_local: torch.Tensor,
                teacher_logits_global: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, float]]:
        """``student_logits_local`` (V*B, K) view-major and ``teacher_logits_global`` (B, K) are
        scores before the temperatures (``prototype_scores``, or the L2-normalised head outputs
        without prototypes). Returns the scalar loss and ``{ce, memax, target_prototypes_used}``."""
        views, batch = self.num_local_views, teacher_logits_global.shape[0]
        if student_logits_local.shape != (views * batch, teacher_logits_global.shape[1]):
            raise ValueError(f"student logits {tuple(student_logits_local.shape)} must be ({views} local views x "
                             f"{batch} samples, {teacher_logits_global.shape[1]}) for teacher logits "
                             f"{tuple(teacher_logits_global.shape)}")
        with torch.autocast(student_logits_local.device.type, enabled=False):
            targets = self.targets(teacher_logits_global)
            log_probs = torch.log_softmax(_full_precision(student_logits_local) / self.student_temperature, dim=1)
            ce = -(targets.repeat(views, 1) * log_probs).sum(dim=1).mean()
            with torch.set_grad_enabled(torch.is_grad_enabled() and self.memax_weight != 0.0):
                mean_probs = _MeanOverRanks.apply(log_probs.exp().mean(dim=0))
                # a prototype no row predicts has mean 0 in float32: 0 * log(tiny), not 0 * -inf = nan
                log_mean = torch.log(mean_probs.clamp_min(torch.finfo(mean_probs.dtype).tiny))
                memax = (mean_probs * log_mean).sum() + math.log(mean_probs.numel())
        loss = ce + self.memax_weight * memax if self.memax_weight != 0.0 else ce
        stats = {"ce": ce.item(), "memax": memax.item(), "target_prototypes_used": prototypes_used(targets)}
        return loss, stats


class KoLeoLoss(nn.Module):
    """Kozachenko-Leonenko diversity term: ``-mean_i log(||u_i - u_nn(i) + eps|| + eps)`` on the
    L2-normalised rows ``u``, ``nn(i)`` the row of largest inner product (nearest neighbour) other
    than ``i``. The eps inside the norm is added to every component (PyTorch ``pairwise_distance``
    convention). Gradient flows into both rows of each pair; the neighbour choice is constant.
    """

    def __init__(self, eps: float = 1e-8):
        super().__init__()
        self.eps = float(eps)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(N, D) -> scalar, N >= 2."""
        if embeddings.dim() != 2 or embeddings.shape[0] < 2:
            raise ValueError(f"KoLeo needs (N >= 2, D) embeddings, got {tuple(embeddings.shape)}")
        with torch.autocast(embeddings.device.type, enabled=False):
            unit = F.normalize(_full_precision(embeddings), dim=1, eps=self.eps)
            with torch.no_grad():
                similarity = unit @ unit.T
                similarity.fill_diagonal_(-math.inf)
                neighbour = similarity.argmax(dim=1)
            distance = (unit - unit[neighbour] + self.eps).norm(dim=1)
            return -torch.log(distance + self.eps).mean()


class DinoLoss(nn.Module):
    """DINO cross-entropy with a centred, sharpened teacher (the DINO* baseline, METHODS.md §4.7).

    Teacher targets ``softmax((t - centre) / teacher_temperature(epoch))`` for each of the
    ``num_global_crops`` teacher views; student ``log_softmax(s / student_temperature)`` for each of
    ``num_crops`` views (the global crops first); the loss averages the cross-entropy over every
    (teacher view a, student view v != a) pair. The teacher temperature rises linearly from
    ``warmup_teacher_temperature`` (epoch 0) to ``teacher_temperature`` (epoch
    ``warmup_epochs - 1``) and stays there (``numpy.linspace`` steps, one per whole epoch). After each call the ``center`` buffer (1, K) moves to
    ``momentum * centre + (1 - momentum) * mean of the raw teacher rows`` (mean over all ranks).
    """

    def __init__(self, out_dim: int, num_crops: int = 6, num_global_crops: int = 2,
                 warmup_teacher_temperature: float = 0.04, teacher_temperature: float = 0.04,
                 warmup_epochs: int = 10, student_temperature: float = 0.1, center_momentum: float = 0.9):
        super().__init__()
        if not 1 <= num_global_crops <= num_crops:
            raise ValueError(f"need 1 <= num_global_crops ({num_global_crops}) <= num_crops ({num_crops})")
        self.num_crops = int(num_crops)
        self.num_global_crops = int(num_global_crops)
        self.warmup_teacher_temperature = float(warmup_teacher_temperature)
        self.final_teacher_temperature = float(teacher_temperature)
        self.warmup_epochs = int(warmup_epochs)
        self.student_temperature = float(student_temperature)
        self.center_momentum = float(center_momentum)
        self.register_buffer("center", torch.zeros(1, out_dim))

    def teacher_temperature(self, epoch: float) -> float:
        """Temperature at (fractional) ``epoch``: a step per whole epoch, as the reference schedule."""
        index = int(math.floor(epoch))
        if index >= self.warmup_epochs:
            return self.final_teacher_temperature
        if self.warmup_epochs == 1:
            return self.warmup_teacher_temperature
        rise = self.final_teacher_temperature - self.warmup_teacher_temperature
        return self.warmup_teacher_temperature + rise * index / (self.warmup_epochs - 1)

    def forward(self, student_output: torch.Tensor, teacher_output: torch.Tensor,
                epoch: float) -> Tuple[torch.Tensor, Dict[str, float]]:
        """``student_output`` (num_crops*B, K) and ``teacher_output`` (num_global_crops*B, K), both
        view-major. Returns the scalar loss and ``{ce, teacher_temperature}``; updates ``center``."""
        batch = teacher_output.shape[0] // self.num_global_crops
        if teacher_output.shape[0] != self.num_global_crops * batch or \
                student_output.shape != (self.num_crops * batch, teacher_output.shape[1]):
            raise ValueError(f"student output {tuple(student_output.shape)} and teacher output "
                             f"{tuple(teacher_output.shape)} must hold {self.num_crops} and {self.num_global_crops} "
                             f"views of the same batch, view-major")
        temperature = self.teacher_temperature(epoch)
        with torch.autocast(student_output.device.type, enabled=False):
            teacher = _full_precision(teacher_output.detach())
            targets = torch.softmax((teacher - self.center.to(teacher.dtype)) / temperature, dim=1)
            log_probs = torch.log_softmax(_full_precision(student_output) / self.student_temperature, dim=1)
            targets_by_view = targets.chunk(self.num_global_crops)
            log_probs_by_view = log_probs.chunk(self.num_crops)
            terms = [-(target * log_probs_by_view[v]).sum(dim=1).mean()
                     for a, target in enumerate(targets_by_view) for v in range(self.num_crops) if v != a]
            loss = torch.stack(terms).mean()
            self._update_center(teacher)
        return loss, {"ce": loss.item(), "teacher_temperature": temperature}

    @torch.no_grad()
    def _update_center(self, teacher: torch.Tensor) -> None:
        batch_center = _sum_over_ranks(teacher.sum(dim=0, keepdim=True)) / (teacher.shape[0] * _world_size())
        momentum = self.center_momentum
        self.center.copy_(self.center.to(teacher.dtype) * momentum + batch_center * (1 - momentum))


def embedding_std(embeddings: torch.Tensor) -> float:
    """Collapse check (this rank's batch): std across the batch of the L2-normalised embeddings, averaged over the
    dimensions: (N, D) -> float. 0 when every row is the same; about 1/sqrt(D) for rows spread
    uniformly over the sphere. Population std (divides by N)."""
    unit = F.normalize(_full_precision(embeddings.detach()), dim=1)
    return unit.std(dim=0, correction=0).mean().item()


def mean_assignment_entropy(probabilities: torch.Tensor) -> float:
    """Entropy (nats) of this rank's batch-mean prototype assignment: (N, K) rows summing to 1 -> float.
    log K when the prototypes are used evenly, 0 when every row picks the same one."""
    mean = _full_precision(probabilities.detach()).mean(dim=0)
    return -(mean * torch.log(mean.clamp_min(torch.finfo(mean.dtype).tiny))).sum().item()


def prototypes_used(probabilities: torch.Tensor) -> float:
    """Fraction of the K prototypes that are the most probable one for at least one row of this rank: (N, K) -> float."""
    return probabilities.detach().argmax(dim=1).unique().numel() / probabilities.shape[1]
