"""Paper 001: MINE disentanglement with identity-change (IC) training (METHODS.md §2).

Each utterance gives two crops A, A' (log-magnitude STFT, the config's ``features``) and their
log-mel targets (the dataset front-end ``target_frontend``, same placement). Batches hold
consecutive pairs of utterances of one speaker (``sampler: {name: speaker_balanced,
utts_per_speaker: 2}``): the partner's crop A is this utterance's crop B. Two encoders without
shared weights give f_spk = E_spk(x) and f_res = E_res(x) for every crop; the decoder D_r
reconstructs the log-mel from [f_spk; f_res]. Terms (unweighted; ``weights`` scale them):

* ``speaker``: the speaker loss (``speaker_loss``: softmax, am or aam) on f_spk of A and A';
* ``recon``: L_R, the mean squared reconstruction error of A and A' (mean over elements);
* ``mi``: −Ĵ, eq. 5 as a Donsker–Varadhan bound with the statistics network T (joint pairs: the
  f_spk of A and A'; marginal pairs: f_spk and f_res of one crop; ``mine_symmetric_res: false``
  keeps the paper's f_res of A in the A' anchor); maximised jointly by E_spk, E_res and T, whose
  scores ``statistics_bound`` c squashes to c·tanh(T/c) (unbounded, Ĵ diverges on real speech);
* ``adv``: L_adv, the cross-entropy to uniform of the speaker classifier on f_res, the classifier's
  weights frozen (sg W) for this term, so it trains E_res only (eq. 4 with the sign fixed);
* ``ic``: L_IC (eq. 7): with f̄ the mean f_spk of crops A and B, ‖D_r(f̄, f_res^A) − S_A‖² +
  ‖D_r(f̄, f_res^B) − S_B‖², each a mean over elements, averaged over the pairs.

Phase I (the whole run unless ``use_ic``): one step on λ_S L_S + λ_R L_R (+ λ_MI L_MI, + λ_adv L_adv).
Phase II (from epoch ``phase1_epochs``, with ``use_ic``), on every batch ``phase2_alternation``
times: the intra-class step (λ_IC L_IC with f_spk detached; trains D_r and E_res) then the
adaptation step (λ_R L_R with f_res detached; trains D_r and E_spk). ``phase2_speaker_loss`` keeps
λ_S L_S in the adaptation step (and trains the classifier there); ``phase2_disentanglement`` keeps
the MI term in both steps (and trains T in both) and L_adv in the intra-class step. A step's
untrained parameters get no gradient (``before_optimizer_step``), so Adam leaves them untouched;
the frozen encoder still runs with batch statistics. The evaluation embedding is f_spk.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

import wespeaker_like.losses  # noqa: F401  (registers the margin softmaxes)
from wespeaker_like.dataset.features import View
from wespeaker_like.losses.margin import compute_dtype, uniform_cross_entropy
from wespeaker_like.losses.mutual_information import donsker_varadhan
from wespeaker_like.models import build_model
from wespeaker_like.models.spectrogram_decoder import SpectrogramDecoder
from wespeaker_like.models.statistics_network import StatisticsNetwork
from wespeaker_like.objectives.base import Objective, checked_options
from wespeaker_like.registry import LOSSES, OBJECTIVES

DEFAULT_WEIGHTS = {"speaker": 1.0, "mi": 0.1, "adv": 0.1, "recon": 0.1, "ic": 0.1}  # λ1, λ2, λ2 slot, λ3, λ4
SECOND_CROPS = ("independent", "disjoint")
PHASE_I, INTRA_CLASS, ADAPTATION = "phase1", "intra_class", "adaptation"


class _FrozenClassifier(nn.Module):
    """The speaker classifier's inference logits, to be called with detached weights."""

    def __init__(self, head: nn.Module):
        super().__init__()
        self.head = head

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.head.logits(embedding, None)


def pair_partners(speakers: torch.Tensor) -> torch.Tensor:
    """(N,) speaker labels in consecutive same-speaker pairs -> (N,) index of each row's partner."""
    if len(speakers) % 2 or not (speakers.view(-1, 2)[:, 0] == speakers.view(-1, 2)[:, 1]).all():
        raise ValueError("mine_ic: the identity-change loss needs batches of consecutive utterance pairs of one "
                         "speaker (dataset.sampler: {name: speaker_balanced, utts_per_speaker: 2})")
    return torch.arange(len(speakers), device=speakers.device) ^ 1


@OBJECTIVES.register("mine_ic")
class MineIC(Objective):
    label_names = ("spk",)
    nested_specs = {"speaker_loss": LOSSES}

    def __init__(self, model: Mapping, num_classes: Mapping[str, int], num_frames: int = 300,
                 second_crop: str = "independent", target_frontend: str = "logmel",
                 residual_model: Optional[Mapping] = None, speaker_loss: Optional[Mapping] = None,
                 use_mi: bool = True, use_adv: bool = False, use_ic: bool = True, weights: Optional[Mapping] = None,
                 decoder: Optional[Mapping] = None, statistics_hidden: int = 512,
                 statistics_bound: Optional[float] = None, mine_symmetric_res: bool = True,
                 phase1_epochs: float = 30.0, phase2_alternation: int = 1, phase2_speaker_loss: bool = True,
                 phase2_disentanglement: bool = True):
        super().__init__()
        if second_crop not in SECOND_CROPS:
            raise ValueError(f"mine_ic: second_crop must be one of {', '.join(SECOND_CROPS)}, got '{second_crop}'")
        self.weights = checked_options(weights, DEFAULT_WEIGHTS, "weights")
        decoder_options = checked_options(decoder, SpectrogramDecoder, "decoder", fixed=("input_dim", "num_frames"))
        self.use_mi, self.use_adv, self.use_ic = bool(use_mi), bool(use_adv), bool(use_ic)
        self.mine_symmetric_res = bool(mine_symmetric_res)
        self.phase1_epochs, self.phase2_alternation = float(phase1_epochs), int(phase2_alternation)
        self.phase2_speaker_loss, self.phase2_disentanglement = bool(phase2_speaker_loss), bool(phase2_disentanglement)
        second = View(num_frames) if second_crop == "independent" else View(num_frames, "disjoint", 0)
        self.views = [View(num_frames), second, View(num_frames, "same", 0, frontend=target_frontend),
                      View(num_frames, "same", 1, frontend=target_frontend)]
        self.target_frontend = target_frontend
        self.speaker_encoder = build_model(model)
        self.residual_encoder = build_model(residual_model or model)
        spk_dim, res_dim = self.speaker_encoder.embed_dim, self.residual_encoder.embed_dim
        self.speaker_head = LOSSES.build(dict(speaker_loss or {"name": "softmax"}), embed_dim=spk_dim,
                                         num_classes=num_classes["spk"])
        if self.use_adv and res_dim != spk_dim:
            raise ValueError(f"mine_ic: use_adv shares the speaker classifier, so f_res ({res_dim}) needs the size "
                             f"of f_spk ({spk_dim})")
        self.decoder = SpectrogramDecoder(spk_dim + res_dim, num_frames=num_frames, **decoder_options)
        self.statistics: Optional[StatisticsNetwork] = None
        if self.use_mi:
            if res_dim != spk_dim:
                raise ValueError(f"mine_ic: T scores (f_spk, f_spk) and (f_spk, f_res) pairs, so f_res ({res_dim}) "
                                 f"needs the size of f_spk ({spk_dim})")
            self.statistics = StatisticsNetwork(spk_dim, spk_dim, statistics_hidden, statistics_bound)
        self.phase = PHASE_I
        self._trainable: Optional[set] = None  # ids of the parameters the current step may change

    # ---- phases ----------------------------------------------------------------------------
    def on_progress(self, progress: float) -> None:
        self.phase = INTRA_CLASS if self.use_ic and progress >= self.phase1_epochs else PHASE_I

    def trainable_modules(self, step: str) -> Dict[str, nn.Module]:
        """The modules a step trains: all in Phase I; per Phase II step as the module docstring says."""
        if step == PHASE_I:
            return dict(self.named_children())
        modules = {"decoder": self.decoder}
        if step == INTRA_CLASS:
            modules["residual_encoder"] = self.residual_encoder
        else:
            modules["speaker_encoder"] = self.speaker_encoder
            if self.phase2_speaker_loss:
                modules["speaker_head"] = self.speaker_head
        if self.statistics is not None and self.phase2_disentanglement:
            modules["statistics"] = self.statistics
        return modules

    def before_optimizer_step(self, group: str, progress: float) -> None:
        if self._trainable is None:
            return
        for p in self.parameters():
            if id(p) not in self._trainable:
                p.grad = None  # Adam skips a parameter without a gradient: no move, no moment update

    # ---- terms -------------------------------------------------------------------------------
    def mine_bound(self, f_spk: torch.Tensor, f_res: torch.Tensor) -> torch.Tensor:
        """Ĵ of eq. 5 (scalar, maximised) from the (2N, D) embeddings of crops A (first N) and A'."""
        a_spk, a2_spk = f_spk.chunk(2)
        a_res, a2_res = f_res.chunk(2)
        t = self.statistics
        return (donsker_varadhan(t(a_spk, a2_spk), t(a_spk, a_res))
                + donsker_varadhan(t(a2_spk, a_spk), t(a2_spk, a2_res if self.mine_symmetric_res else a_res)))

    def reconstruction(self, f_spk: torch.Tensor, f_res: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """L_R: mean squared error of D_r([f_spk; f_res]) (B, T, M) against the log-mel targets (B, T, M)."""
        return F.mse_loss(self.decoder(torch.cat([f_spk, f_res], dim=1)), targets)

    def identity_change(self, a_spk: torch.Tensor, a_res: torch.Tensor, a_targets: torch.Tensor,
                        partners: torch.Tensor) -> torch.Tensor:
        """L_IC of eq. 7 from the crops A (N, D), (N, D), (N, T, M), row i's crop B being row partners[i]'s A."""
        mean_speaker = 0.5 * (a_spk + a_spk[partners])
        return 2.0 * self.reconstruction(mean_speaker, a_res, a_targets)  # ‖·‖² of A plus of B, per pair

    def adversarial(self, f_res: torch.Tensor) -> torch.Tensor:
        """L_adv: cross-entropy to uniform of the classifier on f_res, its weights detached."""
        classifier = _FrozenClassifier(self.speaker_head)
        frozen = {name: p.detach() for name, p in classifier.named_parameters()}
        logits = torch.func.functional_call(classifier, frozen, (compute_dtype(f_res),))
        return uniform_cross_entropy(logits)

    def _encode(self, crops: torch.Tensor, speaker_grad: bool, residual_grad: bool):
        with torch.set_grad_enabled(speaker_grad):
            f_spk = compute_dtype(self.speaker_encoder(crops))
        with torch.set_grad_enabled(residual_grad):
            f_res = compute_dtype(self.residual_encoder(crops))
        return f_spk, f_res

    def _step_terms(self, step: str, crops, targets, speakers, partners) -> Dict[str, torch.Tensor]:
        """The unweighted terms of one optimiser step (module docstring)."""
        f_spk, f_res = self._encode(crops, step != INTRA_CLASS, step != ADAPTATION)
        terms: Dict[str, torch.Tensor] = {}
        disentangle = step == PHASE_I or self.phase2_disentanglement
        if step != INTRA_CLASS:
            terms["recon"] = self.reconstruction(f_spk, f_res, targets)
            if step == PHASE_I or self.phase2_speaker_loss:
                logits = self.speaker_head.logits(f_spk, speakers)
                terms["speaker"] = F.cross_entropy(logits, speakers)
                terms["acc"] = (logits.detach().argmax(1) == speakers).float().mean()
        else:
            half = len(f_spk) // 2
            terms["ic"] = self.identity_change(f_spk[:half], f_res[:half], targets[:half], partners)
        if self.use_mi and disentangle:
            terms["mi"] = -self.mine_bound(f_spk, f_res)
        if self.use_adv and disentangle and step != ADAPTATION:  # f_res is detached in adaptation
            terms["adv"] = self.adversarial(f_res)
        return terms

    def training_step(self, batch, updater):
        a, a2, mel_a, mel_a2 = batch["views"]
        speakers = batch["labels"]["spk"]
        if mel_a.shape[-1] != self.decoder.num_mel_bins:
            raise ValueError(f"mine_ic: the '{self.target_frontend}' front-end gives {mel_a.shape[-1]} bins but the "
                             f"decoder makes {self.decoder.num_mel_bins} (objective.decoder.num_mel_bins)")
        crops, targets = torch.cat([a, a2]), torch.cat([mel_a, mel_a2]).to(torch.float32)
        partners = pair_partners(speakers) if self.use_ic else None
        steps = [PHASE_I] if self.phase == PHASE_I else [INTRA_CLASS, ADAPTATION] * self.phase2_alternation
        stats: Dict[str, float] = {"phase": 1.0 if self.phase == PHASE_I else 2.0}
        for step in steps:
            terms = self._step_terms(step, crops, targets, speakers.repeat(2), partners)
            accuracy = terms.pop("acc", None)
            loss = sum(self.weights[name] * value for name, value in terms.items())
            self._trainable = (None if step == PHASE_I else
                               {id(p) for m in self.trainable_modules(step).values() for p in m.parameters()})
            try:
                updater.step("main", loss)
            finally:
                self._trainable = None
            prefix = "" if step == PHASE_I else f"{step}_"
            stats[f"{prefix}loss"] = loss.item()
            stats.update({f"{prefix}{name}": value.item() for name, value in terms.items()})
            if accuracy is not None:
                stats["acc"] = accuracy.item()
        return stats

    def embedding_model(self) -> nn.Module:
        return self.speaker_encoder
