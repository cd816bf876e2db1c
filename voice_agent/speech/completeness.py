"""A cheap guess whether a caller's words are a finished sentence, so the turn can end at the
first short pause instead of a long silence. Words that end on one which needs more after it
are not finished: a conjunction, preposition, article or possessive ("and", "to", "the", "my"),
a filler ("um"), an auxiliary or a subject ("can", "is", "I"), a verb that wants what follows
("I'd like to know", "tell me"), or a question's start ("can you"); nor are words that trail
off ("..."). Anything else is. A wrong "finished" costs a false cut-off, measured with lines
spoken with a pause in them in bench/audio_latency.py."""

from __future__ import annotations

import re

_NEEDS_MORE = frozenset(
    """
    and or but so because if then than that which who whose where when while although though
    whether to for of with without from at in on into onto about by as like after before until
    since per via the a an my your his her its our their this these those some any every each
    no um uh er erm hmm mm well i i'm im we you're we're they're he she they it's there's is
    are was were be been being am can could would will should shall may might must do does did
    have has had want wanna need needs get got gonna let also just really very know wondering
    wonder tell ask asking check find see say hear mean think
    """.split()
)
# Verbs whose object is followed by more ("tell me when", "can you ..."): "me" or "you" after
# one of them is a sentence still going. After anything else ("thank you", "help me") it ends.
_BEFORE_AN_OBJECT = frozenset(
    "tell show give let ask send get can could would will do did are were have has".split()
)
_OBJECTS = frozenset({"me", "you", "us"})
_WORD = re.compile(r"[a-z0-9']+")


def sounds_finished(text: str) -> bool:
    stripped = text.strip()
    if not stripped or stripped.endswith(("...", "…", ",", "-")):
        return False
    words = _WORD.findall(stripped.lower())
    if not words:
        return False
    last = words[-1]
    if last in _OBJECTS:
        return len(words) < 2 or words[-2] not in _BEFORE_AN_OBJECT
    return last not in _NEEDS_MORE
