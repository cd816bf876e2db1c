"""Scenario tests for a team's flows: conversations in YAML with what each turn must do
(`model.py`, read by `loader.py` with errors that name the file, line and field), run against
a service over the native call protocol (`runner.py`), judged turn by turn (`checks.py`) and
reported for people and for CI (`report.py`). `voice-agent test` runs them.

May import: voice_agent.errors, voice_agent.types."""
