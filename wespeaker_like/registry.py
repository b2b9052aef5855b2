"""Name -> class registries, so configs can say ``model: {name: ecapa_tdnn, ...}``."""

from __future__ import annotations

from typing import Any, Callable, Dict, Type


class Registry:
    """A named table of constructors.

    >>> MODELS = Registry("model")
    >>> @MODELS.register("tdnn")
    ... class TDNN: ...
    >>> MODELS.build({"name": "tdnn"})
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._table: Dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[Type], Type]:
        def add(obj):
            if name in self._table:
                raise KeyError(f"{self.kind} '{name}' is registered twice")
            self._table[name] = obj
            return obj

        return add

    def get(self, name: str) -> Callable[..., Any]:
        if name not in self._table:
            known = ", ".join(sorted(self._table)) or "(none)"
            raise KeyError(f"unknown {self.kind} '{name}'; known: {known}")
        return self._table[name]

    def build(self, spec: Dict[str, Any], **extra: Any) -> Any:
        """Build from ``{"name": ..., **kwargs}``; ``extra`` kwargs are added (e.g. num_classes)."""
        spec = dict(spec)
        name = spec.pop("name")
        return self.get(name)(**spec, **extra)

    def names(self):
        return sorted(self._table)

    def __contains__(self, name: str) -> bool:
        return name in self._table


MODELS = Registry("model")
LOSSES = Registry("loss")
OBJECTIVES = Registry("objective")
SCHEDULERS = Registry("scheduler")
