"""The chat endpoint's per-turn queue is bounded without losing words: a response read slowly
holds its turn back, and the end of the turn always arrives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from dataclasses import replace
from typing import Any

from voice_agent.server.chat import ChatCall, answer_pieces
from voice_agent.server.service import Service
from voice_agent.tiers.chain import ResponderChain
from voice_agent.types import Reply, TurnRequest

from ..fakes import settle

WORDS = [f"word{n} " for n in range(40)]


class ManyPieces:
    """Answers with WORDS; `past` is set when it hands out the piece after the first `room`."""

    name = "knowledge"

    def __init__(self, room: int) -> None:
        self.room = room
        self.past = asyncio.Event()

    async def respond(self, request: TurnRequest) -> Reply:
        async def pieces() -> AsyncGenerator[str, None]:
            for n, word in enumerate(WORDS):
                if n >= self.room:  # the queue holds `room`: this piece waits for the reader
                    self.past.set()
                yield word

        return Reply(source="llm", pieces=pieces())


async def filled(tier: ManyPieces, queue: asyncio.Queue[Any]) -> None:
    async with asyncio.timeout(10):  # the turn embeds the question on the encoder's thread first
        await tier.past.wait()
    await settle()
    assert queue.full()


async def small_queue_call(service: Service, tier: ManyPieces) -> ChatCall:
    """A chat call answered by `tier` whose turns queue at most `tier.room` pieces."""
    call = ChatCall(replace(service, responder=ResponderChain([tier], "sorry")), tier.room)
    await call.start(None)
    return call


async def test_a_turn_longer_than_its_queue_arrives_whole_with_its_end(
    make_service: Callable[..., Service],
) -> None:
    tier = ManyPieces(room=4)
    call = await small_queue_call(make_service(), tier)
    queue = await call.ask("tell me everything", [])
    await filled(tier, queue)  # the turn fills the queue and waits for the reader
    async with asyncio.timeout(10):
        text = "".join([piece async for piece in answer_pieces(queue)])
    assert text.strip() == "".join(WORDS).strip()
    await call.session.close()


async def test_a_newer_request_ends_the_older_stream_even_when_its_queue_is_full(
    make_service: Callable[..., Service],
) -> None:
    tier = ManyPieces(room=4)
    call = await small_queue_call(make_service(), tier)
    older = await call.ask("tell me everything", [])
    await filled(tier, older)
    newer = await call.ask("and again", [])
    async with asyncio.timeout(10):
        cut = "".join([piece async for piece in answer_pieces(older)])
        whole = "".join([piece async for piece in answer_pieces(newer)])
    assert len(cut) < len("".join(WORDS)) and whole.strip() == "".join(WORDS).strip()
    await call.session.close()
