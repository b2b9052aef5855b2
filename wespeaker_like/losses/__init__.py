"""Training losses, registered by name in ``wespeaker_like.registry.LOSSES``."""

from wespeaker_like.losses.margin import AAMSoftmax, AMSoftmax, MarginSoftmax, Softmax  # noqa: F401
