"""The far end of a Media Streams socket, as Twilio plays it: for the audio tests, the audio
latency bench and trying a service by hand. It sends a caller's audio in 20 ms frames at the
pace of speech (or `speed` times faster), plays the agent's audio on a simulated clock at the
same pace, names each mark back once the audio before it has played, and drops what has not
played on `clear`. It keeps every agent frame with the time it arrived, so a bench can time
the end of the caller's speech to the first agent audio."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from voice_agent.audio import mulaw

FRAME_S = mulaw.FRAME_MS / 1000
SILENCE = b"\xff" * mulaw.FRAME_BYTES  # mu-law's zero
MEDIA_FORMAT = {"encoding": "audio/x-mulaw", "sampleRate": mulaw.SAMPLE_RATE, "channels": 1}


@dataclass(slots=True)
class Heard:
    """A piece of agent audio as the phone played it."""

    arrived: float
    audio: bytes
    starts: float = 0.0  # on the phone's clock
    cut: bool = False  # a `clear` dropped some of it


@dataclass(slots=True)
class PhoneLog:
    pieces: list[Heard] = field(default_factory=list)
    marks_named: list[str] = field(default_factory=list)
    clears: list[float] = field(default_factory=list)
    closed_at: float | None = None


class TwilioPhone:
    def __init__(self, ws: Any, speed: float = 1.0, stream_sid: str = "MZtest") -> None:
        self.ws = ws
        self.speed = speed
        self.sid = stream_sid
        self.log = PhoneLog()
        self._seq = 0
        self._play_end = 0.0
        self._marks: list[asyncio.TimerHandle] = []
        self._unnamed = 0  # marks not yet named back
        self._reader: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._outgoing: deque[bytes | tuple[bytes, asyncio.Future[float]]] = deque()
        self._outgoing_marks: list[str] = []
        self.closed = asyncio.Event()

    async def __aenter__(self) -> TwilioPhone:
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        for handle in self._marks:
            handle.cancel()
        for task in (self._reader, self._sender):
            if task is not None:
                task.cancel()

    async def _send(self, frame: dict[str, Any]) -> None:
        self._seq += 1
        await self.ws.send(json.dumps({"sequenceNumber": str(self._seq), **frame}))

    async def start(self, call_sid: str, **parameters: str) -> None:
        await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self._send({"event": "start", "streamSid": self.sid, "start": {
            "streamSid": self.sid, "accountSid": "ACtest", "callSid": call_sid,
            "tracks": ["inbound"], "customParameters": parameters,
            "mediaFormat": MEDIA_FORMAT,
        }})  # fmt: skip
        self._sender = asyncio.get_running_loop().create_task(self._line())

    async def play(self, audio: bytes) -> float:
        """Send the caller's audio at the pace of speech; returns when its last frame left (a
        perf_counter time)."""
        frames = mulaw.frames(audio)
        if not frames:
            return time.perf_counter()
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._outgoing.extend(frames[:-1])
        self._outgoing.append((frames[-1], done))
        return await done

    async def silence(self, seconds: float) -> None:
        await self.play(SILENCE * max(1, round(seconds / FRAME_S)))

    async def _line(self) -> None:
        """Like Twilio, a frame every 20 ms for as long as the call lasts: the caller's audio
        when there is some, silence otherwise."""
        try:
            await self._pace()
        except Exception:  # the socket closed under the line: that is the call's end
            return

    async def _pace(self) -> None:
        loop = asyncio.get_running_loop()
        begun, sent = loop.time(), 0
        while True:
            marks, self._outgoing_marks = self._outgoing_marks, []
            for name in marks:
                await self._send({"event": "mark", "streamSid": self.sid, "mark": {"name": name}})
            item = self._outgoing.popleft() if self._outgoing else SILENCE
            frame, done = item if isinstance(item, tuple) else (item, None)
            payload = base64.b64encode(frame).decode("ascii")
            await self._send({"event": "media", "streamSid": self.sid,
                              "media": {"track": "inbound", "payload": payload}})  # fmt: skip
            if done is not None and not done.done():
                done.set_result(time.perf_counter())
            sent += 1
            wait = begun + sent * FRAME_S / self.speed - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            elif wait < -1.0:  # far behind (a stalled loop): start the pace again
                begun, sent = loop.time(), 0

    async def dtmf(self, digits: str) -> None:
        for digit in digits:
            await self._send({"event": "dtmf", "streamSid": self.sid,
                              "dtmf": {"track": "inbound_track", "digit": digit}})  # fmt: skip

    async def hang_up(self) -> None:
        await self._send({"event": "stop", "streamSid": self.sid,
                          "stop": {"accountSid": "ACtest", "callSid": "CAtest"}})  # fmt: skip

    # What the agent sends

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self._take(json.loads(raw))
        except Exception:  # the socket closed under the reader: that is the call's end
            pass
        finally:
            self.log.closed_at = time.perf_counter()
            self.closed.set()

    def _take(self, frame: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        kind = frame.get("event")
        if kind == "media":
            audio = base64.b64decode(frame["media"]["payload"])
            starts = max(loop.time(), self._play_end)
            self._play_end = starts + len(audio) / mulaw.SAMPLE_RATE / self.speed
            self.log.pieces.append(Heard(time.perf_counter(), audio, starts))
        elif kind == "mark":
            name = frame["mark"]["name"]
            delay = max(0.0, self._play_end - loop.time())
            self._unnamed += 1
            self._marks.append(loop.call_later(delay, self._name_back, name))
        elif kind == "clear":
            self._clear(loop.time())

    def _name_back(self, name: str) -> None:
        self._unnamed -= 1
        self.log.marks_named.append(name)
        self._outgoing_marks.append(name)  # sent by the line's task, before its next frame

    def _clear(self, now: float) -> None:
        self.log.clears.append(time.perf_counter())
        for handle in self._marks:
            handle.cancel()
        self._marks.clear()
        self._unnamed = 0
        kept = []
        for piece in self.log.pieces:
            if piece.starts >= now:
                continue  # never played
            played = int((now - piece.starts) * mulaw.SAMPLE_RATE * self.speed)
            if played < len(piece.audio):
                piece.audio, piece.cut = piece.audio[:played], True
            kept.append(piece)
        self.log.pieces = kept
        self._play_end = now

    # Waiting on the agent

    def playing(self) -> bool:
        return asyncio.get_running_loop().time() < self._play_end or self._unnamed > 0

    async def until_quiet(self, since: float, quiet_s: float = 0.8, limit_s: float = 30.0) -> bool:
        """Wait for agent audio that arrived after `since` (a perf_counter time), and then for
        the agent to be quiet for `quiet_s` with its audio played; False when `limit_s` passed
        first, or the agent said nothing."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        count, heard_at = -1, loop.time()
        while loop.time() < deadline:
            if self.first_audio_after(since) is not None:
                if len(self.log.pieces) != count or self.playing():
                    count, heard_at = len(self.log.pieces), loop.time()
                elif loop.time() - heard_at >= quiet_s / self.speed:
                    return True
            elif self.closed.is_set():
                return False
            await asyncio.sleep(0.05)
        return False

    def audio_since(self, at: float) -> bytes:
        """The agent audio played that arrived after `at` (a perf_counter time)."""
        return b"".join(p.audio for p in self.log.pieces if p.arrived >= at)

    def first_audio_after(self, at: float) -> float | None:
        return next((p.arrived for p in self.log.pieces if p.arrived >= at), None)
