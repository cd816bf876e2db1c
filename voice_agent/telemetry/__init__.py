"""What is measured of every finished turn: the turn event and its observers (log lines,
latency and quality trackers, shadow comparison, metrics export, the telemetry file and live
stream) and the cost report. Telemetry observes; it never steers what is served.

May import: voice_agent.errors, voice_agent.listeners, voice_agent.events, voice_agent.tasks,
voice_agent.turn, voice_agent.types, voice_agent.redaction, voice_agent.quality, voice_agent.rag."""
