"""What the service itself says about a played turn, over its HTTP API: its quality score (from
the dashboard's data), whether the answer contradicts the knowledge base (its own check, over
the passages it retrieves for the caller's words), and why it decided as it did (explain). A
request that fails is recorded on the turn; it never stops the run."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from voice_agent.scenarios.outcome import Played

HTTP_TIMEOUT_S = 30.0
QUALITY_WAIT_S = 15.0  # scores come shortly after the answers; this long at most
QUALITY_POLL_S = 0.3


def http_base(url: str) -> str:
    """The service's http(s) base from the URL the scenarios were given."""
    for socket, plain in (("ws://", "http://"), ("wss://", "https://")):
        if url.startswith(socket):
            return plain + url[len(socket) :]
    return url


def client(url: str, key: str | None) -> httpx.AsyncClient:
    headers = {"X-API-Key": key} if key else {}
    return httpx.AsyncClient(base_url=http_base(url), headers=headers, timeout=HTTP_TIMEOUT_S)


async def add_quality(url: str, played: Played, key: str | None, which: set[int]) -> None:
    """The service's quality score of the chosen turns (indexes into `played.turns`)."""
    wanted = {t.turn_id: t for i, t in enumerate(played.turns) if i in which and t.replied}
    if not wanted:
        return
    deadline = time.monotonic() + QUALITY_WAIT_S
    async with client(url, key) as http:
        while time.monotonic() < deadline:
            try:
                response = await http.get(f"/v1/dashboard/calls/{played.call_id}")
            except httpx.HTTPError as exc:
                for turn in wanted.values():
                    turn.problems.append(f"quality not read: {type(exc).__name__}: {exc}")
                return
            if response.status_code == 200:
                for record in response.json()["turn_records"]:
                    if record["turn"] in wanted and "quality" in record:
                        wanted[record["turn"]].quality = record["quality"]
            if all(t.quality is not None for t in wanted.values()):
                return
            await asyncio.sleep(QUALITY_POLL_S)


async def check_against_knowledge(
    url: str, played: Played, flow: str | None, key: str | None, which: set[int]
) -> None:
    """Whether each chosen turn's answer says the opposite of what the knowledge base says
    about the caller's words: the passages the service retrieves for them (POST /v1/explain),
    then its contradiction check over those (POST /v1/quality/score), whatever tier answered."""
    async with client(url, key) as http:
        for index in sorted(which):
            turn = played.turns[index]
            if not turn.replied or not turn.text:
                continue
            words = turn.words or turn.text
            try:
                found = await explain(http, words, flow, turn.state_before)
                if turn.words is not None:  # the caller's words explained: the report's too
                    turn.explained = found
                passages = [str(p["text"]) for p in _passages(found) if p.get("text")]
                if not passages:
                    turn.problems.append("the knowledge base has nothing on these words")
                    continue
                asked = {"question": words, "answer": turn.text, "context": passages}
                scored = await http.post("/v1/quality/score", json=asked)
                scored.raise_for_status()
            except httpx.HTTPError as exc:
                turn.problems.append(f"not checked: {type(exc).__name__}: {exc}")
                continue
            result = scored.json()
            turn.contradicted = result["parts"].get("consistency") == 0
            turn.knowledge_notes = list(result.get("notes") or [])


async def explain(
    http: httpx.AsyncClient, words: str, flow: str | None, state: str | None
) -> dict[str, Any]:
    """The service's POST /v1/explain for the words, in the state they were heard in."""
    response = await http.post("/v1/explain", json={"text": words, "flow": flow, "state": state})
    response.raise_for_status()
    found: dict[str, Any] = response.json()
    return found


def _passages(explained: dict[str, Any]) -> list[dict[str, Any]]:
    return list((explained.get("knowledge") or {}).get("passages") or [])
