"""Reading the Dockerfile, the Makefile and .dockerignore as their tools do, for the subset
these files use: continuation lines, comments, stages, `ENV a=b c=d`, `ARG a="..."`; Make's
`:=` variables inside `ifeq`/`else`; .dockerignore's last-match-wins patterns."""

from __future__ import annotations

import fnmatch
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(slots=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, ENV, ...
    text: str  # the arguments, continuation lines joined


@dataclass(slots=True)
class Stage:
    name: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.text for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        """The stage's ENV values, later ones winning (`$VAR` references left as written)."""
        values: dict[str, str] = {}
        for text in self.all("ENV"):
            for pair in shlex.split(text):
                key, _, value = pair.partition("=")
                values[key] = value
        return values


def instructions(text: str) -> list[Instruction]:
    """Docker's reading: comment lines dropped, a trailing backslash joins the next line."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", "", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            out.append(Instruction(keyword.upper(), rest.strip()))
    return out


def stages(text: str) -> tuple[dict[str, str], list[Stage]]:
    """The ARGs declared before the first FROM, and the stages in order."""
    global_args: dict[str, str] = {}
    found: list[Stage] = []
    for inst in instructions(text):
        if inst.keyword == "FROM":
            words = inst.text.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(found))
            found.append(Stage(name))
        elif found:
            found[-1].instructions.append(inst)
        elif inst.keyword == "ARG":
            key, _, value = inst.text.partition("=")
            global_args[key] = value
    return global_args, found


def arg_values(stage: Stage) -> dict[str, str]:
    """`ARG NAME="value"` defaults of a stage, unquoted."""
    values = {}
    for text in stage.all("ARG"):
        key, _, value = text.partition("=")
        values[key] = " ".join(shlex.split(value))
    return values


def make_variables(text: str) -> dict[str, dict[str, str]]:
    """`NAME := value` assignments, by the branch of an `ifeq` they sit in: "" outside any
    conditional, "if" in the first branch, "else" in the second."""
    joined = re.sub(r"\\\n\s*", " ", text)
    branch = ""
    found: dict[str, dict[str, str]] = {"": {}, "if": {}, "else": {}}
    for line in joined.splitlines():
        word = line.strip().split(" ")[0]
        if word in ("ifeq", "ifneq"):
            branch = "if"
        elif word == "else":
            branch = "else"
        elif word == "endif":
            branch = ""
        elif ":=" in line and not line.startswith("\t"):
            name, _, value = line.partition(":=")
            found[branch][name.strip()] = value.strip()
    return found


def ignored(patterns: list[str], path: str) -> bool:
    """Whether .dockerignore leaves `path` out of the build context: the last pattern that
    matches the path or one of its parent folders decides (`!` includes again)."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern.lstrip("!")
        forms = [body, body[3:]] if body.startswith("**/") else [body]
        for candidate in candidates:
            if any(_match(candidate, form) for form in forms):
                result = not negated
                break
    return result


def _match(candidate: str, form: str) -> bool:
    if form.startswith("**/"):  # any folder depth, zero included
        tail = form[3:]
        pieces = candidate.split("/")
        return any(_match("/".join(pieces[i:]), tail) for i in range(len(pieces)))
    # Go's filepath.Match: `*` stays within one path element.
    if candidate.count("/") != form.count("/"):
        return False
    return fnmatch.fnmatchcase(candidate, form)


def dockerignore_patterns(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]
