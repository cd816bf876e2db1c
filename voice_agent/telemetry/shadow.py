"""Shadow comparison records: in shadow mode the LLM path serves, and the fast tiers' would-be
answer is compared with it. One `[SHADOW]` line per turn says what was served and how fast,
what the fast tier would have said and how fast, and how close the two answers are (cosine of
their embeddings, computed off the turn)."""

from __future__ import annotations

import json
import logging

import numpy as np

from voice_agent.listeners import Listeners
from voice_agent.tasks import TaskScope
from voice_agent.telemetry.event import TurnEvent, written_down
from voice_agent.telemetry.quality import EncodeMany

log = logging.getLogger("voice_agent.telemetry")

MAX_PENDING = 32


class ShadowRecorder:
    def __init__(self, encode: EncodeMany, transcripts: bool = True) -> None:
        self._encode = encode
        self._transcripts = transcripts  # the record's texts: redacted, or left out
        self._tasks = TaskScope("shadow")
        self.listeners: Listeners[[dict[str, object]]] = Listeners("shadow")  # the telemetry file

    def turn_served(self, event: TurnEvent) -> None:
        if event.would_be is None or self._tasks.running >= MAX_PENDING:
            return
        self._tasks.spawn(self._record(event), name=f"shadow-{event.call_id}-{event.turn_id}")

    async def _record(self, event: TurnEvent) -> None:
        would_be = event.would_be
        assert would_be is not None
        served, other = await self._encode([event.answer, would_be.answer])
        # Compared as they were said; written down as the privacy setting allows.
        shown = written_down(event, self._transcripts)
        assert shown.would_be is not None
        record = {
            "call": event.call_id,
            "turn": event.turn_id,
            "flow": event.flow,
            "state": event.state,
            "question": shown.question,
            "served": {
                "source": event.source,
                "answer": shown.answer,
                "first_token_ms": event.latency_ms.get("first_token"),
            },
            "would_be": {
                "source": would_be.source,
                "answer": shown.would_be.answer,
                "latency_ms": would_be.latency_ms,
            },
            "similarity": round(float(np.dot(served, other)), 4),
        }
        log.info("[SHADOW] %s", json.dumps(record, separators=(",", ":")))
        self.listeners.notify(record)

    async def drain(self, wait_s: float) -> bool:
        return await self._tasks.wait(wait_s)
