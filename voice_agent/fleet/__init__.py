"""What the processes of a fleet share through Redis: the run-time flags (one versioned
document; a change on any process reaches every process's next turn).

May import: voice_agent.errors, voice_agent.flags, voice_agent.tasks, voice_agent.listeners."""
