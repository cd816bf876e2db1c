"""The model process's own logic, without a model: request parsing, the stream it serves, the
supervisor's backoff and exit descriptions."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from starlette.testclient import TestClient

from voice_agent.llm.model_server import Activity, BadRequest, build_app, parse_request
from voice_agent.llm.supervisor import describe_exit, restart_delay
from voice_agent.types import Message


class ScriptedModel:
    """Yields OpenAI-style chunks for `words`, then fails if `fail_after` is set."""

    def __init__(self, words: Sequence[str], fail_after: int | None = None) -> None:
        self.words = words
        self.fail_after = fail_after
        self.asked: list[tuple[list[Message], int]] = []

    def chunks(
        self, messages: Sequence[Message], max_tokens: int, temperature: float | None = None
    ) -> Iterator[dict[str, Any]]:
        self.asked.append((list(messages), max_tokens))
        for n, word in enumerate(self.words):
            if self.fail_after is not None and n == self.fail_after:
                raise RuntimeError("decode failed")
            yield {"choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}


def events(body: str) -> list[Any]:
    return [
        line[6:] if line == "data: [DONE]" else json.loads(line[6:])
        for line in body.splitlines()
        if line.startswith("data: ")
    ]


def test_a_request_is_read_for_the_fields_the_model_acts_on() -> None:
    messages, max_tokens, temperature, stream = parse_request(
        {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 9, "stream": True,
         "model": "anything", "top_p": 0.5}
    )  # fmt: skip
    assert [m.as_dict() for m in messages] == [{"role": "user", "content": "Hi"}]
    assert (max_tokens, temperature, stream) == (9, None, True)


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"messages": []},
        {"messages": [{"role": "tool", "content": "x"}]},
        {"messages": [{"role": "user", "content": ["x"]}]},
        {"messages": [{"role": "user", "content": "x"}], "max_tokens": 0},
        {"messages": [{"role": "user", "content": "x"}], "max_tokens": "9"},
        {"messages": [{"role": "user", "content": "x"}], "temperature": "hot"},
    ],
)
def test_a_malformed_request_is_refused_with_a_reason(body: Any) -> None:
    with pytest.raises(BadRequest):
        parse_request(body)


def test_the_stream_is_openai_chunks_ending_in_done() -> None:
    model = ScriptedModel(["We ", "open ", "at 9."])
    with TestClient(build_app(model, Activity())) as client:
        response = client.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "When?"}], "stream": True},
        )
        health = client.get("/health").json()
    assert response.status_code == 200
    parsed = events(response.text)
    assert parsed[-1] == "[DONE]"
    assert "".join(e["choices"][0]["delta"]["content"] for e in parsed[:-1]) == "We open at 9."
    assert health["busy"] is False and health["generations"] == 1


def test_a_model_that_fails_mid_answer_sends_an_error_event_and_no_done() -> None:
    model = ScriptedModel(["We ", "open ", "at 9."], fail_after=2)
    with TestClient(build_app(model, Activity())) as client:
        response = client.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "When?"}], "stream": True},
        )
    parsed = events(response.text)
    assert "[DONE]" not in parsed
    assert "decode failed" in parsed[-1]["error"]["message"]


def test_a_bad_body_gets_400_with_the_reason() -> None:
    with TestClient(build_app(ScriptedModel(["x"]), Activity())) as client:
        response = client.post("/v1/chat/completions", content=b"{not json")
        empty = client.post("/v1/chat/completions", json={"messages": []})
    assert response.status_code == 400
    assert empty.status_code == 400 and "messages" in empty.json()["error"]["message"]


def test_restarts_back_off_doubling_up_to_the_cap() -> None:
    assert [restart_delay(n, 0.5, 4.0) for n in range(1, 7)] == [0.5, 1, 2, 4, 4, 4]


def test_an_exit_is_described_by_its_signal_or_status() -> None:
    assert describe_exit(-signal.SIGSEGV) == "killed by SIGSEGV"
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(3) == "exited with status 3"
