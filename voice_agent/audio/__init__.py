"""Call audio: the telephone's own formats (G.711 mu-law at 8 kHz, 20 ms frames) to and from
16-bit linear samples, and sample-rate conversion, with numpy only (Python's `audioop` is gone
from 3.13). The ground for Twilio Media Streams calls, where the service hears and speaks.

May import: voice_agent.errors."""
