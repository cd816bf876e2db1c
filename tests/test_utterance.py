"""An utterance computes its embedding once for the whole turn, however many tiers ask at the
same time, and a computation that failed is not kept."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from voice_agent.turn import TurnRecord
from voice_agent.types import Vector
from voice_agent.utterance import Utterance

from .fakes import settle


class CountingEncoder:
    def __init__(self, fail_first: bool = False) -> None:
        self.calls = 0
        self.fail_first = fail_first
        self.gate = asyncio.Event()

    async def embed(self, text: str) -> Vector:
        self.calls += 1
        await self.gate.wait()
        if self.fail_first and self.calls == 1:
            raise RuntimeError("encoder thread died")
        return np.full(3, float(len(text)), dtype=np.float32)


async def test_concurrent_askers_share_one_embedding_and_the_turn_records_it() -> None:
    encoder = CountingEncoder()
    record = TurnRecord("c1", 1)
    utterance = Utterance("hello there", encoder.embed, record)
    assert utterance.known_vector is None
    askers = [asyncio.create_task(utterance.vector()) for _ in range(3)]
    await settle()
    encoder.gate.set()
    vectors = await asyncio.gather(*askers)
    assert encoder.calls == 1 and all(v is vectors[0] for v in vectors)
    assert utterance.known_vector is vectors[0] and "embedding" in record.stages_ms
    assert await utterance.vector() is vectors[0] and encoder.calls == 1


async def test_a_failed_embedding_is_computed_afresh_by_the_next_asker() -> None:
    encoder = CountingEncoder(fail_first=True)
    utterance = Utterance("hi", encoder.embed)
    first = asyncio.create_task(utterance.vector())
    waiting = asyncio.create_task(utterance.vector())
    await settle()
    encoder.gate.set()
    with pytest.raises(RuntimeError):
        await first
    assert float((await waiting)[0]) == 2.0 and encoder.calls == 2


async def test_a_vector_known_in_advance_is_never_computed() -> None:
    encoder = CountingEncoder()
    ready = np.ones(3, dtype=np.float32)
    utterance = Utterance("hi", encoder.embed, vector=ready)
    assert await utterance.vector() is ready and encoder.calls == 0
