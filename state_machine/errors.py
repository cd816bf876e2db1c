"""Errors of the flow library.

FlowError           a flow file is wrong: `where` names the file, state and field
TransitionError     an event the current state cannot take (named with the state)
"""

from __future__ import annotations


class FlowError(Exception):
    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.message = message


class TransitionError(Exception):
    def __init__(self, state: str, event: str, reason: str) -> None:
        super().__init__(f"state {state!r} cannot take {event}: {reason}")
        self.state = state
        self.event = event
        self.reason = reason
