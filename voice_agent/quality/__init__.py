"""How good an answer is, from explainable parts: the 0-100 score, the checks that find an
answer contradicting the retrieved text, and the lexicon (tokens, negations, numbers, filler
words) that they and the cache's guards read text by. Pure functions, no I/O.

May import: voice_agent.types, voice_agent.rag."""
