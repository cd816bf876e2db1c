"""Near-miss guards for the semantic cache: two questions close by embedding can still need
different answers. "my card arrived" and "my card hasn't arrived" differ by a negation; "the
fee to send to Europe" and "to Canada" by one word that changes the answer; "2 refills" and
"3 refills" by a number. Each guard returns why it refused the hit, or None."""

from __future__ import annotations

from quick_responses.guards import named_persons
from voice_agent.quality.lexicon import negated, numbers, topic_words, words

# Whose thing the question is about: "my order" and "your hours" want different answers.
_FIRST_PERSON = frozenset("i me my mine myself we us our ours".split())
_SECOND_PERSON = frozenset("you your yours yourself".split())
# The forms that name an owner or an object; "I" and "you" as subjects mostly only ask
# ("can you tell me ...", "I need ...").
_OWNERS = frozenset("me my mine myself us our ours your yours yourself".split())


def negation(query: str, stored: str) -> str | None:
    return "negation differs" if negated(query) != negated(stored) else None


def number(query: str, stored: str) -> str | None:
    return "numbers differ" if numbers(query) != numbers(stored) else None


def swapped_topic(query: str, stored: str) -> str | None:
    """The same question about another thing: every topic word shared but one, swapped for
    another ("fee to send money to Europe" / "to Canada"). Paraphrases change several words
    or only add some, and pass."""
    mine, theirs = topic_words(query), topic_words(stored)
    only_mine, only_theirs = mine - theirs, theirs - mine
    if len(only_mine) == 1 and len(only_theirs) == 1 and len(mine & theirs) >= 2:
        return f"different topic words: {min(only_mine)} / {min(only_theirs)}"
    return None


def persons(text: str, only_owners: bool = False) -> list[int]:
    """1 or 2 for each first- or second-person word, in order."""
    return [
        1 if w in _FIRST_PERSON else 2
        for w in words(text)
        if (w in _FIRST_PERSON or w in _SECOND_PERSON) and (not only_owners or w in _OWNERS)
    ]


def person(query: str, stored: str) -> str | None:
    """Whose thing is asked about differs: one question's owner is the caller and the other's
    the agent ("how do you say my name" / "how do you say your name"), or both speak of both
    with the roles swapped ("what do you call me" / "what do I call you", "call me Bob" / "I'm
    going to call you Xander"). A question that names no owner ("what's the name") passes
    against either."""
    mine, theirs = set(persons(query, True)), set(persons(stored, True))
    if mine and theirs and mine.isdisjoint(theirs):
        return "owner differs"
    order, other = persons(query), persons(stored)
    if set(order) == set(other) == {1, 2} and order[0] != other[0]:
        return "roles swapped"
    mine, theirs = named_persons(query), named_persons(stored)
    if mine and theirs and mine.isdisjoint(theirs):  # "call me Bob" / "I'll call you Xander"
        return "roles swapped"
    return None


def near_miss(query: str, stored: str, check_topics: bool) -> str | None:
    return (
        negation(query, stored)
        or number(query, stored)
        or person(query, stored)
        or (swapped_topic(query, stored) if check_topics else None)
    )
