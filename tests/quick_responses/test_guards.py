"""The guards and the pack mechanics, without models."""

from __future__ import annotations

import numpy as np
import pytest

from quick_responses import guards
from quick_responses.pack import PackError, parse_pack, pick_variant, render
from quick_responses.responder import QuickResponder

KNOWN = guards.vocabulary(["thanks", "thank you so much", "bye", "yes that's right", "hello"])


@pytest.mark.parametrize("text", ["yes 123456", "thanks, it's 4 5 6"])
def test_a_number_is_never_small_talk(text: str) -> None:
    assert guards.digits(text) == "a number"


def test_a_second_clause_with_a_topic_of_its_own_is_caught() -> None:
    def exact(part: str) -> bool:
        return part in {"thanks", "bye", "yes"}

    assert guards.compound("yes but I also need a refill", KNOWN, exact)
    assert guards.compound("thanks, and what's the fee?", KNOWN, exact)
    assert guards.compound("thanks and bye", KNOWN, exact) is None
    assert guards.compound("yes, that's right", KNOWN, exact) is None
    assert guards.compound("thank you so much", KNOWN, exact) is None  # one clause


def test_question_words_are_allowed_only_where_the_intent_uses_them() -> None:
    how_are_you = guards.vocabulary(["how are you", "how's it going"])
    assert guards.question("thanks when do you close", KNOWN, False) == "a question (when)"
    assert guards.question("how are you doing", how_are_you, True) is None
    assert guards.question("how are you and where are you", how_are_you, True)


def test_words_beyond_small_talk_count_against_an_allowance() -> None:
    assert guards.extra_content("thanks so much", KNOWN, 0) is None
    assert guards.extra_content("thanks for the prescription refill", KNOWN, 1)
    assert guards.extra_content("thanks buddy", KNOWN, 1) is None


def test_the_callers_possessive_turns_a_question_about_the_agent_into_a_request() -> None:
    name = guards.vocabulary(["what's your name", "tell me your name"])
    assert guards.about_the_caller("what's my name", name) == "about the caller (my)"
    assert guards.about_the_caller("let me know your name", name) is None


def test_a_question_about_the_agent_that_ends_on_the_caller_is_about_the_caller() -> None:
    assert guards.caller_as_object("how do you refer to me") == "about the caller (me)"
    assert guards.caller_as_object("what do you call me") == "about the caller (me)"
    for about_the_agent in (
        "what should I call you",
        "tell me your name",
        "who am I speaking with",
    ):
        assert guards.caller_as_object(about_the_agent) is None


def test_a_question_that_speaks_to_no_one_is_not_about_the_agent() -> None:
    assert guards.unaddressed("who invented the internet") == "not about the agent"
    assert guards.unaddressed("who built this system") is None
    assert guards.unaddressed("who made you") is None
    assert guards.unaddressed("who makes the ai") is None


def test_the_agent_guards_apply_where_the_intents_own_examples_never_trip_them() -> None:
    pack = parse_pack(
        {
            "name": "t",
            "intents": {
                "who_made_you": {"examples": ["who made you", "who built this system"],
                                 "responses": ["A team."], "question": True},
                "repeat": {"examples": ["say that again", "pardon me"], "responses": ["Sure."],
                           "repeat_last": True, "question": True},
            },
        },
        "t.yaml",
    )  # fmt: skip
    quick = QuickResponder(pack, np.eye(4, 8, dtype=np.float32))
    made, pardon = np.eye(4, 8, dtype=np.float32)[0], np.eye(4, 8, dtype=np.float32)[3]
    # Embedding matches (vectors equal to an example's), so the guards decide.
    assert quick.decide("who invented the internet", made).guard == "not about the agent"
    assert quick.decide("who made you then", made).guard is None
    assert quick.decide("what do you call me", made).guard == "about the caller (me)"
    assert quick.decide("say that again for me", pardon).guard is None  # "pardon me": its own


PACK = {
    "name": "t",
    "intents": {
        "thanks": {"examples": ["thanks", "thank you"],
                   "responses": ["You're welcome!", "Any time."]},
        "greeting": {"examples": ["hello"], "responses": ["Hi, this is {business}."]},
        "repeat": {"examples": ["say that again"], "responses": ["Sure."], "repeat_last": True,
                   "question": True},
        "unintelligible": {"examples": ["um"], "responses": ["Sorry?"]},
    },
    "overrides": {"ask_rx": {"thanks": ["Thanks! Your number, please?"]}},
}  # fmt: skip


def responder() -> QuickResponder:
    pack = parse_pack(PACK, "t.yaml")
    count = sum(len(i.examples) for i in pack.intents.values())
    return QuickResponder(pack, np.eye(count, 8, dtype=np.float32))


def test_exact_examples_and_noise_need_no_embedding() -> None:
    quick = responder()
    assert not quick.needs_vector("Thanks!")
    assert not quick.needs_vector("(unintelligible audio)")
    assert quick.needs_vector("thanks a million")
    assert quick.decide("", None).intent == "unintelligible"
    assert quick.decide("[inaudible]", None).intent == "unintelligible"
    assert quick.decide("THANK YOU.", None).kind == "exact"


def test_match_returns_the_template_for_the_state_or_nothing() -> None:
    quick = responder()
    match = quick.match("thanks")
    assert match is not None and (match.intent, match.template) == ("thanks", "You're welcome!")
    in_state = quick.match("thanks", state="ask_rx")
    assert in_state is not None and in_state.template == "Thanks! Your number, please?"
    assert quick.match("thanks", allowed=["greeting"]) is None
    assert quick.match("something else entirely") is None


def test_replies_fill_placeholders_vary_and_repeat_the_last_turn() -> None:
    quick = responder()
    thanks = quick.decide("thanks")
    assert quick.reply(thanks, None, {}, [], None)[0] == "You're welcome!"
    assert quick.reply(thanks, None, {}, ["You're welcome!"], None)[0] == "Any time."
    hello = quick.decide("hello")
    assert quick.reply(hello, None, {"business": "Maple"}, [], None)[0] == "Hi, this is Maple."
    again = quick.decide("say that again")
    assert quick.reply(again, None, {}, [], "We open at 9.")[0] == "Sure. We open at 9."


def test_render_and_variants() -> None:
    assert render("Hi {business}, {unknown}!", {"business": "Maple"}) == "Hi Maple, !"
    assert pick_variant(["a", "b"], ["a", "b"]) == "a"


def test_a_malformed_pack_names_the_field() -> None:
    bad = {"intents": {"thanks": {"examples": "thanks", "responses": ["ok"]}}}
    with pytest.raises(PackError, match=r"intents\.thanks\.examples"):
        parse_pack(bad, "p.yaml")
    with pytest.raises(PackError, match="threshold"):
        parse_pack(PACK, "p.yaml", {"thanks": 2.5})
