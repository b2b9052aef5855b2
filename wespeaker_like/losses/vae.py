"""The VAE objective's terms (paper 002 eq. 5): analytic KL to N(0, I) and the squared-error
reconstruction (a unit-variance Gaussian likelihood up to a constant), per sample."""

from __future__ import annotations

from typing import Dict, Optional

import torch


def gaussian_kl_to_standard(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_var)) || N(0, I)) per row: (B, Z), (B, Z) -> (B,)."""
    return 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum(dim=1)


def vae_loss(reconstruction: torch.Tensor, target: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor,
             kl_tolerance: Optional[float] = None) -> Dict[str, torch.Tensor]:
    """``{"loss", "kl", "reconstruction"}``, batch means of the per-sample terms.

    ``reconstruction`` / ``target``: (B, ...) maps, the error summed over each map; ``mean`` /
    ``log_var``: (B, Z). ``kl_tolerance`` (hardmaru's world models): each sample's KL is floored at
    kl_tolerance·Z in the loss (the logged ``kl`` is the unfloored value)."""
    squared_error = (reconstruction - target).pow(2).flatten(1).sum(dim=1)
    kl = gaussian_kl_to_standard(mean, log_var)
    kl_in_loss = kl.clamp(min=kl_tolerance * mean.shape[1]) if kl_tolerance else kl
    return {"loss": (squared_error + kl_in_loss).mean(), "kl": kl.mean(), "reconstruction": squared_error.mean()}
