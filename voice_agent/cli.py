"""The `voice-agent` command: serve, call, ingest, explain, warm, report, flow."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from voice_agent.errors import ConfigError, KnowledgeBaseError

DEFAULT_URL = "http://127.0.0.1:8000"


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from voice_agent.app import create_app
    from voice_agent.settings import load_settings

    overrides = {}
    if args.host:
        overrides["VOICE_AGENT_HOST"] = args.host
    if args.port is not None:
        overrides["VOICE_AGENT_PORT"] = args.port
    settings = load_settings(**overrides)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    from voice_agent.service import build_service

    # Built before the server starts, so that a model or setting that cannot work stops
    # start-up with one line (see main) instead of a traceback from inside the server.
    service = build_service(settings)
    uvicorn.run(
        create_app(service=service, owns_service=True),
        host=settings.host,
        port=settings.port,
        # Frames past the app's own limit get an error frame; this bound only protects memory.
        ws_max_size=settings.max_frame_bytes * 16,
        log_level=settings.log_level.lower(),
    )
    return 0


def _ws_url(base: str) -> str:
    base = base.rstrip("/")
    if base.startswith("http"):
        base = "ws" + base[len("http") :]
    return base + "/v1/calls"


class _Printer:
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


async def _call(url: str, lines: Sequence[str] | None, flow: str | None) -> int:
    """A text call: each line is one caller turn; the agent's words print as they stream."""
    import websockets

    interactive = lines is None and sys.stdin.isatty()
    async with websockets.connect(_ws_url(url)) as ws:
        start: dict[str, object] = {"type": "call.start"}
        if flow:
            start["flow"] = flow
        await ws.send(json.dumps(start))
        ready = json.loads(await ws.recv())
        if ready.get("type") != "call.ready":
            print(f"[could not start: {ready.get('message', ready)}]")
            return 1
        print(f"[call {ready['call_id']} state={ready['state']} mode={ready['mode']}]")
        printer = _Printer()

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


def _ingest(args: argparse.Namespace) -> int:
    import httpx

    from voice_agent.rag.documents import load_documents

    docs = load_documents(Path(args.path))
    body = {"documents": [{"id": d.id, "title": d.title, "text": d.text} for d in docs]}
    response = httpx.post(args.url.rstrip("/") + "/v1/ingest", json=body, timeout=120)
    if response.status_code != 200:
        print(f"ingest failed ({response.status_code}): {response.text}", file=sys.stderr)
        return 1
    result = response.json()
    print(
        f"added {result['added']} documents; the knowledge base now has {result['documents']} "
        f"documents in {result['chunks']} chunks (version {result['version']})"
    )
    return 0


def _explain(args: argparse.Namespace) -> int:
    """Ask a running service (--url) or, with --offline, build one here and ask it."""
    body = {"text": args.text, "flow": args.flow, "state": args.state}
    if args.offline:
        from voice_agent.explain import ExplainError, explain
        from voice_agent.service import build_service
        from voice_agent.settings import load_settings

        service = build_service(load_settings())
        try:
            result = asyncio.run(explain(service, args.text, args.flow, args.state))
        except ExplainError as exc:
            print(f"voice-agent: {exc}", file=sys.stderr)
            return 2
    else:
        import httpx

        response = httpx.post(args.url.rstrip("/") + "/v1/explain", json=body, timeout=60)
        if response.status_code != 200:
            print(f"explain failed ({response.status_code}): {response.text}", file=sys.stderr)
            return 1
        result = response.json()
    print(json.dumps(result, indent=2))
    return 0


def _warm(args: argparse.Namespace) -> int:
    """Generate answers to frequent questions with the configured LLM, into a warm file."""
    from voice_agent.cache_warming import WarmAnswer, answering_scopes, generate, write_warm_file
    from voice_agent.service import build_service
    from voice_agent.settings import load_settings
    from voice_agent.turn import TurnRecord

    lines = Path(args.questions).read_text(encoding="utf-8").splitlines()
    questions = list(dict.fromkeys(q.strip() for q in lines if q.strip() and not q.startswith("#")))
    settings = load_settings()
    service = build_service(settings)
    flow = service.flows.get(args.flow)
    if flow is None:
        raise ConfigError(f"no flow named {args.flow!r}")
    states = [s.state for s in answering_scopes([flow], "", settings.language)]
    state = args.state or (states[0] if states else None)
    if state not in states:
        raise ConfigError(f"flow {flow.name!r} has no cacheable answering state {state!r}")

    async def run() -> list[WarmAnswer]:
        answers = []
        try:
            async for question, reply in generate(
                service.responder, questions, flow.name, state, lambda n: TurnRecord("warm", n)
            ):
                if reply.source == "llm" and reply.answer:
                    answers.append(WarmAnswer(question, reply.answer, flow.name, state))
                    print(f"ok    {question} -> {reply.answer}")
                else:
                    print(f"skip  {question} ({reply.source}: {reply.detail.get('reason')})")
        finally:
            await service.aclose()
        return answers

    answers = asyncio.run(run())
    written = write_warm_file(Path(args.out), answers)
    print(
        f"wrote {written} of {len(questions)} answers to {args.out} for {flow.name}/{state}; "
        f"serve them with VOICE_AGENT_CACHE_WARM_FILE={args.out}"
    )
    return 0 if written == len(questions) else 1


def _report(args: argparse.Namespace) -> int:
    from voice_agent.report import Pricing, read, write

    try:
        rows = read(Path(args.telemetry))
    except ValueError as exc:
        print(f"voice-agent: {exc}", file=sys.stderr)
        return 2
    pricing = Pricing(args.prompt_tokens, args.usd_per_million_tokens)
    report = write(rows, Path(args.out), pricing, args.telemetry)
    print(f"wrote {report} and its charts")
    return 0


def _flow_check(args: argparse.Namespace) -> int:
    from state_machine import FlowError, check_flow, read_flow
    from voice_agent.flows import flow_files

    status = 0
    for path in flow_files(Path(args.path)):
        try:
            flow = read_flow(path)
        except FlowError as exc:
            print(exc)
            status = 1
            continue
        problems = check_flow(flow)
        for problem in problems:
            print(problem)
        if problems:
            status = 1
        else:
            print(f"{path}: ok: flow {flow.name!r}, {len(flow.states)} states, start {flow.start}")
    return status


def _flow_graph(args: argparse.Namespace) -> int:
    from state_machine import FlowError, mermaid, read_flow

    try:
        print(mermaid(read_flow(Path(args.path))), end="")
    except FlowError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voice-agent", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the service (settings from the environment)")
    serve.add_argument("--host", help="overrides VOICE_AGENT_HOST")
    serve.add_argument("--port", type=int, help="overrides VOICE_AGENT_PORT")
    serve.set_defaults(run=_serve)

    call = commands.add_parser("call", help="an interactive text call to a running service")
    call.add_argument("--url", default=DEFAULT_URL, help=f"service URL (default {DEFAULT_URL})")
    call.add_argument("--say", action="append", help="a caller line; repeat for several turns")
    call.add_argument("--flow", help="the flow to run (default: the service's default flow)")
    call.set_defaults(run=lambda a: asyncio.run(_call(a.url, a.say, a.flow)))

    ingest = commands.add_parser("ingest", help="add documents to a running service")
    ingest.add_argument("path", help="a folder of .md/.txt files, one file, or a .jsonl file")
    ingest.add_argument("--url", default=DEFAULT_URL, help=f"service URL (default {DEFAULT_URL})")
    ingest.set_defaults(run=_ingest)

    explain = commands.add_parser(
        "explain", help="show what every tier would decide for TEXT, with scores"
    )
    explain.add_argument("text")
    explain.add_argument("--state", help="the flow state (default: the flow's start)")
    explain.add_argument("--flow", help="the flow (default: the service's default)")
    explain.add_argument("--url", default=DEFAULT_URL, help=f"service URL (default {DEFAULT_URL})")
    explain.add_argument("--offline", action="store_true", help="load the models here instead")
    explain.set_defaults(run=_explain)

    warm = commands.add_parser(
        "warm", help="generate answers to frequent questions for the response cache"
    )
    warm.add_argument("questions", help="a text file, one question per line")
    warm.add_argument("--out", default="warm.jsonl", help="the warm file (default warm.jsonl)")
    warm.add_argument("--flow", help="the flow (default: the service's default)")
    warm.add_argument("--state", help="the answering state (default: the flow's first)")
    warm.set_defaults(run=_warm)

    report = commands.add_parser(
        "report", help="compare a shadow or canary period from a telemetry file"
    )
    report.add_argument("telemetry", help="a VOICE_AGENT_TELEMETRY_FILE (JSON lines)")
    report.add_argument("--out", default="report", help="folder for report.md and charts")
    report.add_argument("--prompt-tokens", type=int, default=600, help="per LLM call")
    report.add_argument("--usd-per-million-tokens", type=float, default=0.60)
    report.set_defaults(run=_report)

    flow = commands.add_parser("flow", help="check or draw flow files")
    flow_commands = flow.add_subparsers(dest="flow_command", required=True)
    check = flow_commands.add_parser("check", help="validate flows and list every problem")
    check.add_argument("path", help="a flow file or a folder of them")
    check.set_defaults(run=_flow_check)
    graph = flow_commands.add_parser("graph", help="print a flow as a Mermaid state diagram")
    graph.add_argument("path", help="a flow file")
    graph.set_defaults(run=_flow_graph)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (ConfigError, KnowledgeBaseError) as exc:
        print(f"voice-agent: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(f"voice-agent: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
