"""Retell custom LLM conformance: the message sequences of ../shared/PROTOCOLS.md replayed over a
real WebSocket (config and greeting as response 0, call details reaching the flow, ping_pong,
response_required streamed under its id, a newer id stopping the older answer with no content
for the stale id, update_only keeping history, reminder_required, end_call, transfer_number,
digit_to_press, unknown fields, string-typed numbers, malformed frames, a reconnect)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import websockets

from voice_agent.events import ActionEvent, Delta, Ended, Listening, Transcript, Utterance
from voice_agent.frontends import retell
from voice_agent.server.service import Service
from voice_agent.types import HangUp, Transfer

from ..fakes import FakeLLM, scaled

pytestmark = pytest.mark.model

DETAILS: dict[str, Any] = {
    "interaction_type": "call_details",
    "call": {
        "call_id": "retell-1",
        "agent_id": "agent-1",
        "from_number": "+18005550100",
        "to_number": "+18005550101",
        "metadata": {"flow": "pharmacy"},
        "retell_llm_dynamic_variables": {"customer": "Ada"},
        "someNewRetellField": True,
    },
}


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def agent(text: str) -> dict[str, str]:
    return {"role": "agent", "content": text}


class Peer:
    """Plays Retell's side of the socket."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def recv(self, wait_s: float = 10) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), scaled(wait_s)))
        return frame

    async def quiet(self, wait_s: float = 0.3) -> bool:
        """True when nothing arrives for `wait_s`."""
        try:
            frame = await self.recv(wait_s)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected frame {frame}")

    async def ask(self, response_id: int | str, *transcript: dict[str, str]) -> None:
        await self.send(
            {"interaction_type": "response_required", "response_id": response_id,
             "transcript": list(transcript)}
        )  # fmt: skip

    async def response(self, response_id: int) -> tuple[str, dict[str, Any]]:
        """The content streamed under `response_id`, and its content_complete frame."""
        pieces = []
        while True:
            frame = await self.recv()
            assert frame["response_type"] == "response", frame
            assert frame["response_id"] == response_id, frame
            pieces.append(frame["content"])
            if frame["content_complete"]:
                return "".join(pieces), frame


@asynccontextmanager
async def connect(url: str, call_id: str = "retell-1", details: bool = True) -> AsyncIterator[Peer]:
    ws_url = url.replace("http://", "ws://") + f"/retell/llm/{call_id}"
    async with websockets.connect(ws_url) as ws:
        peer = Peer(ws)
        config = await peer.recv()
        assert config == {
            "response_type": "config",
            "config": {"auto_reconnect": True, "call_details": True},
        }
        if details:
            await peer.send(DETAILS)
        yield peer


async def test_greeting_is_response_0_and_an_answer_streams_under_its_id(
    make_service: Callable[..., Service], running: Any
) -> None:
    llm = FakeLLM()
    async with running(make_service(llm)) as url, connect(url) as peer:
        greeting, done = await peer.response(0)
        assert greeting.startswith("Thanks for calling Maple Street Pharmacy")
        await peer.send({"interaction_type": "ping_pong", "timestamp": "1724000000000"})
        assert await peer.recv() == {"response_type": "ping_pong", "timestamp": 1724000000000}
        await peer.send(
            {"interaction_type": "update_only", "turntaking": "user_turn",
             "transcript": [agent(greeting), user("What time do")]}
        )  # fmt: skip
        await peer.ask("1", agent(greeting), user("What time do you open?"))  # id as text
        answer, done = await peer.response(1)
    assert answer == "Maple Street Pharmacy opens at 9 AM."
    assert done == {
        "response_type": "response",
        "response_id": 1,
        "content": "",
        "content_complete": True,
    }
    assert len(llm.calls) == 1 and llm.calls[0][-1].content.endswith("What time do you open?")


async def test_a_newer_response_id_stops_the_older_answer_and_history_follows_the_transcript(
    make_service: Callable[..., Service], running: Any
) -> None:
    tokens = ["Our ", "hours ", "are "] + ["long "] * 200
    llm = FakeLLM(tokens=tokens, token_interval_s=scaled(0.02))
    service = make_service(llm, VOICE_AGENT_LLM_TIMEOUT_S=60, VOICE_AGENT_LLM_MAX_TOKENS=1000)
    async with running(service) as url, connect(url, details=False) as peer:
        assert await peer.response(0) == (
            "",
            {
                "response_type": "response",
                "response_id": 0,
                "content": "",
                "content_complete": True,
            },
        )  # fmt: skip (the qa flow has no greeting: wait for the caller)
        await peer.ask(3, user("What are your hours?"))
        first = await peer.recv()
        assert first["response_id"] == 3 and first["content_complete"] is False
        llm.tokens, llm.token_interval_s = ["Yes."], 0
        # The caller cut in: Retell's transcript has what was heard of the agent's turn.
        heard = [user("What are your hours?"), agent("Our hours"), user("Do you deliver?")]
        await peer.ask(5, *heard)
        frames: list[dict[str, Any]] = []
        while not frames or not frames[-1]["content_complete"]:
            frames.append(await peer.recv())
        ids = [f["response_id"] for f in frames]
        # Frames of 3 already on the wire may arrive first; none once 5 has begun.
        assert ids == sorted(ids) and ids[-1] == 5
        assert "".join(f["content"] for f in frames if f["response_id"] == 5) == "Yes."
        await peer.ask(4, *heard)  # stale: older than 5, nothing is sent for it
        assert await peer.quiet()
    assert llm.closed == 2 and len(llm.calls) == 2
    assert [(m.role, m.content) for m in llm.calls[1][-3:]] == [
        ("user", "What are your hours?"),
        ("assistant", "Our hours"),
        ("user", llm.calls[1][-1].content),
    ]
    assert llm.calls[1][-1].content.endswith("Do you deliver?")


async def test_reminder_end_call_and_transfer_ride_on_the_final_frame(
    make_service: Callable[..., Service], running: Any
) -> None:
    service = make_service(FakeLLM(), VOICE_AGENT_DEFAULT_FLOW="pharmacy")
    async with running(service) as url:
        async with connect(url, "retell-end") as peer:
            greeting, _ = await peer.response(0)
            await peer.send(
                {"interaction_type": "reminder_required", "response_id": 1,
                 "transcript": [agent(greeting)]}
            )  # fmt: skip
            nudge, _ = await peer.response(1)
            assert nudge  # the flow's reminder
            await peer.ask(2, agent(greeting), agent(nudge), user("What time do you open?"))
            answer, done = await peer.response(2)
            assert answer and "end_call" not in done
            await peer.ask(3, user("What time do you open?"), agent(answer), user("goodbye"))
            goodbye, done = await peer.response(3)
            assert goodbye == "Goodbye!" and done["end_call"] is True
            # Retell hangs up after speaking; the socket is left for Retell to close.
            assert await peer.quiet()
        async with connect(url, "retell-transfer") as peer:
            greeting, _ = await peer.response(0)
            await peer.ask(1, agent(greeting), user("can I talk to a person"))
            said, done = await peer.response(1)
    assert said == "Let me connect you to a pharmacist."
    assert done["transfer_number"] == "+15550100" and "end_call" not in done


async def test_digits_to_press_and_call_details_reach_the_flow(
    make_service: Callable[..., Service], running: Any, tmp_path: Path
) -> None:
    (tmp_path / "keys.yaml").write_text(
        "name: keys\nstart: menu\ncontext: {customer: caller}\nstates:\n"
        '  menu: {say: "Connecting {customer} to billing.", action: {dtmf: "1"},'
        " on: {goodbye: bye}}\n"
        '  bye: {say: "Bye.", action: hangup}\n'
    )
    service = make_service(
        FakeLLM(), VOICE_AGENT_FLOW_PATH=tmp_path, VOICE_AGENT_DEFAULT_FLOW="keys"
    )
    async with running(service) as url, connect(url, details=False) as peer:
        await peer.send({**DETAILS, "call": {**DETAILS["call"], "metadata": {}}})
        said, done = await peer.response(0)
    assert said == "Connecting Ada to billing."
    assert done["digit_to_press"] == "1"


async def test_malformed_frames_are_logged_and_the_call_goes_on(
    make_service: Callable[..., Service], running: Any
) -> None:
    async with running(make_service(FakeLLM())) as url, connect(url, details=False) as peer:
        await peer.response(0)
        for bad in (
            "not json",
            "[1, 2]",
            {"interaction_type": "something_new"},
            {"interaction_type": "response_required", "response_id": -1, "transcript": []},
            {"interaction_type": "response_required", "response_id": "x", "transcript": []},
            {"interaction_type": "ping_pong"},
        ):
            await peer.send(bad)
        assert await peer.quiet()
        await peer.ask(1, user("hello"), {"role": "tool_call_invocation", "content": "{}"})
        answer, _ = await peer.response(1)
    assert answer == "Hello! How can I help you today?"


async def test_a_reconnect_gets_the_same_session_back_without_a_second_greeting(
    make_service: Callable[..., Service], running: Any
) -> None:
    service = make_service(FakeLLM(), VOICE_AGENT_DEFAULT_FLOW="pharmacy")
    async with running(service) as url:
        async with connect(url, "retell-again") as peer:
            greeting, _ = await peer.response(0)
            await peer.ask(1, agent(greeting), user("I need a refill"))
            asked, _ = await peer.response(1)
        # The socket dropped mid-call (missed pings); Retell opens it again for the same call.
        async with connect(url, "retell-again") as peer:
            assert await peer.response(0) == (
                "",
                {"response_type": "response", "response_id": 0, "content": "",
                 "content_complete": True},
            )  # fmt: skip
            transcript = [agent(greeting), user("I need a refill"), agent(asked)]
            await peer.ask(2, *transcript, user("it's one two three four five six"))
            confirmed, _ = await peer.response(2)
    assert asked == "Please say or key in your prescription number."
    assert confirmed == "I have 123456. Is that right?"  # the flow's place was kept


async def test_after_the_reconnect_window_a_new_session_starts_without_a_greeting(
    make_service: Callable[..., Service], running: Any
) -> None:
    service = make_service(
        FakeLLM(), VOICE_AGENT_DEFAULT_FLOW="pharmacy", VOICE_AGENT_RETELL_RECONNECT_WINDOW_S=0
    )
    async with running(service) as url:
        async with connect(url, "retell-late") as peer:
            greeting, _ = await peer.response(0)
        async with connect(url, "retell-late") as peer:
            assert (await peer.response(0))[0] == ""
            await peer.ask(1, agent(greeting), user("hello"))
            answer, _ = await peer.response(1)
    assert answer == "Hello! How can I help you today?"


async def test_an_unknown_flow_in_the_call_details_closes_with_an_internal_error(
    make_service: Callable[..., Service], running: Any
) -> None:
    async with running(make_service(FakeLLM())) as url, connect(url, details=False) as peer:
        await peer.send({**DETAILS, "call": {"metadata": {"flow": "no-such-flow"}}})
        with pytest.raises(websockets.ConnectionClosedError) as closed:
            await peer.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011


def test_responses_drop_every_event_of_a_turn_older_than_the_current_response() -> None:
    responses = retell.Responses()
    assert responses.begin(3, first_turn=1)
    assert responses.encode(Delta(1, "Our ")) == [
        {"response_type": "response", "response_id": 3, "content": "Our ",
         "content_complete": False}
    ]  # fmt: skip
    assert responses.begin(5, first_turn=2)
    # The old turn is still being cancelled: nothing of it goes out, under either id.
    assert responses.encode(Delta(1, "hours")) == []
    assert responses.encode(ActionEvent(1, HangUp())) == []
    assert responses.encode(Listening(1)) == []
    assert not responses.begin(4, first_turn=3) and not responses.begin(5, first_turn=3)
    assert responses.encode(Delta(2, "Yes.")) == [
        {"response_type": "response", "response_id": 5, "content": "Yes.",
         "content_complete": False}
    ]  # fmt: skip
    assert responses.encode(ActionEvent(2, Transfer("+15550100"))) == []
    assert responses.encode(Ended("transfer")) == [
        {"response_type": "response", "response_id": 5, "content": "",
         "content_complete": True, "transfer_number": "+15550100"}
    ]  # fmt: skip
    assert responses.encode(Delta(2, "more")) == []  # the response is complete


def test_decode_takes_numbers_as_text_and_splits_the_callers_newest_words() -> None:
    frame = retell.decode(
        json.dumps(
            {"interaction_type": "response_required", "response_id": "7", "extra": [1],
             "transcript": [user("Hi"), agent("Hello, how can I help?"), user("Parking?")]}
        ),
        max_utterance_chars=100,
    )  # fmt: skip
    assert frame == retell.ResponseRequest(
        7,
        (
            Transcript((("user", "Hi"), ("assistant", "Hello, how can I help?"))),
            Utterance("Parking?"),
        ),
    )
    ping = retell.decode('{"interaction_type":"ping_pong","timestamp":"12"}', 100)
    assert ping == retell.Ping(12)


async def test_after_end_call_the_socket_is_closed_when_retell_keeps_it_open(
    make_service: Callable[..., Service], running: Any
) -> None:
    """Retell hangs up after speaking the final response; should it keep pinging instead,
    the service closes the socket (1000) once the grace period has passed."""
    service = make_service(
        FakeLLM(), VOICE_AGENT_DEFAULT_FLOW="pharmacy", VOICE_AGENT_RETELL_END_GRACE_S=scaled(0.5)
    )
    async with running(service) as url, connect(url, "retell-linger") as peer:
        greeting, _ = await peer.response(0)
        await peer.ask(1, agent(greeting), user("can I talk to a person"))
        _, done = await peer.response(1)
        assert done["transfer_number"] == "+15550100"
        with pytest.raises(websockets.ConnectionClosedOK) as closed:
            for n in range(200):  # pings keep coming; each is still answered
                await peer.send({"interaction_type": "ping_pong", "timestamp": n})
                assert (await peer.recv())["timestamp"] == n
                await asyncio.sleep(scaled(0.05))
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
