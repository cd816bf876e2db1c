"""The knowledge base: documents, chunks, and hybrid (BM25 + dense) retrieval over them."""
