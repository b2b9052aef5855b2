"""Training methods. A method is an objective (this package) plus configs; the trainer is shared."""

from wespeaker_like.objectives.base import Objective, build_objective  # noqa: F401
from wespeaker_like.objectives import classification  # noqa: F401  (registers 'classification')
from wespeaker_like.objectives import supmargincon  # noqa: F401  (registers 'supmargincon')
from wespeaker_like.objectives import club  # noqa: F401  (registers 'club' and 'club_pretrain')
