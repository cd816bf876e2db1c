"""`voice-agent call`: a text call to a running service over the native protocol, the agent's
words printed as they stream."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence


def ws_url(base: str) -> str:
    base = base.rstrip("/")
    if base.startswith("http"):
        base = "ws" + base[len("http") :]
    return base + "/v1/calls"


class Printer:
    """Prints the agent's frames as they arrive and counts finished turns."""

    def __init__(self) -> None:
        self.turns_done = 0
        self.ended = False
        self.changed = asyncio.Event()
        self._mid_turn = False

    def show(self, frame: dict[str, object]) -> None:
        kind = frame.get("type")
        if kind == "agent.delta":
            if not self._mid_turn:
                print("agent> ", end="")
                self._mid_turn = True
            print(frame["text"], end="", flush=True)
            return
        if self._mid_turn:
            print()
            self._mid_turn = False
        if kind == "agent.done":
            lat = frame["latency_ms"]
            assert isinstance(lat, dict)
            first = lat.get("first_token", -1)
            print(
                f"  [{frame['source']}, state {frame['state']}] first word {first:.0f} ms, "
                f"done {lat.get('total', 0):.0f} ms"
            )
            self.turns_done += 1
        elif kind == "agent.action":
            extra = {k: v for k, v in frame.items() if k not in ("type", "turn_id", "action")}
            shown = f" {json.dumps(extra)}" if extra else ""
            print(f"  [action: {frame['action']}{shown}]")
        elif kind == "error":
            print(f"  [error {frame['code']}] {frame['message']}")
            self.turns_done += 1
        elif kind == "call.ended":
            print(f"[call ended: {frame['reason']}]")
            self.ended = True
        self.changed.set()

    async def wait_turns(self, count: int, timeout_s: float) -> None:
        """Until `count` turns have finished (or the call ended, or the time is up)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self.turns_done < count and not self.ended:
            self.changed.clear()
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except TimeoutError:
                return


async def text_call(url: str, lines: Sequence[str] | None, flow: str | None) -> int:
    """A text call: each line is one caller turn; the agent's words print as they stream."""
    import websockets

    interactive = lines is None and sys.stdin.isatty()
    async with websockets.connect(ws_url(url)) as ws:
        start: dict[str, object] = {"type": "call.start"}
        if flow:
            start["flow"] = flow
        await ws.send(json.dumps(start))
        ready = json.loads(await ws.recv())
        if ready.get("type") != "call.ready":
            print(f"[could not start: {ready.get('message', ready)}]")
            return 1
        print(f"[call {ready['call_id']} state={ready['state']} mode={ready['mode']}]")
        printer = Printer()

        async def read() -> None:
            async for raw in ws:
                printer.show(json.loads(raw))

        reader = asyncio.get_running_loop().create_task(read(), name="call-reader")
        # A flow that greets does so at once; give it a moment before the caller speaks.
        await printer.wait_turns(1, timeout_s=1.0)
        source = iter(lines) if lines is not None else None
        while not printer.ended:
            if source is not None:
                text = next(source, None)
            else:
                text = await asyncio.to_thread(_read_line, "you> " if interactive else "")
            if text is None:
                break
            text = text.strip()
            if not text:
                continue
            if not interactive:
                print(f"you> {text}")
            expected = printer.turns_done + 1
            await ws.send(json.dumps({"type": "user.utterance", "text": text, "final": True}))
            await printer.wait_turns(expected, timeout_s=60)
            await asyncio.sleep(0.2)  # actions and the end of the call follow the turn
        if not printer.ended:
            await ws.send(json.dumps({"type": "call.end"}))
            await printer.wait_turns(10**9, timeout_s=5)
        reader.cancel()
    return 0


def _read_line(prompt: str) -> str | None:
    try:
        return input(prompt)
    except EOFError:
        return None
