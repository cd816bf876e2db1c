from __future__ import annotations

import json
from pathlib import Path

import pytest

from voice_agent.errors import KnowledgeBaseError
from voice_agent.rag.chunking import chunk_document
from voice_agent.rag.documents import Document, load_documents
from voice_agent.settings import DEMO_KB_PATH


def test_the_demo_knowledge_base_has_thirty_or_more_documents_with_titles() -> None:
    docs = load_documents(DEMO_KB_PATH)
    assert len(docs) >= 30
    assert all(d.title and d.text for d in docs)
    assert "readme" not in {d.id.lower() for d in docs}


def test_a_folder_reads_markdown_and_text_and_takes_the_title_from_the_heading(
    tmp_path: Path,
) -> None:
    (tmp_path / "hours.md").write_text("# Opening hours\n\nWe open at 9.\n")
    (tmp_path / "fees.txt").write_text("A transfer costs nothing.\n")
    (tmp_path / "ignored.pdf").write_bytes(b"%PDF")
    docs = {d.id: d for d in load_documents(tmp_path)}
    assert set(docs) == {"hours", "fees"}
    assert docs["hours"].title == "Opening hours"
    assert docs["hours"].text == "We open at 9."


def test_jsonl_documents_are_read_and_a_bad_line_is_named(tmp_path: Path) -> None:
    good = tmp_path / "kb.jsonl"
    good.write_text(json.dumps({"id": "a", "title": "A", "text": "alpha"}) + "\n")
    assert load_documents(good) == [Document("a", "A", "alpha")]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "a", "text": "x"}) + "\n{not json\n")
    with pytest.raises(KnowledgeBaseError, match=r"bad\.jsonl:2"):
        load_documents(bad)
    missing = tmp_path / "missing.jsonl"
    missing.write_text(json.dumps({"id": "a"}) + "\n")
    with pytest.raises(KnowledgeBaseError, match="text"):
        load_documents(missing)


def test_an_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeBaseError, match="no documents"):
        load_documents(tmp_path)


def test_chunks_keep_whole_paragraphs_under_the_word_limit() -> None:
    paragraphs = [" ".join([f"w{i}"] * 30) + "." for i in range(5)]
    doc = Document("d", "D", "\n\n".join(paragraphs))
    chunks = chunk_document(doc, max_words=70)
    assert [len(c.text.split()) for c in chunks] == [60, 60, 30]
    assert all(c.doc_id == "d" and c.title == "D" for c in chunks)


def test_a_long_paragraph_is_split_at_sentences() -> None:
    long = " ".join(f"Sentence number {i} is here." for i in range(40))
    chunks = chunk_document(Document("d", "D", long), max_words=50)
    assert len(chunks) > 1
    assert all(len(c.text.split()) <= 50 for c in chunks)
    assert all(c.text.endswith(".") for c in chunks)


def test_question_answer_pairs_become_chunks_of_their_own() -> None:
    text = "Q: When do you open?\nA: At 9.\n\nQ: Do you deliver?\nA: Yes, within 5 miles."
    chunks = chunk_document(Document("faq", "FAQ", text))
    assert [c.text for c in chunks] == [
        "Q: When do you open? A: At 9.",
        "Q: Do you deliver? A: Yes, within 5 miles.",
    ]
