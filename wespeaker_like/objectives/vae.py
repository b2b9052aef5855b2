"""Pre-training of paper 002's convolutional VAE (the l-mix decoder), before the speaker network.

The config's ``model`` is the VAE (``{name: conv_vae, ...}``, ``models/vae.py``); each sample gives
one ``num_frames`` crop (optionally augmented with a wave profile ``augment``). Loss per batch
(``losses.vae.vae_loss``): summed squared reconstruction error of a reparameterised sample
z = μ + σ·ε plus the analytic KL to N(0, I), optionally floored at ``kl_tolerance``·Z per sample.
No labels. ``embedding_model()`` is the VAE, so the experiment's ``final_model.pt`` holds its
weights for ``ssl_ap``'s ``init_from`` (key_map ``{"vae.": ""}``).
"""

from __future__ import annotations

from typing import Mapping, Optional

import torch

from wespeaker_like.dataset.views import View
from wespeaker_like.losses.mutual_information import injected_noise
from wespeaker_like.losses.vae import vae_loss
from wespeaker_like.models import build_model
from wespeaker_like.objectives.base import Objective
from wespeaker_like.registry import OBJECTIVES


@OBJECTIVES.register("vae")
class VaePretraining(Objective):
    label_names = ()

    def __init__(self, model: Mapping, num_classes: Mapping[str, int], num_frames: int = 180,
                 augment: Optional[str] = None, kl_tolerance: Optional[float] = None):
        super().__init__()
        self.views = [View(num_frames, augment=augment)]
        self.vae = build_model(model)
        if not hasattr(self.vae, "decode"):
            raise ValueError(f"objective vae needs a VAE model (conv_vae), got '{model.get('name')}'")
        self.kl_tolerance = kl_tolerance
        # ε of a step depends on (this draw, the step's progress) only: identical after a resume
        self.noise_seed = int(torch.randint(2**31 - 1, (), device="cpu"))
        self.progress = 0.0

    def on_progress(self, progress: float) -> None:
        self.progress = progress

    def training_step(self, batch, updater):
        feats = batch["views"][0]
        mean, log_var = self.vae.encode(feats)
        noise = injected_noise(self.noise_seed, self.progress, 1.0, 1, len(mean), mean.shape[1], mean)
        terms = vae_loss(self.vae.decode(mean + (0.5 * log_var).exp() * noise), feats, mean, log_var,
                         self.kl_tolerance)
        updater.step("main", terms["loss"])
        return {name: value.item() for name, value in terms.items()}

    def embedding_model(self):
        return self.vae
