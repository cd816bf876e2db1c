"""One call: the session that owns its tasks, history and place in its flow (`session`), the
pure turn plan (mode, budgets, tiers from one flags snapshot: `plan`), a turn's delivery, the
history, intent matching, the silence timer, and speculation on partial transcripts; for audio
calls, the voice layer around the session (`voice`) and what the caller heard (`playback`).

May import: voice_agent.errors, voice_agent.events, voice_agent.tasks, voice_agent.turn,
voice_agent.types, voice_agent.utterance, voice_agent.flags, voice_agent.flows,
voice_agent.telemetry, voice_agent.audio, voice_agent.speech."""
