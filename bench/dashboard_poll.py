"""The dashboard's poll under load: what `/v1/dashboard/live` costs while calls run, asked once
a second as the page asks (only the points after the last one it has). Used by
bench/concurrency.py's `--dashboard`."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx
from turn_latency import percentile


@dataclass
class Polls:
    took_ms: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    failed: int = 0

    def summary(self) -> str:
        if not self.took_ms:
            return f"no poll answered ({self.failed} failed)"
        took = self.took_ms
        return (
            f"{len(took)} polls: {percentile(took, 50):.1f} / {percentile(took, 95):.1f} / "
            f"{max(took):.1f} ms "
            f"(p50 / p95 / max), {sum(self.sizes) / len(self.sizes) / 1024:.1f} KB a poll, "
            f"{self.failed} failed"
        )


async def poll_live(http_url: str, stop: asyncio.Event, every_s: float = 1.0) -> Polls:
    """Polls like the page until `stop` is set."""
    polls = Polls()
    after = 0.0
    async with httpx.AsyncClient(base_url=http_url, timeout=10) as http:
        while not stop.is_set():
            began = time.perf_counter()
            try:
                response = await http.get("/v1/dashboard/live", params={"after": after})
                response.raise_for_status()
                body = response.json()
            except httpx.HTTPError:
                polls.failed += 1
            else:
                polls.took_ms.append((time.perf_counter() - began) * 1000)
                polls.sizes.append(len(response.content))
                if body["points"]:
                    after = body["points"][-1]["t"]
            try:
                await asyncio.wait_for(stop.wait(), every_s)
            except TimeoutError:
                pass
    return polls
