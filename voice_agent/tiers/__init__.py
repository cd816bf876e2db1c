"""The tiers that answer a caller's turn, behind one interface (`voice_agent.types.Responder`):
quick responses, the response cache, the knowledge base with the LLM; and the chain that tries
them in order, itself a tier.

May import: voice_agent.errors, voice_agent.events, voice_agent.tasks, voice_agent.turn,
voice_agent.types, voice_agent.utterance, voice_agent.redaction, voice_agent.cache,
voice_agent.llm, voice_agent.quality, voice_agent.rag, voice_agent.listeners."""
