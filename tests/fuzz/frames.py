"""Hypothesis strategies for what a broken client or an attacker sends: frames shaped like
each protocol's with fields missing, of the wrong type or full of hostile text, any JSON at
all, JSON nested deep or with enormous numbers, and random bytes (as text and as binary)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

# Text with what breaks things: lone surrogates (JSON escapes), control characters, very long.
hostile_text = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x1F), max_size=20),
    st.sampled_from(["\ud800", "hi \udfff there", "\x00", "\u202e", "a" * 5000, ""]),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), hostile_text)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def shaped(kinds: dict[str, list[str]], tag: str) -> st.SearchStrategy[str]:
    """A frame of one of the protocol's kinds: its fields present or not, each with a value
    of any type; unknown fields added now and then."""

    @st.composite
    def build(draw: st.DrawFn) -> str:
        kind = draw(st.sampled_from(sorted(kinds)))
        frame: dict[str, Any] = {tag: draw(st.one_of(st.just(kind), scalars))}
        for field in kinds[kind]:
            if draw(st.booleans()):
                frame[field] = draw(json_values)
        if draw(st.booleans()):
            frame.update(draw(st.dictionaries(st.text(max_size=8), json_values, max_size=2)))
        return json.dumps(frame)

    return build()


def nasty(depth: int, digits: int) -> list[str]:
    return ["[" * depth + "]" * depth, '{"a":' + "9" * digits + "}", "{" * depth, "NaN"]


raw = st.one_of(
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.sampled_from(nasty(5000, 5000)),
    json_values.map(json.dumps),
)

NATIVE = {
    "call.start": ["call_id", "flow", "metadata", "resume"],
    "user.utterance": ["text", "final"],
    "user.interrupt": ["heard"],
    "user.dtmf": ["digit"],
    "call.end": ["reason"],
}
TWILIO = {
    "setup": ["callSid", "from", "to", "customParameters"],
    "prompt": ["voicePrompt", "last", "lang"],
    "interrupt": ["utteranceUntilInterrupt", "durationUntilInterruptMs"],
    "dtmf": ["digit"],
    "error": ["description"],
}
RETELL = {
    "call_details": ["call"],
    "ping_pong": ["timestamp"],
    "update_only": ["transcript", "turntaking"],
    "response_required": ["response_id", "transcript"],
    "reminder_required": ["response_id", "transcript"],
}


def frames_for(kinds: dict[str, list[str]], tag: str) -> st.SearchStrategy[list[str | bytes]]:
    one: st.SearchStrategy[str | bytes] = st.one_of(
        shaped(kinds, tag), raw, st.binary(max_size=100)
    )
    return st.lists(one, min_size=1, max_size=4)
