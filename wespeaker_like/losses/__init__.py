"""Training losses. The margin softmaxes are registered by name in ``wespeaker_like.registry.LOSSES``;
the self-distillation losses are built by their objectives."""

from wespeaker_like.losses.margin import AAMSoftmax, AMSoftmax, MarginSoftmax, Softmax  # noqa: F401
from wespeaker_like.losses.self_distillation import (DinoLoss, KoLeoLoss, SdpnLoss, prototype_scores,  # noqa: F401
                                                     sinkhorn_knopp)
