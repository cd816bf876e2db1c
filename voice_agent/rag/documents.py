"""Reads knowledge-base documents: a folder of .md/.txt files, one file, or a .jsonl file of
{"id", "title", "text"} objects."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voice_agent.errors import KnowledgeBaseError

TEXT_SUFFIXES = {".md", ".txt"}


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    title: str
    text: str


def _from_text_file(path: Path, doc_id: str) -> Document:
    text = path.read_text(encoding="utf-8").strip()
    title = path.stem.replace("-", " ").replace("_", " ").strip().capitalize()
    first, _, rest = text.partition("\n")
    if first.startswith("#"):
        title = first.lstrip("#").strip() or title
        text = rest.strip()
    return Document(id=doc_id, title=title, text=text)


def document_from_mapping(raw: Any, where: str) -> Document:
    if not isinstance(raw, dict):
        raise KnowledgeBaseError(f"{where}: expected an object with id, title and text")
    missing = [k for k in ("id", "text") if not isinstance(raw.get(k), str) or not raw[k].strip()]
    if missing:
        raise KnowledgeBaseError(f"{where}: missing or empty field(s) {', '.join(missing)}")
    title = raw.get("title")
    return Document(
        id=raw["id"].strip(),
        title=title.strip() if isinstance(title, str) and title.strip() else raw["id"].strip(),
        text=raw["text"].strip(),
    )


def _from_jsonl(path: Path) -> list[Document]:
    docs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise KnowledgeBaseError(f"{path}:{number}: not JSON ({exc.msg})") from exc
        docs.append(document_from_mapping(raw, f"{path}:{number}"))
    return docs


def load_documents(path: Path) -> list[Document]:
    """Every document under `path`; raises KnowledgeBaseError naming the bad file or line."""
    if not path.exists():
        raise KnowledgeBaseError(f"{path} does not exist")
    if path.is_file():
        if path.suffix == ".jsonl":
            docs = _from_jsonl(path)
        elif path.suffix in TEXT_SUFFIXES:
            docs = [_from_text_file(path, path.stem)]
        else:
            raise KnowledgeBaseError(f"{path}: expected .md, .txt or .jsonl")
    else:
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and p.suffix in TEXT_SUFFIXES and p.name.lower() != "readme.md"
        )
        docs = [_from_text_file(p, p.relative_to(path).with_suffix("").as_posix()) for p in files]
        for jsonl in sorted(path.rglob("*.jsonl")):
            docs.extend(_from_jsonl(jsonl))
    docs = [d for d in docs if d.text]
    if not docs:
        raise KnowledgeBaseError(f"{path}: no documents with text")
    return docs
