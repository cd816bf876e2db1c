"""A small OpenAI-compatible chat-completions server for tests: streams set tokens as
Server-Sent Events, with a set delay, or fails with a set HTTP status."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse


@dataclass
class Behaviour:
    tokens: list[str] = field(default_factory=lambda: ["We ", "deliver ", "for ", "free."])
    first_token_s: float = 0.0
    token_s: float = 0.0  # between tokens
    status: int = 200
    cut: bool = False  # end the stream after the tokens, with no finish_reason and no [DONE]
    garbage: str | None = None  # sent as the whole event stream instead of the tokens
    requests: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)


def chunk(content: str | None, finish: str | None = None) -> str:
    body = {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "test-model",
        "choices": [
            {
                "index": 0,
                "delta": {} if content is None else {"role": "assistant", "content": content},
                "finish_reason": finish,
            }
        ],
    }
    return f"data: {json.dumps(body)}\n\n"


def openai_compatible_app(behaviour: Behaviour) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions", response_model=None)
    async def completions(request: Request) -> StreamingResponse | JSONResponse:
        body = await request.json()
        behaviour.requests.append(body)
        behaviour.authorizations.append(request.headers.get("authorization", ""))
        if behaviour.status != 200:
            return JSONResponse(
                {"error": {"message": "backend down", "type": "server_error"}},
                status_code=behaviour.status,
            )

        async def events() -> AsyncIterator[str]:
            await asyncio.sleep(behaviour.first_token_s)
            if behaviour.garbage is not None:
                yield behaviour.garbage
                return
            for index, token in enumerate(behaviour.tokens):
                if index:
                    await asyncio.sleep(behaviour.token_s)
                yield chunk(token)
            if behaviour.cut:
                return
            yield chunk(None, "stop")
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app
