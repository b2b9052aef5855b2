"""Paper 002: self-supervised angular prototypical learning, plain (AP), with input mixup (i-AP) or
with latent mixup through a frozen VAE (l-AP); METHODS.md §3. No labels: a data dir without
``utt2spk`` trains.

Each utterance gives two non-overlapping ``num_frames`` segments, both augmented with the wave
profile ``augment`` (null: clean) and masked with ``ceps_aug`` (SpecAugment on the cepstra; null:
off). Embeddings ω¹ of view 1 are the prototypes, ω² of view 2 the queries; the logits are
``AngularPrototypical``'s w·cos(ω¹_i, ω²_j) + b over the batch (learnable w, b).

- ``mode: ap``: cross-entropy against the diagonal (eq. 1).
- ``mode: iap``: view 1's inputs are mixed, X_i ← λ_i·X_i + (1 − λ_i)·X_r(i), r a random
  derangement of the batch, λ ~ Beta(``alpha``, ``alpha``) per sample (``lam_per_sample``; optionally
  max(λ, 1 − λ), ``lam_max``); the loss is λ·CE(row, i) + (1 − λ)·CE(row, r(i)) (eq. 4).
- ``mode: lap``: the posterior means of view 1 are mixed instead and the mean decoded,
  X_i ← Dec(λ_i·μ_i + (1 − λ_i)·μ_r(i)) (eq. 5-7). The VAE (``vae``: a ``conv_vae`` spec) is frozen;
  its weights come from the ``vae`` objective's experiment through ``init_from`` (key_map
  ``{"vae.": ""}``). ``ceps_aug`` of view 1 is then applied after decoding, here.

The mixed loss replaces plain AP unless ``keep_plain_ap`` (then both are summed). Draws (partners,
λ, post-decoding masks) come from generators seeded by (a number drawn at construction, the step's
fractional epoch) and are made for the global batch: identical after a resume and on every rank,
and N ranks of B/N train as one of B (rows gathered with ``gather_across_ranks``).
"""

from __future__ import annotations

from typing import Mapping, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F

from wespeaker_like.augment.mixup import mix, mixing_weights, random_derangement
from wespeaker_like.dataset.views import STREAM_MASK, SpecAugment, View, apply_masks, stream
from wespeaker_like.losses.contrastive import AngularPrototypical, mixed_target_cross_entropy
from wespeaker_like.models import build_model
from wespeaker_like.objectives.base import Objective, checked_options
from wespeaker_like.registry import MODELS, OBJECTIVES
from wespeaker_like.scoring.geometry import alignment, uniformity
from wespeaker_like.training.distributed import gather_across_ranks, world

MODES = ("ap", "iap", "lap")
AP_DEFAULTS = {"init_w": 10.0, "init_b": -5.0}
# METHODS.md §3.2 [D]: one time mask of U{0..10} frames and one cepstral mask of U{0..5}, always
CEPS_AUG_DEFAULTS = {"prob": 1.0, "time_width": (0, 10), "freq_width": (0, 5), "num_time": 1, "num_freq": 1}


def ceps_masks(options: Union[None, bool, Mapping]) -> Optional[SpecAugment]:
    """``ceps_aug`` (null/false: off; true: the defaults; a mapping: defaults overridden) -> SpecAugment."""
    if options is None or options is False:
        return None
    given = {} if options is True else dict(options)
    values = checked_options(given, CEPS_AUG_DEFAULTS, "ceps_aug")
    return SpecAugment(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


@OBJECTIVES.register("ssl_ap")
class SelfSupervisedAP(Objective):
    label_names = ()
    nested_specs = {"vae": MODELS}

    def __init__(self, model: Mapping, num_classes: Mapping[str, int], num_frames: int = 180,
                 augment: Optional[str] = None, ceps_aug: Union[None, bool, Mapping] = None, mode: str = "ap",
                 alpha: float = 1.0, lam_per_sample: bool = True, lam_max: bool = False,
                 keep_plain_ap: bool = False, vae: Optional[Mapping] = None, loss: Optional[Mapping] = None):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got '{mode}'")
        if (mode == "lap") != (vae is not None):
            raise ValueError("mode lap needs 'vae' (a conv_vae spec, weights through init_from)" if mode == "lap"
                             else f"'vae' is used by mode lap only (mode is '{mode}')")
        if mode != "ap" and alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.mode, self.alpha = mode, float(alpha)
        self.lam_per_sample, self.lam_max, self.keep_plain_ap = bool(lam_per_sample), bool(lam_max), bool(keep_plain_ap)
        masks = ceps_masks(ceps_aug)
        # l-mix masks view 1 after decoding (here), so the dataset gives it unmasked
        self.masks_after_decoding = masks if mode == "lap" else None
        self.views = [View(num_frames, augment=augment, spec_augment=None if mode == "lap" else masks),
                      View(num_frames, position="disjoint", relative_to=0, augment=augment, spec_augment=masks)]
        self.backbone = build_model(model)
        self.ap = AngularPrototypical(**checked_options(loss, AP_DEFAULTS, "loss"))
        self.vae = None
        if mode == "lap":
            self.vae = build_model(vae)
            if not hasattr(self.vae, "decode"):
                raise ValueError(f"'vae' must name a VAE model (conv_vae), got '{vae.get('name')}'")
            self.vae.requires_grad_(False)
        self.draw_seed = int(torch.randint(2**31 - 1, (), device="cpu"))  # also under a meta device
        self.progress = 0.0

    def parameter_groups(self):
        """'main': the backbone and the AP scale and bias; the VAE stays frozen."""
        return {"main": list(self.backbone.parameters()) + list(self.ap.parameters())}

    def on_progress(self, progress: float) -> None:
        self.progress = progress

    def _rng(self, *keys: int) -> np.random.Generator:
        return stream(self.draw_seed, round(self.progress * 1e9), *keys)

    def _ap_loss(self, prototypes: torch.Tensor, queries: torch.Tensor, partners=None, lam=None) -> torch.Tensor:
        """AP (or its mixed-target form) over the global batch; (B, D) rows of this rank each."""
        logits = self.ap.logits(torch.stack([gather_across_ranks(prototypes), gather_across_ranks(queries)], dim=1))
        targets = torch.arange(len(logits), device=logits.device)
        if partners is None:
            return F.cross_entropy(logits, targets)
        return mixed_target_cross_entropy(logits, targets, partners.to(logits.device), lam.to(logits.device))

    def _after_decoding(self, feats: torch.Tensor, rows: range) -> torch.Tensor:
        """l-mix: ``ceps_aug`` on (B, T, F) features of the global rows ``rows``."""
        spec = self.masks_after_decoding
        if spec is None:
            return feats
        _, frames, dim = feats.shape
        return torch.stack([apply_masks(x, spec.draw(self._rng(STREAM_MASK, row), frames, dim))
                            for x, row in zip(feats, rows)])

    def mixed_inputs(self, first: torch.Tensor, partners: torch.Tensor, lam: torch.Tensor, rows: range) -> torch.Tensor:
        """View 1 of this rank's rows mixed with their partners (global indices): in the input (i-mix)
        or in the VAE's latent space, decoded and then masked (l-mix). (B, T, F) -> (B, T, F)."""
        mine = partners[rows.start:rows.stop].to(first.device)
        weights = lam[rows.start:rows.stop].to(first.device)
        with torch.no_grad():
            if self.mode == "iap":
                return mix(first, gather_across_ranks(first)[mine], weights)
            means = gather_across_ranks(self.vae.encode(first)[0])
            mixed = mix(means[rows.start:rows.stop], means[mine], weights)
            return self._after_decoding(self.vae.decode(mixed), rows)

    def training_step(self, batch, updater):
        first, second = batch["views"]
        size = len(first)
        rank, world_size = world()
        rows = range(rank * size, (rank + 1) * size)
        queries = self.backbone(second)
        terms, stats = {}, {}
        if self.mode == "ap" or self.keep_plain_ap:
            plain = self.backbone(self._after_decoding(first, rows) if self.mode == "lap" else first)
            terms["ap"] = self._ap_loss(plain, queries)
            with torch.no_grad():
                stats["align"] = alignment(plain.detach(), queries.detach()).item()
        if self.mode != "ap":
            rng = self._rng()
            partners = torch.from_numpy(random_derangement(world_size * size, rng))
            lam = torch.from_numpy(mixing_weights(world_size * size, self.alpha, rng, self.lam_per_sample,
                                                  self.lam_max))
            mixed = self.backbone(self.mixed_inputs(first, partners, lam, rows))
            terms["mix"] = self._ap_loss(mixed, queries, partners, lam)
        loss = sum(terms.values())
        updater.step("main", loss)
        with torch.no_grad():
            stats["uniform"] = uniformity(queries.detach()).item()
        return {"loss": loss.item(), **{k: v.item() for k, v in terms.items()}, **stats,
                "w": self.ap.w.item(), "b": self.ap.b.item()}

    def embedding_model(self):
        return self.backbone
