"""voice-agent: a latency-first conversation service for phone and voice agents."""

__version__ = "0.1.0"
