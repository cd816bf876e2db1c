"""Scenario files read into the model, every problem named by file, line and field:
`scenarios/refill.yaml:12: steps[2].expect.sayz: unknown field`. A file holds one scenario, or a
list of them under `scenarios:`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from state_machine import YamlLoader
from voice_agent.errors import ConfigError
from voice_agent.scenarios.model import Scenario

Path_ = tuple[str | int, ...]
SUFFIXES = (".yaml", ".yml")


def node_lines(node: yaml.Node, at: Path_ = ()) -> dict[Path_, int]:
    """Each key's and item's line (1-based) by its path in the document."""
    lines: dict[Path_, int] = {at: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = (*at, str(key.value))
            lines[path] = key.start_mark.line + 1
            lines.update({p: n for p, n in node_lines(value, path).items() if p != path})
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(node_lines(item, (*at, index)))
    return lines


def field_name(path: Path_) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(the file)"


def line_of(lines: dict[Path_, int], path: Path_) -> int:
    """The line of `path`, or of its nearest parent the file has (a missing field's mapping)."""
    while path not in lines and path:
        path = path[:-1]
    return lines.get(path, 1)


def scenarios_in(path: Path) -> list[Scenario]:
    text = path.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text, Loader=YamlLoader)
        data = yaml.load(text, Loader=YamlLoader)  # a SafeLoader: no objects from a file
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(
            f"{path}:{line}: not valid YAML ({getattr(exc, 'problem', exc)})"
        ) from exc
    if root is None:
        raise ConfigError(f"{path}:1: the file is empty")
    lines = node_lines(root)
    many = isinstance(data, dict) and "scenarios" in data
    items: list[tuple[Path_, Any]] = (
        [(("scenarios", i), item) for i, item in enumerate(data["scenarios"] or [])]
        if many
        else [((), data)]
    )
    problems: list[str] = []
    found: list[Scenario] = []
    for at, item in items:
        try:
            found.append(Scenario.model_validate(item))
        except ValidationError as exc:
            for error in exc.errors():
                where = (*at, *error["loc"])
                message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
                problems.append(f"{path}:{line_of(lines, where)}: {field_name(where)}: {message}")
    if problems:
        raise ConfigError("\n".join(problems))
    return found


def load_scenarios(target: Path) -> list[tuple[Path, Scenario]]:
    """Every scenario in a file or, recursively, in a folder's YAML files (sorted by path);
    the problems of every file at once."""
    files = (
        sorted(p for p in target.rglob("*") if p.suffix in SUFFIXES)
        if target.is_dir()
        else [target]
    )
    if not files:
        raise ConfigError(f"{target}: no scenario files (*.yaml)")
    loaded: list[tuple[Path, Scenario]] = []
    problems: list[str] = []
    for file in files:
        try:
            loaded.extend((file, scenario) for scenario in scenarios_in(file))
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems))
    return loaded
