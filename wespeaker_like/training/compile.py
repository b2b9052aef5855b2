"""``trainer.compile``: ``torch.compile`` of the backbone, falling back to eager when compilation fails.

The trainer compiles the objective's ``embedding_model()``: its ``forward_with_frontend`` (which
``forward`` calls, and which the objectives that need the front-end output call directly) is
replaced on the instance by a compiled version, so parameter names, the ``state_dict`` and
checkpoints are those of the eager module. The backward graph is lowered
together with the forward one, so a compiler failure (no C++ compiler, an unsupported operator)
surfaces in the forward call, where it is logged once and the backbone continues in eager mode: the
failed call runs again eagerly, and nothing has been changed before compilation finished.
"""

from __future__ import annotations

import logging
from typing import Callable

import torch
import torch._functorch.config
import torch.nn as nn

log = logging.getLogger("train")

BACKEND = "inductor"  # the tests use "eager" (dynamo's graph capture without code generation)


class EagerFallback:
    """Calls ``compiled``; on its first failure logs it and calls ``eager`` from then on."""

    def __init__(self, eager: Callable, compiled: Callable, name: str):
        self.eager, self.compiled, self.name = eager, compiled, name

    def __call__(self, *args, **kwargs):
        if self.compiled is not None:
            try:
                with torch._functorch.config.patch(force_non_lazy_backward_lowering=True):
                    return self.compiled(*args, **kwargs)
            except Exception as exc:  # any compiler error: the eager module computes the same function
                log.warning("torch.compile of %s failed, training it in eager mode: %s: %s", self.name,
                            type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc).strip() else "")
                self.compiled = None
        return self.eager(*args, **kwargs)

    @property
    def is_compiled(self) -> bool:
        return self.compiled is not None


def compile_backbone(backbone: nn.Module, backend: str = "") -> EagerFallback:
    """Compile ``backbone.forward_with_frontend`` (``forward`` for an embedding model without it, e.g.
    backbone + decoupler) in place; shapes in and out: those of the eager method.

    Returns the installed wrapper; ``wrapper.is_compiled`` turns False after a fallback. Shapes that
    change between batches (a shorter last batch) recompile once with dynamic sizes.
    """
    backend = backend or BACKEND
    method = "forward_with_frontend" if hasattr(backbone, "forward_with_frontend") else "forward"
    eager = getattr(backbone, method)
    wrapper = EagerFallback(eager, torch.compile(eager, backend=backend), type(backbone).__name__)
    setattr(backbone, method, wrapper)
    log.info("torch.compile (%s) of the backbone %s: compiles at the first batch", backend,
             type(backbone).__name__)
    return wrapper
