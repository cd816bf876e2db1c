"""The live stream of turn events behind `/v1/telemetry` (WebSocket): every subscriber gets each
finished turn as JSON. A subscriber that reads too slowly loses events (counted), never
holding memory or slowing a call."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from voice_agent.telemetry.event import TurnEvent
from voice_agent.telemetry.log import turn_record

QUEUE_SIZE = 256


class TelemetryStream:
    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[str]] = set()
        self.dropped = 0

    def subscribe(self) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str]) -> None:
        self._subscribers.discard(queue)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def turn_served(self, event: TurnEvent) -> None:
        if not self._subscribers:
            return
        record: dict[str, Any] = {"type": "turn", **turn_record(event)}
        frame = json.dumps(record, separators=(",", ":"), default=str)
        for queue in self._subscribers:
            try:
                queue.put_nowait(frame)
            except asyncio.QueueFull:
                self.dropped += 1
