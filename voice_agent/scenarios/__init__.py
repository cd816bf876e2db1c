"""Scenario tests for a team's flows: conversations in YAML with what each turn must do
(`model.py`, read by `loader.py` with errors that name the file, line and field, through
state_machine's YAML loader so a caller's "yes" stays words), played against a service over the
native call protocol (`runner.py`), with the service's own evidence where a step asks for it
(`evidence.py`: quality, the knowledge base, explain), judged turn by turn (`checks.py`, over
`outcome.py`'s plain data; `suite.py` runs one scenario through all of it), reworded by the
configured LLM (`paraphrase.py`) and reported for people and for CI (`report.py`).
`voice-agent test` runs them.

May import: voice_agent.errors, voice_agent.types."""
