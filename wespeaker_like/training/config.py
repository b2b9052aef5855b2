"""YAML experiment configs: ``include:`` of base files, dotted overrides, strict keys.

A config is a nested dict. ``load_config`` also records where every key came from
(``origins["optim.lr"] == "conf/ecapa.yaml:14"``) so that an unknown or invalid key is reported
with its file and line, whether it was written in a YAML file or given as ``--set optim.lr=0.1``.
"""

from __future__ import annotations

import copy
import inspect
import re
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional

import yaml

from wespeaker_like.errors import InputError
from wespeaker_like.fileio import atomic_write


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` as a float (YAML 1.1 needs a dot: ``1.0e-3``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
               r"|\.inf|\.Inf|\.INF|\.nan|\.NaN|\.NAN)$"),
    list("-+0123456789."))


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


class Config(dict):
    """Nested dict with ``origins`` mapping dotted keys to ``file:line``."""

    def __init__(self, data: Mapping[str, Any] = (), origins: Optional[Dict[str, str]] = None):
        super().__init__(data)
        self.origins: Dict[str, str] = dict(origins or {})

    def where(self, dotted: str) -> str:
        """``file:line`` of a key, or of its closest parent that has one."""
        parts = dotted.split(".")
        while parts:
            key = ".".join(parts)
            if key in self.origins:
                return self.origins[key]
            parts.pop()
        return "<config>"

    def error(self, dotted: str, message: str) -> InputError:
        """An InputError pointing at the file and line where ``dotted`` was set."""
        path, _, line = self.where(dotted).rpartition(":")
        if not path or not line.isdigit():
            return InputError(self.where(dotted), f"'{dotted}': {message}")
        return InputError(path, f"'{dotted}': {message}", int(line))

    def get_path(self, dotted: str, default: Any = None) -> Any:
        node: Any = self
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node


def _compose_with_lines(path: Path) -> tuple[Dict[str, Any], Dict[str, str]]:
    """Parse YAML keeping the line of every mapping key."""
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        where = f" ({context} on line {context_mark.line + 1})" if context and context_mark else ""
        raise InputError(path, f"invalid YAML: {getattr(exc, 'problem', exc)}{where}",
                         None if mark is None else mark.line + 1) from None
    if node is None:
        return {}, {}
    if not isinstance(node, yaml.MappingNode):
        raise InputError(path, "expected a mapping of config sections at the top level", node.start_mark.line + 1)
    origins: Dict[str, str] = {}

    def walk(mapping: yaml.MappingNode, prefix: str) -> None:
        for key_node, value_node in mapping.value:
            dotted = prefix + key_node.value
            origins[dotted] = f"{path}:{key_node.start_mark.line + 1}"
            if isinstance(value_node, yaml.MappingNode):
                walk(value_node, dotted + ".")

    walk(node, "")
    data = parse_yaml(text) or {}
    return data, origins


def _merge(base: Dict[str, Any], update: Mapping[str, Any]) -> Dict[str, Any]:
    """Recursive dict merge; ``update`` wins. A mapping with ``_replace_: true`` replaces instead."""
    for key, value in update.items():
        if isinstance(value, Mapping) and value.get("_replace_"):
            base[key] = {k: v for k, v in value.items() if k != "_replace_"}
        elif isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def _load_file(path: Path, seen: List[Path]) -> Config:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "config file not found")
    if path.resolve() in seen:
        raise InputError(path, "include cycle: " + " -> ".join(str(p) for p in seen + [path.resolve()]))
    data, origins = _compose_with_lines(path)
    includes = data.pop("include", None) or []
    if isinstance(includes, str):
        includes = [includes]
    merged = Config()
    for name in includes:
        base = _load_file(path.parent / name, seen + [path.resolve()])
        _merge(merged, base)
        merged.origins.update(base.origins)
    _merge(merged, data)
    merged.origins.update({k: v for k, v in origins.items() if k != "include"})
    return merged


def parse_override(text: str) -> tuple[str, Any]:
    """``"optim.lr=0.01"`` -> ``("optim.lr", 0.01)``; the value is parsed as YAML."""
    if "=" not in text:
        raise InputError("--set", f"expected key.path=value, got '{text}'")
    key, value = text.split("=", 1)
    return key.strip(), parse_yaml(value)


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> Config:
    """Load ``path`` (with its includes) and apply ``--set`` style overrides."""
    cfg = _load_file(Path(path), [])
    for index, text in enumerate(overrides, start=1):
        dotted, value = parse_override(text)
        node = cfg
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InputError("--set", f"'{dotted}': '{part}' is not a section", index)
        node[parts[-1]] = value
        cfg.origins[dotted] = f"--set:{index}"
    return cfg


def save_config(cfg: Mapping[str, Any], path: str | Path) -> None:
    with atomic_write(path) as handle:
        yaml.safe_dump(dict(cfg), handle, sort_keys=False, default_flow_style=False)


def check_keys(cfg: Config, schema: Mapping[str, Any], prefix: str = "") -> None:
    """Every key of ``cfg`` must exist in ``schema`` (a dict of defaults).

    A schema value ``OPEN`` accepts any mapping (checked later with ``check_kwargs``).
    """
    node = cfg.get_path(prefix[:-1]) if prefix else cfg
    for key, value in (node or {}).items():
        dotted = prefix + key
        if key not in schema:
            known = ", ".join(sorted(schema))
            raise cfg.error(dotted, f"unknown config key; expected one of: {known}")
        expected = schema[key]
        if isinstance(expected, dict):
            if not isinstance(value, Mapping):
                raise cfg.error(dotted, f"expected a mapping, got {type(value).__name__}")
            check_keys(cfg, expected, dotted + ".")
        elif expected is not OPEN:
            _check_type(cfg, dotted, value, expected, integers_exact=True)


def _check_type(cfg: Config, dotted: str, value: Any, default: Any, integers_exact: bool) -> None:
    """``value`` must have the type of ``default`` (bool, number, str); ``None`` defaults accept anything.

    ``integers_exact``: schema defaults, where an int wants an int (``epochs``). A signature's default
    only tells part of the type (``momentum=0`` takes 0.9, ``channels=512`` a list), so a number
    default there rejects only strings and booleans.
    """
    if default is None:
        return
    if isinstance(default, bool):
        ok, wanted = isinstance(value, bool), "true or false"
    elif isinstance(default, int) and integers_exact:
        ok, wanted = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(default, (int, float)) and integers_exact:
        ok, wanted = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    elif isinstance(default, (int, float)):
        ok, wanted = not isinstance(value, (str, bool)), "a number"
    elif isinstance(default, str):
        ok, wanted = isinstance(value, str), "a string"
    else:
        return
    if not ok:
        raise cfg.error(dotted, f"expected {wanted}, got {value!r} ({type(value).__name__})")


class _Open:
    """Schema marker: a section whose keys are a constructor's arguments (checked by check_kwargs)."""


OPEN = _Open()


def _defaults(schema: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: ({} if v is OPEN else _defaults(v) if isinstance(v, dict) else copy.deepcopy(v))
            for k, v in schema.items()}


def with_defaults(cfg: Config, schema: Mapping[str, Any]) -> Config:
    """Defaults from ``schema`` overlaid with ``cfg`` (origins kept)."""
    return Config(_merge(_defaults(schema), cfg), cfg.origins)


def check_kwargs(cfg: Config, dotted: str, target: Callable, ignore: Iterable[str] = ("name",)) -> None:
    """The keys of section ``dotted`` must be parameters of ``target`` (a class or function)."""
    section = cfg.get_path(dotted) or {}
    parameters = inspect.signature(target).parameters
    if not isinstance(section, Mapping):
        raise cfg.error(dotted, f"expected a mapping of options, got {section!r}")
    if any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
        return
    for key, value in section.items():
        if key in ignore:
            continue
        if key not in parameters:
            known = ", ".join(p for p in parameters if p not in ("self", "args", "kwargs"))
            raise cfg.error(f"{dotted}.{key}", f"unknown option of {getattr(target, '__name__', target)}; "
                            f"expected one of: {known}")
        default = parameters[key].default
        if default is not inspect.Parameter.empty:
            _check_type(cfg, f"{dotted}.{key}", value, default, integers_exact=False)
