"""The response cache: the store (scopes, exact and semantic layers, answer groups), the pure
semantic decision (policy), near-miss guards, the per-scope question index, the Redis-shared
layer, and warming from FAQ pairs and warm files. The tier that serves from it is
`voice_agent.tiers.cache`.

May import: voice_agent.errors, voice_agent.events, voice_agent.tasks, voice_agent.turn,
voice_agent.types, voice_agent.utterance, voice_agent.quality, voice_agent.rag."""
