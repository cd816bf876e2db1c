"""Twilio Media Streams frames to events and back: the call's start (its sid, its flow and
metadata, the audio format checked), the caller's audio (base64 mu-law, the inbound track
only), keys, marks and the hang-up; the agent's audio as 20 ms media frames, its marks, a clear
and the socket closed at the end; and the TwiML that points a number at the socket."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlsplit

import pytest

from voice_agent.errors import ProtocolError
from voice_agent.events import (
    AudioIn,
    AudioOut,
    CallEnd,
    CallStart,
    ClearAudio,
    Delta,
    Dtmf,
    Ended,
    Listening,
    Mark,
    Played,
)
from voice_agent.frontends.codec import NOTHING, Inbound
from voice_agent.frontends.twilio_media import FRAME_BYTES, TwilioMediaCodec, decode, twiml


def frame(event: str, **fields: Any) -> str:
    return json.dumps({"event": event, **fields})


def start_frame(
    call_sid: str = "CA123",
    stream_sid: str = "MZ456",
    parameters: dict[str, Any] | None = None,
    media_format: dict[str, Any] | None = None,
) -> str:
    body: dict[str, Any] = {"callSid": call_sid, "streamSid": stream_sid, "tracks": ["inbound"]}
    body["customParameters"] = parameters or {}
    body["mediaFormat"] = media_format or {
        "encoding": "audio/x-mulaw",
        "sampleRate": 8000,
        "channels": 1,
    }
    return frame("start", sequenceNumber="1", streamSid=stream_sid, start=body)


def media_frame(payload: str, track: str = "inbound") -> str:
    media = {"track": track, "chunk": "1", "timestamp": "5", "payload": payload}
    return frame("media", streamSid="MZ456", media=media)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# In


def test_connected_is_nothing_to_do() -> None:
    assert decode(frame("connected", protocol="Call", version="1.0.0")) == (None, None)


def test_start_is_the_call_with_its_sid_flow_and_metadata_and_the_stream_s_sid() -> None:
    raw = start_frame(parameters={"flow": "pharmacy", "caller": "+15551234567", "empty": ""})
    event, sid = decode(raw)
    assert sid == "MZ456"
    assert event == CallStart(
        call_id="CA123", flow="pharmacy", metadata={"caller": "+15551234567"}
    )  # the flow taken out of the metadata, an empty value dropped


def test_start_without_a_flow_leaves_the_default_flow() -> None:
    event, _ = decode(start_frame(parameters={"caller": "+15551234567"}))
    assert isinstance(event, CallStart)
    assert event.flow is None and event.metadata == {"caller": "+15551234567"}


def test_start_without_a_media_format_takes_twilio_s_own() -> None:
    raw = frame("start", streamSid="MZ1", start={"callSid": "CA1"})
    assert decode(raw) == (CallStart(call_id="CA1", flow=None, metadata={}), "MZ1")


@pytest.mark.parametrize(
    "media_format",
    [
        {"encoding": "audio/l16", "sampleRate": 8000, "channels": 1},
        {"encoding": "audio/x-mulaw", "sampleRate": 16000, "channels": 1},
        {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 2},
    ],
)
def test_start_with_another_audio_format_is_unsupported_audio(media_format: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode(start_frame(media_format=media_format))
    assert caught.value.code == "unsupported_audio"


def test_start_without_a_call_sid_is_an_invalid_frame() -> None:
    with pytest.raises(ProtocolError) as caught:
        decode(frame("start", streamSid="MZ1", start={"streamSid": "MZ1"}))
    assert caught.value.code == "invalid_frame"


def test_media_is_the_caller_s_audio_decoded_from_base64() -> None:
    audio = bytes(range(160))
    assert decode(media_frame(b64(audio))) == (AudioIn(audio), None)
    assert decode(media_frame(b64(audio), track="inbound_track")) == (AudioIn(audio), None)


def test_media_without_a_track_is_taken_as_the_caller_s() -> None:
    raw = frame("media", media={"payload": b64(b"\xff" * 160)})
    assert decode(raw) == (AudioIn(b"\xff" * 160), None)


def test_media_of_the_outbound_track_is_ignored() -> None:
    assert decode(media_frame(b64(b"\x00" * 160), track="outbound")) == (None, None)


@pytest.mark.parametrize("payload", ["not base64!", "abc"])
def test_media_that_is_not_base64_is_a_protocol_error(payload: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode(media_frame(payload))
    assert caught.value.code == "invalid_frame"


def test_media_without_a_payload_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError) as caught:
        decode(frame("media", media={"track": "inbound"}))
    assert caught.value.code == "invalid_frame"


def test_dtmf_is_the_key_pressed() -> None:
    raw = frame("dtmf", streamSid="MZ456", dtmf={"track": "inbound_track", "digit": "7"})
    assert decode(raw) == (Dtmf("7"), None)


def test_dtmf_of_a_key_no_phone_has_is_an_invalid_frame() -> None:
    with pytest.raises(ProtocolError) as caught:
        decode(frame("dtmf", dtmf={"digit": "x"}))
    assert caught.value.code == "invalid_frame"


def test_mark_is_the_agent_s_audio_played_up_to_it() -> None:
    assert decode(frame("mark", streamSid="MZ456", mark={"name": "3.7"})) == (Played("3.7"), None)


def test_stop_is_the_caller_hanging_up() -> None:
    raw = frame("stop", streamSid="MZ456", stop={"callSid": "CA123"})
    assert decode(raw) == (CallEnd("caller_hangup"), None)


def test_an_unknown_event_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError) as caught:
        decode(frame("dance"))
    assert caught.value.code == "unknown_type"


def test_the_codec_keeps_the_stream_sid_of_the_start() -> None:
    codec = TwilioMediaCodec()
    assert codec.audio and codec.frontend_reminders
    assert codec.decode(frame("connected"), 0) is NOTHING
    inbound = codec.decode(start_frame(stream_sid="MZ789"), 0)
    assert isinstance(inbound, Inbound) and isinstance(inbound.events[0], CallStart)
    assert codec.stream_sid == "MZ789"
    assert codec.decode(frame("mark", mark={"name": "1.1"}), 1) == Inbound((Played("1.1"),))
    assert codec.stream_sid == "MZ789"  # a frame that starts nothing leaves it


# Out


def started_codec(stream_sid: str = "MZ456") -> TwilioMediaCodec:
    codec = TwilioMediaCodec()
    codec.decode(start_frame(stream_sid=stream_sid), 0)
    return codec


def test_agent_audio_goes_as_one_media_frame_per_160_bytes() -> None:
    audio = bytes(i % 256 for i in range(FRAME_BYTES * 2 + 80))
    out = started_codec().encode(AudioOut(audio))
    assert not out.close
    frames = [json.loads(f) for f in out.frames]
    assert len(frames) == 3
    assert {f["event"] for f in frames} == {"media"}
    assert {f["streamSid"] for f in frames} == {"MZ456"}
    payloads = [base64.b64decode(f["media"]["payload"]) for f in frames]
    assert [len(p) for p in payloads] == [160, 160, 80]
    assert b"".join(payloads) == audio


def test_a_mark_and_a_clear_go_with_the_stream_s_sid() -> None:
    codec = started_codec("MZ999")
    assert [json.loads(f) for f in codec.encode(Mark("2.5")).frames] == [
        {"event": "mark", "streamSid": "MZ999", "mark": {"name": "2.5"}}
    ]
    assert [json.loads(f) for f in codec.encode(ClearAudio()).frames] == [
        {"event": "clear", "streamSid": "MZ999"}
    ]


def test_the_end_of_the_call_closes_the_socket_with_no_frame() -> None:
    out = started_codec().encode(Ended("caller_hangup"))
    assert out.close and out.frames == ()


def test_words_and_other_agent_events_send_nothing() -> None:
    codec = started_codec()
    for event in (Delta(1, "Hello."), Listening(1, 8.0)):
        out = codec.encode(event)
        assert out.frames == () and not out.close


# TwiML


def stream_url(document: str) -> str:
    root = ET.fromstring(document.encode("utf-8"))
    assert root.tag == "Response"
    connect = root.find("Connect")
    assert connect is not None
    stream = connect.find("Stream")
    assert stream is not None
    return stream.attrib["url"]


@pytest.mark.parametrize("base", ["https://voice.example.com/", "http://voice.example.com"])
def test_twiml_connects_the_call_to_the_media_socket_over_wss(base: str) -> None:
    assert stream_url(twiml(base)) == "wss://voice.example.com/twilio/media"


def test_twiml_escapes_the_url_and_the_token_for_xml() -> None:
    document = twiml('https://voice.example.com/a&b"c', token='a b&c="d/é')
    assert "&amp;" in document and "&quot;" in document
    assert stream_url(document) == 'wss://voice.example.com/a&b"c/twilio/media'
    stream = ET.fromstring(document).find("Connect/Stream")
    assert stream is not None
    assert [(p.attrib["name"], p.attrib["value"]) for p in stream.findall("Parameter")] == [
        ("token", 'a b&c="d/é')
    ]


def test_twiml_passes_the_token_as_a_stream_parameter_twilio_forwards() -> None:
    root = ET.fromstring(twiml("https://voice.example.com", token="secret-token"))
    stream = root.find("Connect/Stream")
    assert stream is not None
    assert urlsplit(stream.attrib["url"]).query == ""
    parameters = {p.attrib["name"]: p.attrib["value"] for p in stream.findall("Parameter")}
    assert parameters == {"token": "secret-token"}
