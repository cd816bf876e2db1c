"""voice-agent: a latency-first conversation service for phone and voice agents.

The top level holds the small modules that every package shares (the contracts): `errors`, `events`
(what a frontend's codec and a call say to each other), `types` (the tiers', the LLM's and the
retriever's interfaces), `turn`, `utterance` (the words a turn answers, embedded once),
`redaction` (the caller's data kept out of what is written down), `tasks`, `listeners`, `flags`,
`flows` and `settings`. The command line (`cli/`, `__main__`) and the work
live in subpackages; each one's docstring says what it holds and, on its `May import:` line, which
other parts of `voice_agent` it may import (tests/test_import_rules.py checks it). The shared
modules import only each other.

May import: voice_agent.errors, voice_agent.listeners, voice_agent.events, voice_agent.flags,
voice_agent.flows, voice_agent.settings, voice_agent.tasks, voice_agent.turn, voice_agent.types,
voice_agent.utterance, voice_agent.redaction."""

__version__ = "0.1.0"
