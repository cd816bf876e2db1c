"""A cheap guess whether a caller's words are a finished sentence, so the turn can end at the
first short pause instead of a long silence. Recognized words that end on a word which needs
more after it ("and", "to", "my", "the", "um") or that trail off ("...") are not finished;
anything else is. A wrong "finished" costs a false cut-off, measured in bench/audio_latency.py."""

from __future__ import annotations

import re

# Words a sentence rarely ends on: conjunctions, prepositions, articles, possessives, fillers,
# and verbs that want an object.
_NEEDS_MORE = frozenset(
    """
    and or but so because if then than that which who whose where when while although though
    to for of with without from at in on into onto about by as like after before until since
    the a an my your his her its our their this these those some any every each no
    um uh er erm hmm mm well i i'm im we you they it's is are was were be been am
    can could would will should shall may might must do does did have has had want wanna
    need needs get got gonna let also just really very
    """.split()
)
# Words that often end a finished sentence as an object ("Thank you.", "Can you help me?"), and
# as often a subject or the start of one ("Can you", "Tell me"): finished only when the
# recognizer heard the sentence end (its punctuation).
_OBJECTS = frozenset({"you", "me"})
_WORD = re.compile(r"[a-z0-9']+")


def sounds_finished(text: str) -> bool:
    stripped = text.strip()
    if not stripped or stripped.endswith(("...", "…", ",", "-")):
        return False
    words = _WORD.findall(stripped.lower())
    if not words:
        return False
    if words[-1] in _OBJECTS:
        return stripped.endswith((".", "?", "!")) and len(words) > 2
    return words[-1] not in _NEEDS_MORE
