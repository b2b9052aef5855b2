"""Training methods. A method is an objective (this package) plus configs; the trainer is shared."""

from wespeaker_like.objectives.base import Objective, build_objective  # noqa: F401
from wespeaker_like.objectives import classification  # noqa: F401  (registers 'classification')
from wespeaker_like.objectives import supmargincon  # noqa: F401  (registers 'supmargincon')
from wespeaker_like.objectives import moco  # noqa: F401  (registers 'moco')
from wespeaker_like.objectives import self_distillation  # noqa: F401  (registers 'sdpn' and 'dino')
from wespeaker_like.objectives import club  # noqa: F401  (registers 'club' and 'club_pretrain')
from wespeaker_like.objectives import ssl_ap, vae  # noqa: F401  (registers 'ssl_ap' and 'vae')
from wespeaker_like.objectives import mine_ic  # noqa: F401  (registers 'mine_ic')
