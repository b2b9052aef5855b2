"""Contrastive losses on L2-normalised embeddings: SupCon / SupMarginCon (paper 004), MoCo's
InfoNCE against a queue of keys, the angular prototypical loss (voxceleb_trainer's AP) and the
mixed-target cross-entropy of i-mix / l-mix (paper 002).

Views are stacked view-major: with V views of B samples, row ``v*B + i`` is view v of sample i,
and ``labels`` has one entry per row (the speaker for SupCon, the sample index for SimCLR).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from wespeaker_like.losses.margin import FALLBACKS, angular_margin

MARGIN_TYPES = ("arc", "cos")
DENOMINATORS = ("all_but_self", "this_pos+negatives", "negatives_only")
# the author code of SupMarginCon keeps similarities strictly inside (-1, 1)
COSINE_LIMIT = 1.0 - 1e-7


def sup_margin_con_loss(z: torch.Tensor, labels: torch.Tensor, temperature: float = 0.07, margin: float = 0.0,
                        margin_type: str = "arc", denominator: str = "all_but_self",
                        fallback: str = "3dspeaker") -> torch.Tensor:
    """Supervised contrastive loss with a margin on the positive pairs; scalar.

    ``z``: (N, D) rows, L2-normalised by the caller; ``labels``: (N,) ints, rows with equal labels
    are positives of each other (never of themselves). For anchor i and positive p the logit is
    s_ip = ψ(cos θ_ip)/τ, with ψ = cos(θ + m) (``arc``, paper eq. 3; ``fallback`` past θ + m > π) or
    cos θ − m (``cos``, the author code); other pairs keep cos θ_ia/τ. Cosines are clamped to
    ±(1 − 1e-7) (zero gradient there). Per anchor, −mean_p log(exp s_ip / Σ_{a ∈ A} exp s_ia) with

    - ``all_but_self``: A = every row but i, positives with their margin (SupCon, author code);
    - ``this_pos+negatives``: A = {p} ∪ negatives (the paper's form);
    - ``negatives_only``: A = negatives (eq. 3 read literally).

    The loss is the mean over anchors; an anchor without positives counts 0 (SupCon's guard).
    m = 0 with ``all_but_self`` is SupCon.
    """
    if margin_type not in MARGIN_TYPES:
        raise ValueError(f"margin_type must be one of {', '.join(MARGIN_TYPES)}, got '{margin_type}'")
    if denominator not in DENOMINATORS:
        raise ValueError(f"denominator must be one of {', '.join(DENOMINATORS)}, got '{denominator}'")
    n = z.shape[0]
    cosine = z @ z.T
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    same = labels[:, None] == labels[None, :]
    positive = same & ~self_mask
    if margin_type == "cos":
        similarity = (cosine - margin * same.to(cosine.dtype)).clamp(-COSINE_LIMIT, COSINE_LIMIT)
    else:
        cosine = cosine.clamp(-COSINE_LIMIT, COSINE_LIMIT)
        similarity = torch.where(same, angular_margin(cosine, margin, fallback), cosine) if margin else cosine
    logits = similarity / temperature
    logits = logits - logits.detach().max(dim=1, keepdim=True).values  # a no-op that keeps exp() finite
    if denominator == "all_but_self":
        log_denominator = torch.logsumexp(logits.masked_fill(self_mask, float("-inf")), dim=1, keepdim=True)
    else:
        negatives = torch.logsumexp(logits.masked_fill(same, float("-inf")), dim=1, keepdim=True)
        log_denominator = torch.logaddexp(logits, negatives) if denominator == "this_pos+negatives" else negatives
    log_prob = (logits - log_denominator).masked_fill(~positive, 0.0)
    num_positives = positive.sum(dim=1).clamp(min=1)
    return -(log_prob.sum(dim=1) / num_positives).mean()


def queue_infonce(queries: torch.Tensor, keys: torch.Tensor, queue: torch.Tensor, temperature: float) -> torch.Tensor:
    """MoCo's InfoNCE: mean over i of −log exp(q_i·k_i/τ) / (exp(q_i·k_i/τ) + Σ_j exp(q_i·n_j/τ)); scalar.

    ``queries``, ``keys``: (B, D), L2-normalised (keys without gradient); ``queue``: (D, K) negatives.
    """
    positive = (queries * keys).sum(dim=1, keepdim=True)          # (B, 1)
    logits = torch.cat([positive, queries @ queue], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(queries), dtype=torch.long, device=queries.device))


class AngularPrototypical(nn.Module):
    """Angular prototypical loss with learnable scale w and bias b (voxceleb_trainer ``angleproto``).

    ``x``: (N, M, D), N speakers with M >= 2 utterances each. Utterance 0 of each speaker is the
    query, the mean of the others its prototype; logits w·cos(query_i, prototype_j) + b,
    cross-entropy against the diagonal. As in the reference, w is not clamped.
    """

    def __init__(self, init_w: float = 10.0, init_b: float = -5.0):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(float(init_w)))
        self.b = nn.Parameter(torch.tensor(float(init_b)))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, M, D) -> (N, N) logits, row i = query i against every prototype."""
        if x.shape[1] < 2:
            raise ValueError(f"angular prototypical needs >= 2 utterances per speaker, got {x.shape[1]}")
        query, prototype = x[:, 0], x[:, 1:].mean(dim=1)
        cosine = F.normalize(query, eps=1e-8) @ F.normalize(prototype, eps=1e-8).T
        return self.w.to(x.dtype) * cosine + self.b.to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.logits(x)
        return F.cross_entropy(logits, torch.arange(len(logits), device=x.device))


def mixed_target_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, partners: torch.Tensor,
                               lam: torch.Tensor) -> torch.Tensor:
    """i-mix's loss on mixed rows (paper 002 eq. 4/7); scalar.

    ``logits``: (N, K), row i scores a sample mixed as λ_i·(sample ``targets[i]``) + (1 − λ_i)·(sample
    ``partners[i]``) against K candidates; the loss is mean_i [λ_i·CE(row_i, targets_i) +
    (1 − λ_i)·CE(row_i, partners_i)]. With λ = 1 it is ``cross_entropy(logits, targets)`` exactly.
    """
    log_prob = F.log_softmax(logits, dim=1)
    own = log_prob.gather(1, targets[:, None]).squeeze(1)
    other = log_prob.gather(1, partners[:, None]).squeeze(1)
    lam = lam.to(log_prob.dtype)
    return -(lam * own + (1 - lam) * other).mean()
