"""Scheduler configs in Kaldi's queue.conf format: launcher options -> submit-command options.

    command qsub -v PATH -cwd -S /bin/bash -j y -l arch=*64*
    option mem=* -l mem_free=$0,ram_free=$0     # --mem 4G -> -l mem_free=4G,ram_free=4G
    option mem=0                                # --mem 0  -> nothing
    option num_threads=* -pe smp $0
    option num_threads=1
    default gpu=0                               # used when --gpu is not given
    option gpu=0
    option gpu=* -l gpu=$0 -q g.q

A rule for the exact value wins over the ``*`` rule; ``$0`` is replaced by the value. An option
given on the command line that the config does not describe is an error. ``#`` starts a comment.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from .request import LauncherError


@dataclass
class SchedulerConfig:
    source: str  # file name (or "built-in ...") for error messages
    command: List[str]
    rules: Dict[str, Dict[str, List[str]]] = field(default_factory=dict)  # name -> value|'*' -> args
    defaults: Dict[str, str] = field(default_factory=dict)

    def describes(self, name: str) -> bool:
        return name in self.rules

    def option_args(self, options: Dict[str, str]) -> List[str]:
        """Submit-command arguments: the given options in order, then the defaults of the others."""
        args: List[str] = []
        for name, value in options.items():
            args += self._expand(name, value)
        for name, value in self.defaults.items():
            if name not in options:
                args += self._expand(name, value)
        return args

    def _expand(self, name: str, value: str) -> List[str]:
        rules = self.rules.get(name)
        if rules is None:
            raise LauncherError(f"--{name.replace('_', '-')} is not described in {self.source} "
                                f"(expected a line 'option {name}=* <args with $0>')")
        if value in rules:
            return list(rules[value])
        if "*" in rules:
            return [arg.replace("$0", value) for arg in rules["*"]]
        raise LauncherError(f"{self.source}: no rule for --{name.replace('_', '-')} {value} "
                            f"(values with a rule: {', '.join(sorted(rules))})")


def parse_config(text: str, source: str) -> SchedulerConfig:
    """Parse config text; errors name ``source:line`` and the expected forms."""
    command: Optional[List[str]] = None
    rules: Dict[str, Dict[str, List[str]]] = {}
    defaults: Dict[str, str] = {}
    expected = "expected 'command <submit command>', 'option NAME=VALUE [args]' or 'default NAME=VALUE'"
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            words = shlex.split(line)
        except ValueError as err:
            raise LauncherError(f"{source}:{number}: {err} in '{line}'") from None
        keyword, rest = words[0], words[1:]
        if keyword == "command" and rest:
            command = rest
        elif keyword in ("option", "default") and rest and "=" in rest[0]:
            name, value = rest[0].split("=", 1)
            if not name or not value:
                raise LauncherError(f"{source}:{number}: {expected}, got '{line}'")
            if keyword == "option":
                rules.setdefault(name, {})[value] = rest[1:]
            elif len(rest) == 1:
                defaults[name] = value
            else:
                raise LauncherError(f"{source}:{number}: 'default' takes only NAME=VALUE, got '{line}'")
        else:
            raise LauncherError(f"{source}:{number}: {expected}, got '{line}'")
    if command is None:
        raise LauncherError(f"{source}: no 'command' line (expected e.g. 'command qsub -cwd')")
    return SchedulerConfig(source, command, rules, defaults)


def load_config(path: Optional[str], standard_path: str, builtin_text: str, prog: str) -> SchedulerConfig:
    """The config named by --config, else ``standard_path`` if it exists, else the built-in one."""
    if path is not None:
        if not Path(path).is_file():
            raise LauncherError(f"{path}: config file not found (given with --config)")
        return parse_config(Path(path).read_text(encoding="utf-8"), path)
    if Path(standard_path).is_file():
        return parse_config(Path(standard_path).read_text(encoding="utf-8"), standard_path)
    return parse_config(builtin_text, f"{prog}'s built-in config")
