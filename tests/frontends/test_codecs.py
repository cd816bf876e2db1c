"""The codec contract, without a socket: each frontend's codec turns frames into events and
events into frames, typed actions included, and says what the one socket loop must do."""

from __future__ import annotations

import json

import pytest

from voice_agent.errors import ProtocolError
from voice_agent.events import (
    ActionEvent,
    CallStart,
    Delta,
    Done,
    Ended,
    ErrorEvent,
    Interrupt,
    Listening,
    Transcript,
    Utterance,
)
from voice_agent.frontends.codec import Codec, Inbound
from voice_agent.frontends.native import NativeCodec
from voice_agent.frontends.retell import RetellCodec
from voice_agent.frontends.twilio_relay import TwilioRelayCodec, twiml
from voice_agent.frontends.twilio_signature import signature, upgrade_signed
from voice_agent.types import HangUp, SendDigits, Transfer


def frames(codec: Codec, *events: object) -> list[dict[str, object]]:
    out = []
    for event in events:
        out.extend(json.loads(f) for f in codec.encode(event).frames)  # type: ignore[arg-type]
    return out


def test_every_codec_keeps_the_contract() -> None:
    codecs: list[Codec] = [
        NativeCodec(100),
        TwilioRelayCodec(100),
        RetellCodec("c1", 100, details_wait_s=0.5, linger_s=30),
    ]
    for codec in codecs:
        assert isinstance(codec.opening(), tuple) and isinstance(codec.timed_out(0), Inbound)


def test_native_actions_are_typed_inside_and_flat_on_the_wire() -> None:
    codec = NativeCodec(100)
    assert frames(
        codec,
        ActionEvent(3, Transfer("+15550100")),
        ActionEvent(3, Transfer()),
        ActionEvent(3, SendDigits("12#")),
        ActionEvent(3, HangUp()),
    ) == [
        {"type": "agent.action", "turn_id": 3, "action": "transfer", "to": "+15550100"},
        {"type": "agent.action", "turn_id": 3, "action": "transfer"},
        {"type": "agent.action", "turn_id": 3, "action": "dtmf", "digits": "12#"},
        {"type": "agent.action", "turn_id": 3, "action": "hangup"},
    ]
    assert codec.encode(Ended("caller_hangup")).close
    assert not codec.encode(Delta(1, "Hi")).close
    assert frames(codec, ErrorEvent("invalid_json", "bad")) == [
        {"type": "error", "code": "invalid_json", "message": "bad"}
    ]
    inbound = codec.decode('{"type":"user.utterance","text":"hi","final":false}', 0)
    assert inbound.events == (Utterance("hi", final=False),) and not inbound.replies


def test_twilio_actions_end_the_relay_with_handoff_data_or_press_digits() -> None:
    codec = TwilioRelayCodec(100)
    end, digits, bye = frames(
        codec,
        ActionEvent(1, Transfer("+15550100")),
        ActionEvent(1, SendDigits("9")),
        ActionEvent(1, HangUp()),
    )
    assert json.loads(str(end["handoffData"])) == {"reason": "transfer", "to": "+15550100"}
    assert digits == {"type": "sendDigits", "digits": "9"}
    assert json.loads(str(bye["handoffData"])) == {"reason": "hangup"}
    # An error has no relay frame: it is logged, and nothing is sent.
    assert frames(codec, ErrorEvent("invalid_json", "bad")) == []
    assert codec.encode(Ended("agent_hangup")).close


def test_twilio_twiml_and_signature_live_in_the_codec() -> None:
    xml = twiml("https://voice.example.com/")
    assert 'url="wss://voice.example.com/twilio/relay"' in xml
    url = "wss://voice.example.com/twilio/relay"
    signed = {"x-twilio-signature": signature("token", url)}
    assert upgrade_signed("token", url, signed)
    assert upgrade_signed("token", "ws://voice.example.com/twilio/relay", signed)  # behind TLS
    assert not upgrade_signed("other", url, signed) and not upgrade_signed("token", url, {})


def test_retell_opens_with_config_and_starts_the_call_from_its_details() -> None:
    codec = RetellCodec("c1", 100, details_wait_s=0.5, linger_s=30, resumed=True)
    assert json.loads(codec.opening()[0])["response_type"] == "config"
    assert codec.wait_s() == 0.5 and codec.frontend_reminders
    details = {"interaction_type": "call_details", "call": {"metadata": {"flow": "pharmacy"}}}
    inbound = codec.decode(json.dumps(details), turn_id=0)
    assert inbound.events == (CallStart("c1", "pharmacy", {}, resume=True),)
    assert codec.wait_s() is None  # started: no more waiting for details
    # The greeting (turn 1) answers response 0.
    assert frames(codec, Delta(1, "Hello")) == [
        {"response_type": "response", "response_id": 0, "content": "Hello",
         "content_complete": False}
    ]  # fmt: skip
    assert frames(codec, Listening(1))[0]["content_complete"] is True


def test_retell_without_details_starts_anyway_and_replays_the_early_frame() -> None:
    codec = RetellCodec("c2", 100, details_wait_s=0.5, linger_s=30)
    assert codec.timed_out(0).events == (CallStart("c2", None, {}),)
    early = RetellCodec("c3", 100, details_wait_s=0.5, linger_s=30)
    ping = '{"interaction_type":"ping_pong","timestamp":5}'
    inbound = early.decode(ping, turn_id=0)
    assert inbound.events == (CallStart("c3", None, {}),) and inbound.then == ping
    pong = early.decode(ping, turn_id=1)
    assert json.loads(pong.replies[0]) == {"response_type": "ping_pong", "timestamp": 5}


def test_a_reattached_retell_session_is_not_started_again() -> None:
    codec = RetellCodec("c4", 100, details_wait_s=0.5, linger_s=30, resumed=True, started=True)
    assert codec.timed_out(7).events == ()
    # Response 0 started no turn: it is completed empty, so Retell is not left waiting.
    assert [json.loads(f)["content_complete"] for f in codec.settled(7, ended=False)] == [True]
    assert codec.settled(7, ended=False) == ()


def test_retell_requests_begin_responses_and_stale_ones_are_dropped() -> None:
    codec = RetellCodec("c5", 100, details_wait_s=0.5, linger_s=30)
    codec.timed_out(0)
    asked = {
        "interaction_type": "response_required",
        "response_id": 2,
        "transcript": [{"role": "user", "content": "Parking?"}],
    }
    inbound = codec.decode(json.dumps(asked), turn_id=1)
    assert inbound.events == (Transcript(()), Utterance("Parking?"))
    assert codec.decode(json.dumps({**asked, "response_id": 1}), turn_id=2).events == ()
    # Nothing new from the caller: stop what is being said and answer nothing.
    bare = {"interaction_type": "response_required", "response_id": 3, "transcript": []}
    assert codec.decode(json.dumps(bare), turn_id=2).events[0] == Interrupt(heard=None)
    assert json.loads(codec.settled(2, ended=False)[0])["content_complete"] is True
    with pytest.raises(ProtocolError):
        codec.decode('{"interaction_type":"nonsense"}', turn_id=2)


def test_retell_ends_on_the_final_response_or_closes_when_none_is_open() -> None:
    codec = RetellCodec("c6", 100, details_wait_s=0.5, linger_s=30)
    codec.timed_out(0)
    assert frames(codec, ActionEvent(1, SendDigits("5"))) == []  # rides on the last frame
    last = codec.encode(Ended("agent_hangup"))
    assert [json.loads(f) for f in last.frames] == [
        {"response_type": "response", "response_id": 0, "content": "",
         "content_complete": True, "digit_to_press": "5", "end_call": True}
    ]  # fmt: skip
    assert not last.close  # Retell hangs up itself; the socket lingers for it
    nothing_open = codec.encode(Ended("agent_hangup"))
    assert nothing_open.frames == () and nothing_open.close
    assert codec.encode(Done(1, "x", "flow", "s", {}, {})).frames == ()
