"""Training losses. The margin softmaxes (classifier heads) are registered by name in
``wespeaker_like.registry.LOSSES``; the other losses are built by their objectives."""

from wespeaker_like.losses.contrastive import AngularPrototypical, sup_margin_con_loss  # noqa: F401
from wespeaker_like.losses.margin import AAMSoftmax, AMSoftmax, MarginSoftmax, Softmax  # noqa: F401
from wespeaker_like.losses.mutual_information import GaussianCriticInfoNCE, gaussian_infonce  # noqa: F401
from wespeaker_like.losses.self_distillation import (DinoLoss, KoLeoLoss, SdpnLoss, prototype_scores,  # noqa: F401
                                                     sinkhorn_knopp)
