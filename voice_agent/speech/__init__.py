"""Speech for audio calls: the engines that hear (recognition), speak (synthesis) and notice
speech (voice activity), behind small contracts (`engines`), with the offline defaults loaded
from registry packages and OpenAI-compatible endpoints as the production option; turn taking
over voice-activity decisions, pure (`turn_taking`, `completeness`); the sentences a reply is
spoken in (`sentences`); and the phrasebook of audio made ahead for the fast tiers.

May import: voice_agent.audio, voice_agent.errors, voice_agent.tasks."""
