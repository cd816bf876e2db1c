"""state_machine: declarative per-call flows, loaded from YAML and stepped by pure functions.

A library that knows nothing of the service. Its engine arrives with the issue
"state_machine: declarative per-call flows"; until then every call stays in one state.
"""
