"""Wire-format codecs, one module per frontend protocol (native, Twilio ConversationRelay,
Twilio Media Streams, Retell, OpenAI-compatible chat): frames in, call events out, and back.
Nothing outside this package knows a vendor's field name. The telephone's audio format (frame
size, rate, mu-law) comes from `voice_agent.audio`.

May import: voice_agent.errors, voice_agent.events, voice_agent.types, voice_agent.audio."""
