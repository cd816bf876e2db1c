"""The import rules of docs/architecture.md hold: the libraries never import voice_agent, and
each part of voice_agent imports only what the `May import:` line of its package's docstring
allows (the top level's own line for the shared modules; the command line may import anything)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIBRARIES = ("quick_responses", "state_machine")
ENTRY_POINTS = {"voice_agent.__main__"}


def imported_modules(source: str, module: str) -> set[str]:
    """Every module an import statement in `source` names, relative imports resolved against
    `module`, `from voice_agent import x` read as `voice_agent.x`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")[: -node.level]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if base == "voice_agent")
    return {name for name in found if name != "voice_agent"}


def allowed_imports(docstring: str | None) -> tuple[str, ...]:
    match = re.search(r"^May import:(.*)", docstring or "", re.M | re.S)
    assert match, "the package docstring needs a 'May import:' line"
    return tuple(name.strip(" .\n") for name in match.group(1).split(",") if name.strip(" .\n"))


def rule_breaks(module: str, source: str, allowed: tuple[str, ...], own: str) -> list[str]:
    """The imports of `module` into voice_agent that are neither its own package's nor allowed."""
    breaks = []
    for name in sorted(imported_modules(source, module)):
        if not name.startswith("voice_agent."):
            continue
        if name == own or name.startswith(own + "."):
            continue
        if not any(name == a or name.startswith(a + ".") or a == "voice_agent" for a in allowed):
            breaks.append(f"{module} imports {name}")
    return breaks


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def docstring_of(path: Path) -> str | None:
    return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))


def test_the_libraries_never_import_voice_agent() -> None:
    breaks = [
        f"{module_name(path)} imports {name}"
        for library in LIBRARIES
        for path in sorted((ROOT / library).rglob("*.py"))
        for name in imported_modules(path.read_text(encoding="utf-8"), module_name(path))
        if name == "voice_agent" or name.startswith("voice_agent.")
    ]
    assert breaks == []


def test_every_part_of_voice_agent_imports_only_what_its_docstring_allows() -> None:
    package_root = ROOT / "voice_agent"
    top_allowed = allowed_imports(docstring_of(package_root / "__init__.py"))
    breaks: list[str] = []
    checked = 0
    for path in sorted(package_root.rglob("*.py")):
        module = module_name(path)
        relative = path.relative_to(package_root)
        if module in ENTRY_POINTS or module == "voice_agent":
            continue
        if len(relative.parts) == 1:
            allowed, own = top_allowed, module
        else:
            package = package_root / relative.parts[0]
            allowed = allowed_imports(docstring_of(package / "__init__.py"))
            own = f"voice_agent.{relative.parts[0]}"
        breaks += rule_breaks(module, path.read_text(encoding="utf-8"), allowed, own)
        checked += 1
    assert checked > 50
    assert breaks == []


def test_every_name_a_docstring_allows_exists() -> None:
    package_root = ROOT / "voice_agent"
    inits = [package_root / "__init__.py", *sorted(package_root.glob("*/__init__.py"))]
    missing = [
        f"{init.parent.name}: {name}"
        for init in inits
        for name in allowed_imports(docstring_of(init))
        if name != "voice_agent"
        and not (ROOT / name.replace(".", "/")).is_dir()
        and not (ROOT / (name.replace(".", "/") + ".py")).is_file()
    ]
    assert len(inits) > 8
    assert missing == []


def test_a_forbidden_import_is_reported_and_an_allowed_one_is_not() -> None:
    source = (
        "from voice_agent.server.app import create_app\n"
        "from voice_agent import types\n"
        "def later():\n"
        "    import voice_agent.rag.encoder\n"
        "from .store import ResponseCache\n"
    )
    allowed = ("voice_agent.types", "voice_agent.rag")
    breaks = rule_breaks("voice_agent.cache.policy", source, allowed, "voice_agent.cache")
    assert breaks == ["voice_agent.cache.policy imports voice_agent.server.app"]
    assert "voice_agent.cache.store" in imported_modules(source, "voice_agent.cache.policy")
