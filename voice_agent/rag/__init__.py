"""The knowledge base: documents, chunks, the sentence encoder, and hybrid (BM25 + dense)
retrieval over them.

May import: voice_agent.errors, voice_agent.turn, voice_agent.types."""
