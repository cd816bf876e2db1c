"""The bundled model's own process: a small OpenAI-compatible server around one llama.cpp
context, started and watched by `supervisor.py`, so that a crash of llama.cpp ends one LLM call
instead of every call of the service.

    python -m voice_agent.llm.model_server --model PATH [--threads 2] [--ctx 2048]

It loads and warms the model, then prints one line on stdout: `ready PORT` once it listens on
127.0.0.1:PORT, or `error MESSAGE` and exits 3 when the model cannot produce a token. It serves
`POST /v1/chat/completions` (streamed or not) and `GET /health`. Generations run one at a
time; a client that disconnects stops its generation at the next token.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import resource
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voice_agent.types import Message

EXIT_CANNOT_LOAD = 3
MAX_BODY_BYTES = 1_000_000
ROLES = ("system", "user", "assistant")


@dataclass(slots=True)
class Activity:
    """What the supervisor's health checks read: is a generation running, and when did it last
    make progress (time.monotonic(), the same clock in every process of the machine)."""

    busy: bool = False
    last_progress: float = 0.0
    last_stopped: float = 0.0
    last_released: float = 0.0
    generations: int = 0

    def as_dict(self) -> dict[str, object]:
        now = time.monotonic()
        return {
            "status": "ok",
            "busy": self.busy,
            "stalled_s": round(now - self.last_progress, 3) if self.busy else None,
            "last_stopped_monotonic": self.last_stopped,
            "last_released_monotonic": self.last_released,
            "generations": self.generations,
        }


class _End:
    pass


_END = _End()


class BadRequest(Exception):
    pass


def parse_request(body: Any) -> tuple[list[Message], int, float | None, bool]:
    """The fields of a chat completion request this server acts on; the rest are ignored."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise BadRequest("messages must be a non-empty list")
    messages = []
    for item in raw:
        if not isinstance(item, dict) or item.get("role") not in ROLES:
            raise BadRequest(f"each message needs a role among {ROLES}")
        content = item.get("content")
        if not isinstance(content, str):
            raise BadRequest("each message needs text content")
        messages.append(Message(item["role"], content))
    max_tokens = body.get("max_tokens", 256)
    if not isinstance(max_tokens, int) or not 1 <= max_tokens <= 4096:
        raise BadRequest("max_tokens must be a whole number from 1 to 4096")
    temperature = body.get("temperature")
    if temperature is not None and not isinstance(temperature, int | float):
        raise BadRequest("temperature must be a number")
    return messages, max_tokens, temperature, bool(body.get("stream", False))


class MainThreadExecutor(Executor):
    """Runs what is submitted on the thread that calls `run_forever`: the process's main
    thread, where llama.cpp evaluates a prompt about 1% faster than on a pool thread (measured:
    10 ms on a 1 s prompt of the demo, bench/model_speed.py). One at a time, in order."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self._jobs.put((future, lambda: fn(*args, **kwargs)))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._jobs.put(None)

    def run_forever(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, call = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)


async def generate(
    model: Any,
    activity: Activity,
    executor: Executor,
    messages: Sequence[Message],
    max_tokens: int,
    temperature: float | None,
) -> AsyncIterator[dict[str, Any]]:
    """The model's chunks for one request, made on `executor` and handed to the event loop;
    when the consumer stops (the client left), the model stops at its next token."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[dict[str, Any] | _End | BaseException] = asyncio.Queue()
    stop = threading.Event()

    def put(item: dict[str, Any] | _End | BaseException) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop closed while the model was still working
            stop.set()

    def produce() -> None:
        if stop.is_set():  # the client left while waiting for the model
            put(_END)
            return
        activity.busy, activity.last_progress = True, time.monotonic()
        activity.generations += 1
        pieces = model.chunks(messages, max_tokens, temperature)
        try:
            for chunk in pieces:
                activity.last_progress = time.monotonic()
                if stop.is_set():
                    break
                chunk["model"] = "local"  # not the file's path, on every token
                put(chunk)
        except Exception as exc:  # task boundary: the failure goes to the client
            put(exc)
        finally:
            pieces.close()
            activity.busy, activity.last_stopped = False, time.monotonic()
            put(_END)

    loop.run_in_executor(executor, produce)
    try:
        while True:
            item = await queue.get()
            if isinstance(item, _End):
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:  # the client left, or the answer is complete
        activity.last_released = time.monotonic()
        stop.set()  # the model stops at its next token


def build_app(model: Any, activity: Activity, executor: Executor | None = None) -> Any:
    """A Starlette app around `model` (a `LlamaModel`, or anything with its `chunks`); its
    generations run on `executor` (default: a thread of their own)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")

    async def completions(request: Request) -> Response:
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return _error(413, f"the body is over {MAX_BODY_BYTES} bytes")
        try:
            messages, max_tokens, temperature, stream = parse_request(json.loads(raw))
        except (ValueError, BadRequest) as exc:
            return _error(400, str(exc))
        pieces = generate(model, activity, executor, messages, max_tokens, temperature)
        if stream:
            return StreamingResponse(_sse(pieces), media_type="text/event-stream")
        try:
            text = "".join([c["choices"][0]["delta"].get("content") or "" async for c in pieces])
        except Exception as exc:  # the model failed: the client gets the reason
            return _error(500, f"the model failed: {exc}")
        return JSONResponse(_completion(text))

    async def health(request: Request) -> Response:
        return JSONResponse(activity.as_dict())

    def _error(status: int, message: str) -> Response:
        error = {"message": message, "type": "invalid_request_error"}
        return JSONResponse({"error": error}, status)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        executor.shutdown(wait=False, cancel_futures=True)

    return Starlette(
        routes=[
            Route("/v1/chat/completions", completions, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


async def _sse(pieces: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    try:
        async for chunk in pieces:
            yield f"data: {json.dumps(chunk)}\n\n"
    except Exception as exc:  # the model failed mid-answer: an error event, as OpenAI sends
        yield f"data: {json.dumps({'error': {'message': f'the model failed: {exc}'}})}\n\n"
        return
    yield "data: [DONE]\n\n"


def _completion(text: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "local",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
    }


def _exit_with_parent() -> None:
    """End this process when the service that started it ends, however it ends: the service
    holds the other end of this process's stdin, and the kernel closes it when the service
    exits, so a read here sees the end of the file."""

    def wait() -> None:
        while sys.stdin.buffer.read(4096):
            pass
        os._exit(0)

    threading.Thread(target=wait, name="parent-watch", daemon=True).start()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="serve a GGUF model to the voice-agent service")
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ctx", type=int, default=2048)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    _exit_with_parent()
    # A crash must not leave a core file the size of the model in the service's folder.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    from voice_agent.llm.llama_model import LlamaModel

    try:
        model = LlamaModel(args.model, n_threads=args.threads, n_ctx=args.ctx)
        model.warm()
    except Exception as exc:  # start-up check: one line for the supervisor, no traceback
        print(f"error {type(exc).__name__}: {exc}".replace("\n", " "), flush=True)
        return EXIT_CANNOT_LOAD

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(64)
    print(f"ready {sock.getsockname()[1]}", flush=True)
    executor = MainThreadExecutor()
    config = uvicorn.Config(
        build_app(model, Activity(), executor), log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    # The server on a thread of its own, the model on the main thread; the process ends with
    # the service (stdin closed) or by a signal's default action.
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    executor.run_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
