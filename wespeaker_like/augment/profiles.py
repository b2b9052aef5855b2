"""Named on-the-fly augmentation profiles: which corruptions a view gets, with what probability.

A profile is a list of ``choices``, each a chain of steps applied in order, drawn with relative
``weights`` (default equal) when the view is augmented at all (probability ``aug_prob``). A step
is an ``Augmenter`` type (``reverb``, ``noise``, ``music``, ``babble``) or ``additive``: one of the
profile's ``additive`` types, uniformly. SNR, babble-count and reverb-gain ranges are the
``AugmentConfig`` fields, set per profile. ``[]`` is a choice of no augmentation.

The presets (``PRESETS``) hold every number of the recipes they follow; a config's
``dataset.augment.profiles`` may use them by name, override any key of one (``{preset: sdpn,
aug_prob: 0.5}``) or define new ones::

    kaldi:       one of reverb / noise 0-15 dB / music 5-15 dB / babble of 3-7 speakers 13-20 dB
    3dspeaker:   with aug_prob 0.8: one of noise / reverb / reverb then noise; SNR 0-15 dB
    sdpn:        1/6 none, 1/2 one corruption (reverb 1/4, else additive), 1/3 reverb then additive;
                 additive = noise 0-15 / babble 13-20 / music 5-15 dB, reverb gain -7..3 dB
    voxceleb_unsupervised: reverb (gain -7..3 dB) with p 0.25, else one additive as in sdpn
    reverb_noise: reverb then noise 0-15 dB on every view (the loader benchmark's case)
"""

from __future__ import annotations

from dataclasses import fields
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from wespeaker_like.augment.augmenter import AUG_TYPES, RESOURCE_OF, AugmentConfig, Augmenter
from wespeaker_like.augment.resources import AugmentResources

_MUSAN = {"noise_snr": [0, 15], "music_snr": [5, 15], "babble_snr": [13, 20], "num_babble": [3, 7]}
PRESETS: Dict[str, dict] = {
    "kaldi": {"choices": [["reverb"], ["noise"], ["music"], ["babble"]], **_MUSAN},
    "3dspeaker": {"choices": [["noise"], ["reverb"], ["reverb", "noise"]], "aug_prob": 0.8, "noise_snr": [0, 15]},
    "sdpn": {"choices": [[], ["reverb"], ["additive"], ["reverb", "additive"]],
             "weights": [1 / 6, 1 / 2 * 1 / 4, 1 / 2 * 3 / 4, 1 / 3],
             "additive": ["noise", "babble", "music"], "reverb_gain_db": [-7, 3], **_MUSAN},
    "voxceleb_unsupervised": {"choices": [["reverb"], ["additive"]], "weights": [0.25, 0.75],
                              "additive": ["noise", "babble", "music"], "reverb_gain_db": [-7, 3], **_MUSAN},
    "reverb_noise": {"choices": [["reverb", "noise"]], "noise_snr": [0, 15]},
}
PROFILE_KEYS = ("preset", "choices", "weights", "aug_prob", "additive")
CONFIG_KEYS = tuple(f.name for f in fields(AugmentConfig))


class AugmentProfile:
    """One profile bound to opened resources. ``apply`` is deterministic given its generator."""

    def __init__(self, name: str, resources: AugmentResources, choices: Sequence[Sequence[str]],
                 weights: Optional[Sequence[float]] = None, aug_prob: float = 1.0,
                 additive: Sequence[str] = ("noise", "babble", "music"), sample_rate: int = 16000,
                 config: Optional[AugmentConfig] = None):
        self.name = name
        self.choices = [tuple(choice) for choice in choices]
        self.additive = tuple(additive)
        if not self.choices:
            raise ValueError(f"augmentation profile '{name}': no choices")
        weights = [1.0] * len(self.choices) if weights is None else [float(w) for w in weights]
        if len(weights) != len(self.choices) or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"augmentation profile '{name}': weights {weights} must be one non-negative number "
                             f"per choice ({len(self.choices)}), not all zero")
        if not 0.0 <= aug_prob <= 1.0:
            raise ValueError(f"augmentation profile '{name}': aug_prob {aug_prob} is not in [0, 1]")
        self.probs = np.array(weights) / sum(weights) * aug_prob
        used = {step for choice in self.choices for step in choice}
        if "additive" in used:
            used |= set(self.additive)
        used.discard("additive")
        unknown = sorted(used - set(AUG_TYPES))
        if unknown:
            raise ValueError(f"augmentation profile '{name}': unknown step '{unknown[0]}' "
                             f"(expected {', '.join(AUG_TYPES)} or additive)")
        missing = sorted(RESOURCE_OF[t] for t in used if getattr(resources, RESOURCE_OF[t]) is None)
        if missing:
            raise ValueError(f"augmentation profile '{name}' needs the '{missing[0]}' resource "
                             "(dataset.augment.resources)")
        self.augmenter = Augmenter(resources, types=(), sample_rate=sample_rate, config=config)

    def choose(self, rng: np.random.Generator) -> Tuple[str, ...]:
        """The chain of concrete types for one view (empty: none)."""
        draw, chain = rng.random(), ()
        for choice, prob in zip(self.choices, self.probs):
            if draw < prob:
                chain = choice
                break
            draw -= prob
        return tuple(self.additive[int(rng.integers(len(self.additive)))] if step == "additive" else step
                     for step in chain)

    def apply(self, samples: np.ndarray, rng: np.random.Generator, speaker: Optional[str] = None,
              drawn: Optional[dict] = None) -> np.ndarray:
        """(N,) float32 -> (N,) float32. ``drawn`` receives the chain (``types``) and the SNRs/gains."""
        drawn = {} if drawn is None else drawn
        drawn["types"] = self.choose(rng)
        for aug_type in drawn["types"]:
            samples = self.augmenter.augment(samples, aug_type, rng, speaker, drawn)
        return samples


def profile_settings(name: str, cfg: Optional[Mapping]) -> dict:
    """The full settings of profile ``name``: its preset (by name or ``preset:``) overlaid with ``cfg``."""
    cfg = dict(cfg or {})
    preset = cfg.pop("preset", name if name in PRESETS else None)
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"augmentation profile '{name}': unknown preset '{preset}' "
                         f"(expected one of {', '.join(PRESETS)})")
    settings = {**PRESETS.get(preset, {}), **cfg} if preset else cfg
    unknown = sorted(set(settings) - set(PROFILE_KEYS) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(f"augmentation profile '{name}': unknown key '{unknown[0]}' "
                         f"(expected {', '.join(PROFILE_KEYS[1:] + CONFIG_KEYS)})")
    if "choices" not in settings:
        raise ValueError(f"augmentation profile '{name}' needs 'choices' (or a preset: {', '.join(PRESETS)})")
    return settings


def build_profiles(profiles: Mapping[str, Optional[Mapping]], resources: AugmentResources,
                   sample_rate: int = 16000) -> Dict[str, AugmentProfile]:
    """``{name: settings or None}`` (None: the preset of that name) -> opened profiles."""
    built = {}
    for name, cfg in profiles.items():
        settings = profile_settings(name, cfg)
        config = AugmentConfig.from_dict({k: settings[k] for k in CONFIG_KEYS if k in settings})
        options = {k: settings[k] for k in ("weights", "aug_prob", "additive") if k in settings}
        built[name] = AugmentProfile(name, resources, settings["choices"], sample_rate=sample_rate, config=config,
                                     **options)
    return built


def used_resources(profiles: Mapping[str, Optional[Mapping]]) -> List[str]:
    """Resource categories the named profiles need (to open only those)."""
    needed = set()
    for name, cfg in profiles.items():
        settings = profile_settings(name, cfg)
        steps = {step for choice in settings["choices"] for step in choice}
        if "additive" in steps:
            steps |= set(settings.get("additive", ("noise", "babble", "music")))
        needed |= {RESOURCE_OF[s] for s in steps if s in RESOURCE_OF}
    return sorted(needed)
