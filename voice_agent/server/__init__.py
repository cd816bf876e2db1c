"""The running service: start-up wiring (`service`), the ASGI app and its routers (calls,
Retell, chat, admin, health), and `explain`. Everything may be imported here; nothing but the
command line imports this package.

May import: voice_agent."""
