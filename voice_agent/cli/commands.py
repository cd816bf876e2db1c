"""The `voice-agent` subcommands other than `call`: each takes the parsed arguments and returns
the exit status. Heavy imports happen inside each, so that `--help` stays fast."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from voice_agent.errors import ConfigError


def serve(args: argparse.Namespace) -> int:
    from voice_agent.server.access import access_policy, check_exposure
    from voice_agent.settings import load_settings

    overrides = {}
    if args.host:
        overrides["VOICE_AGENT_HOST"] = args.host
    if args.port is not None:
        overrides["VOICE_AGENT_PORT"] = args.port
    if args.workers is not None:
        overrides["VOICE_AGENT_WORKERS"] = args.workers
    settings = load_settings(**overrides)
    check_exposure(settings, access_policy(settings))  # before the slow loading
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    from voice_agent.server.workers import serve_one, serve_workers

    if settings.workers > 1:
        return serve_workers(settings, {k: str(v) for k, v in overrides.items()})
    serve_one(settings)
    return 0


def ingest(args: argparse.Namespace) -> int:
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


def explain(args: argparse.Namespace) -> int:
    """Ask a running service (--url) or, with --offline, build one here and ask it."""
    body = {"text": args.text, "flow": args.flow, "state": args.state, "call_id": args.call_id}
    if args.offline:
        from voice_agent.errors import ExplainError
        from voice_agent.server.build import build_service
        from voice_agent.server.explain import explain as explain_text
        from voice_agent.settings import load_settings

        service = build_service(load_settings())
        try:
            result = asyncio.run(
                explain_text(service, args.text, args.flow, args.state, args.call_id)
            )
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


def warm(args: argparse.Namespace) -> int:
    """Generate answers to frequent questions with the configured LLM, into a warm file."""
    from voice_agent.cache.warming import (
        WarmAnswer,
        answering_scopes,
        generate,
        warm_answer,
        write_warm_file,
    )
    from voice_agent.server.build import build_service
    from voice_agent.settings import load_settings

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
                service.responder, service.encoder.embed, questions, flow.name, state
            ):
                ready = warm_answer(question, reply, flow.name, state)
                if ready is not None:
                    answers.append(ready)
                    print(f"ok    {question} -> {ready.answer}")
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


def report(args: argparse.Namespace) -> int:
    from voice_agent.telemetry.report import Pricing, read, write

    try:
        rows = read(Path(args.telemetry))
    except ValueError as exc:
        print(f"voice-agent: {exc}", file=sys.stderr)
        return 2
    pricing = Pricing(args.prompt_tokens, args.usd_per_million_tokens)
    report = write(rows, Path(args.out), pricing, args.telemetry)
    print(f"wrote {report} and its charts")
    return 0


def flow_check(args: argparse.Namespace) -> int:
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


def flow_graph(args: argparse.Namespace) -> int:
    from state_machine import FlowError, mermaid, read_flow

    try:
        print(mermaid(read_flow(Path(args.path))), end="")
    except FlowError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0
