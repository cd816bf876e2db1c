"""The quality score: each part moves the way it should, non-answers are capped, and
POST /v1/quality/score explains a score with its parts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from voice_agent.quality.contradiction import opposite
from voice_agent.quality.score import (
    CONTRADICTED_CAP,
    QualityScore,
    quantities,
    score_answer,
    speech,
)
from voice_agent.rag.encoder import Encoder
from voice_agent.server.service import Service

pytestmark = pytest.mark.model

QUESTION = "What time do you open on Saturday?"
PASSAGE = "Maple Street Pharmacy opens at 9 AM on Saturdays and closes at 6 PM."
FAQ_SUNDAY = (
    "Q: Are you open on Sunday? A: Yes. Maple Street Pharmacy is open on Sundays from 10 AM to "
    "4 PM."
)
PAYMENT = (
    "Maple Street Pharmacy accepts cash, debit cards, and credit cards including Visa, "
    "Mastercard, American Express and Discover. Maple Street Pharmacy does not accept personal "
    "checks."
)


def scored(
    encoder: Encoder,
    answer: str,
    context: str | None = None,
    outcome: str = "answer",
    question: str = QUESTION,
) -> QualityScore:
    texts = [question, answer] + ([context] if context else [])
    vectors = encoder.encode_sync(texts)
    passages = [(context, vectors[2])] if context else None
    return score_answer(answer, vectors[0], vectors[1], passages, outcome, question=question)


def test_an_answer_to_the_question_outscores_an_answer_to_another(encoder: Encoder) -> None:
    right = scored(encoder, "We open at 9 AM on Saturdays.")
    wrong = scored(encoder, "Free parking is in the lot behind the building.")
    assert right.score > 75 > wrong.score
    assert right.parts["relevance"] > wrong.parts["relevance"]


def test_a_made_up_hour_is_less_grounded_than_the_documented_one(encoder: Encoder) -> None:
    true = scored(encoder, "We open at 9 AM on Saturdays.", PASSAGE)
    made_up = scored(encoder, "We open at 7 AM on Saturdays.", PASSAGE)
    assert true.parts["grounding"] > made_up.parts["grounding"]
    assert true.score > made_up.score


def test_an_hour_with_the_wrong_half_of_the_day_is_not_supported(encoder: Encoder) -> None:
    assert quantities("We close at 9 PM, 10 miles out.") == {"9 pm", "10 mile"}
    true = scored(encoder, "We close at 6 PM on Saturdays.", PASSAGE)
    made_up = scored(encoder, "We close at 9 PM on Saturdays.", PASSAGE)  # 9 is there, as 9 AM
    assert true.parts["grounding"] > made_up.parts["grounding"]


@pytest.mark.parametrize(
    ("question", "answer", "passage"),
    [
        (
            "Do you deliver prescriptions?",
            "No, we do not deliver prescriptions.",
            "Maple Street Pharmacy offers free prescription delivery within 5 miles. There is "
            "no minimum order for a delivery that includes a prescription.",
        ),
        (
            "Are you open on Christmas?",
            "We are open on Christmas Day.",
            "Maple Street Pharmacy is closed on Thanksgiving Day and Christmas Day.",
        ),
        ("What time do you close on Saturday?", "We open on Saturdays at 9 AM.", PASSAGE),
        # One negation turning the verb over is not also a second negation of its object.
        ("Can I pay with a credit card?", "We do not accept credit cards.", PAYMENT),
        ("Do you take personal checks?", "Yes, we accept personal checks.", PAYMENT),
        # Issue 13's case: the negation of the verb reaches "with a credit card".
        (
            "Can I pay with a credit card?",
            "No, you cannot pay with a credit card. You need to use your local bank's ATM.",
            PAYMENT,
        ),
        # One clause of two denied: the other clause must not hide it.
        ("What time do you open on Saturday?", "Maple Street Pharmacy does not open at 9 AM "
         "on Saturdays and closes at 6 PM.", PASSAGE),
        # The same claim with another number.
        ("What time do you open on Saturday?", "Maple Street Pharmacy opens at 10 AM on "
         "Saturdays.", PASSAGE),
        # A no where the knowledge base's own answer to the question is yes.
        ("Are you open on Sunday?", "No, we stay shut all day.", FAQ_SUNDAY),
        ("Are you open on Sunday?", "No. Maple Street Pharmacy is open on Sundays.", FAQ_SUNDAY),
    ],
)  # fmt: skip
def test_an_answer_that_says_the_opposite_or_the_other_side_loses_its_consistency(
    encoder: Encoder, question: str, answer: str, passage: str
) -> None:
    wrong = scored(encoder, answer, passage, question=question)
    assert wrong.parts["consistency"] == 0.0 and wrong.notes


@pytest.mark.parametrize(
    ("question", "answer", "passage"),
    [
        (
            "Do you deliver prescriptions?",
            "Yes, we deliver prescriptions free within 5 miles.",
            "Maple Street Pharmacy offers free prescription delivery within 5 miles. There is "
            "no minimum order for a delivery that includes a prescription.",
        ),
        (
            "Do you deliver far away?",
            "We do not deliver beyond 10 miles.",
            "Maple Street Pharmacy does not deliver beyond 10 miles, but mail order is available.",
        ),
        ("What time do you close on Saturday?", "We close at 6 PM and open at 9 AM.", PASSAGE),
        ("Are you open on Christmas?", "No, we are closed on Christmas Day.",
         "Maple Street Pharmacy is closed on Thanksgiving Day and Christmas Day."),
        ("How late are you open on Saturday?", "We close at 6 PM on Saturdays.", PASSAGE),
        ("Do you take personal checks?", "No, we do not accept personal checks.", PAYMENT),
        ("Can I pay with a credit card?", "Yes, we accept credit cards.", PAYMENT),
        ("Are you open on Sunday?", "Yes, from 10 AM to 4 PM.", FAQ_SUNDAY),
        ("What time do you open on Saturday?", "We open at 9 AM on Saturdays.", PASSAGE),
        # A list is not a set of clauses: "debit cards" is an item, not a claim.
        ("Can I pay with a debit card?", "Yes, we accept cash and debit cards.", PAYMENT),
    ],
)  # fmt: skip
def test_a_right_answer_keeps_its_consistency(
    encoder: Encoder, question: str, answer: str, passage: str
) -> None:
    assert scored(encoder, answer, passage, question=question).parts["consistency"] == 1.0


def test_a_contradicted_answer_scores_below_the_cache_gate(encoder: Encoder) -> None:
    right = scored(encoder, "Yes, we accept credit cards.", PAYMENT, question="Can I pay by card?")
    denied = scored(
        encoder, "We do not accept credit cards.", PAYMENT, question="Can I pay by card?"
    )
    assert right.score >= 60 and denied.score <= CONTRADICTED_CAP < 60


def test_answers_unfit_for_speech_lose_points() -> None:
    assert speech("We open at 9 AM on Saturdays.") == (1.0, [])
    fit, notes = speech("**Hours**: see https://example.com for hours hours hours hours hours")
    assert fit < 0.5 and {"markdown", "link", "repeats itself"} <= set(notes)


def test_fallbacks_and_timeouts_are_capped_low(encoder: Encoder) -> None:
    line = "Sorry, I can't look that up right now. Could you ask me again in a moment?"
    assert scored(encoder, line, outcome="fallback").score <= 20
    assert scored(encoder, line, outcome="timeout").score <= 10


async def test_the_score_endpoint_returns_the_score_and_its_parts(
    make_service: Callable[..., Service], running: Any
) -> None:
    async with running(make_service()) as url, httpx.AsyncClient(base_url=url) as http:
        grounded = await http.post(
            "/v1/quality/score",
            json={"question": QUESTION, "answer": "We open at 9 AM.", "context": PASSAGE},
        )
        plain = await http.post(
            "/v1/quality/score", json={"question": QUESTION, "answer": "We open at 9 AM."}
        )
        bad = await http.post("/v1/quality/score", json={"question": QUESTION})
    assert grounded.status_code == 200 and set(grounded.json()["parts"]) == {
        "relevance",
        "speech",
        "grounding",
        "consistency",
    }
    assert "grounding" not in plain.json()["parts"] and plain.json()["score"] > 75
    assert bad.status_code == 422


def test_a_sentence_found_in_two_passages_is_still_compared() -> None:
    # Two passages holding the same sentence (and its clauses) once emptied the closest
    # claims and crashed the turn that scored the answer.
    passage = "Maple Street Pharmacy opens at 9 AM on Saturdays and closes at 6 PM on Saturdays."
    said = "Maple Street Pharmacy does not open at 9 AM on Saturdays."
    assert opposite(said, [passage, passage]) is not None
    assert opposite("Maple Street Pharmacy opens at 9 AM on Saturdays.", [passage, passage]) is None
