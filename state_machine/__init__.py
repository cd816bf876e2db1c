"""state_machine: declarative per-call flows, loaded from YAML and stepped by pure functions.

A library that knows nothing of the service: `load_flow` reads and checks a flow file,
`start` and `step` move a call through it, `mermaid` draws it.
"""

from state_machine.checks import Problem, check_flow, load_flow
from state_machine.engine import (
    Answered,
    CallState,
    Decision,
    Dtmf,
    Event,
    Silence,
    Utterance,
    candidate_intents,
    start,
    step,
)
from state_machine.errors import FlowError, TransitionError
from state_machine.graph import mermaid
from state_machine.loader import YamlLoader, parse_flow, read_flow
from state_machine.model import Action, Budgets, Collect, Flow, State

__all__ = [
    "Action", "Answered", "Budgets", "CallState", "Collect", "Decision", "Dtmf", "Event",
    "Flow", "FlowError", "Problem", "Silence", "State", "TransitionError", "Utterance",
    "YamlLoader", "candidate_intents", "check_flow", "load_flow", "mermaid", "parse_flow",
    "read_flow", "start", "step",
]  # fmt: skip
