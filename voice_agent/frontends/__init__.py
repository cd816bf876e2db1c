"""Wire-format codecs, one module per frontend protocol (native, Twilio ConversationRelay,
Retell, OpenAI-compatible chat): frames in, call events out, and back. Nothing outside this
package knows a vendor's field name.

May import: voice_agent.errors, voice_agent.events, voice_agent.types."""
