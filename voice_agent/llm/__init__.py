"""Language-model clients (the OpenAI-compatible client, the bundled model, its supervised
process) and the guards that keep a generation inside a turn's budget.

May import: voice_agent.errors, voice_agent.listeners, voice_agent.tasks, voice_agent.types."""
