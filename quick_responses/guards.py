"""Guards: an utterance that carries more than its small-talk intent goes on to the next tier.

"thanks, and what's the fee?" is close to "thanks" by embedding, but a template would leave
the question unanswered, which is worse than a slow answer. Each guard returns why it fired,
or None. They apply to embedding matches; an utterance that is exactly an example passes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_CLAUSE_BREAK = re.compile(r"[,;:.!?]+|\b(?:and|but|also|plus|then|though|however|except)\b")
_DIGIT = re.compile(r"\d")

WH_WORDS = frozenset({"what", "when", "where", "why", "which", "who", "whom", "whose", "how"})

# Words that carry no request of their own: function words and spoken fillers.
FUNCTION_WORDS = frozenset(
    """a an the and or but so if then than that this these those it its it's i i'm i'd i've
    i'll me my mine myself you you're you'll you've your yours we we're our us they them
    their he she him her his is am are was were be been being do does did doing done have
    has had having will would shall should can could may might must to of in on at by for
    with from about as into over up down out off just very really quite too also there here
    now well oh um uh er ah hmm mm okay ok alright all right yes yeah no not please sir
    ma'am miss mister dear gosh wow hey hi hello""".split()
)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def vocabulary(examples: Iterable[str]) -> frozenset[str]:
    return frozenset(w for example in examples for w in words(example))


def digits(text: str) -> str | None:
    """Small talk never needs a number; a number means an account, a date, a price."""
    return "a number" if _DIGIT.search(text) else None


def unknown_words(text: str, known: frozenset[str]) -> list[str]:
    return [w for w in words(text) if w not in known and w not in FUNCTION_WORDS]


def extra_content(text: str, known: frozenset[str], allowed: int) -> str | None:
    """More words than `allowed` that no small-talk example uses: a topic of its own."""
    unknown = unknown_words(text, known)
    if len(unknown) > allowed:
        return f"words beyond small talk: {' '.join(unknown[:4])}"
    return None


def question(text: str, intent_words: frozenset[str], intent_is_question: bool) -> str | None:
    """A question word the intent's own examples never use ("thanks, when do you close")."""
    if intent_is_question:
        extra = [w for w in words(text) if w in WH_WORDS and w not in intent_words]
    else:
        extra = [w for w in words(text) if w in WH_WORDS]
    return f"a question ({extra[0]})" if extra else None


def clauses(text: str) -> list[str]:
    return [c.strip() for c in _CLAUSE_BREAK.split(text.lower()) if c and c.strip()]


def compound(text: str, known: frozenset[str], is_example: Callable[[str], bool]) -> str | None:
    """Two clauses or more, one of which brings a topic of its own: "yes but I also need a
    refill", "thanks, and what's the fee?". A clause passes when it is an example or every
    word in it is small talk: "great, talk to you later" and "thanks and bye" pass."""
    parts = clauses(text)
    if len(parts) < 2:
        return None
    for part in parts:
        if not is_example(part) and unknown_words(part, known):
            return f"a second clause: {part!r}"
    return None


# Possessives: "let me know if you're a bot" is about the agent; "what's my name" is not.
CALLER_WORDS = frozenset({"my", "mine"})


def about_the_caller(text: str, intent_words: frozenset[str]) -> str | None:
    """ "what's my name" is not "what's your name": in a question about the agent, the caller's
    possessives that the intent's own examples never use make it a request."""
    extra = [w for w in words(text) if w in CALLER_WORDS and w not in intent_words]
    return f"about the caller ({extra[0]})" if extra else None


SECOND_PERSON = frozenset(
    {"you", "your", "yours", "yourself", "u", "ur", "ya", "you're", "youre", "you've", "you'll"}
)
# Words by which a question reaches the agent or this call: "who made you", "who built this",
# "who makes the ai".
ADDRESS_WORDS = SECOND_PERSON | {
    "this",
    "ai",
    "bot",
    "robot",
    "assistant",
    "computer",
    "machine",
    "program",
    "system",
    "software",
}
# A naming verb and the person it names: "what do you call me", "I'll call you Xander". "Tell
# me" and "talking to me" only say who asks.
_NAMING = re.compile(
    r"\b(?:call(?:s|ed|ing)?|refer(?:s|red|ring)? to|address(?:es|ing)?|name)\s+(me|us|you)\b"
)


def named_persons(text: str) -> set[int]:
    """1 (the caller) or 2 (the agent) for each person a naming verb takes as its object."""
    return {1 if who in ("me", "us") else 2 for who in _NAMING.findall(text.lower())}


def addresses_the_agent(text: str) -> bool:
    return not ADDRESS_WORDS.isdisjoint(words(text))


def unaddressed(text: str) -> str | None:
    """For an intent whose every example speaks to the agent ("who made you", "who built this
    system"), a question that speaks to no one asks about something else: "who invented the
    internet"."""
    return None if addresses_the_agent(text) else "not about the agent"


def caller_as_object(text: str) -> str | None:
    """ "how do you refer to me" is about the caller's name, "what should I call you" about the
    agent's: the caller is the one named."""
    return "about the caller (me)" if 1 in named_persons(text) else None
