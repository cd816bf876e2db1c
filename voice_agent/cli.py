"""The `voice-agent` command: serve, call, ingest."""

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
    uvicorn.run(
        create_app(settings),
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


async def _call(url: str, lines: Sequence[str] | None) -> int:
    """A text call: each line typed is one caller turn; answers print as they stream."""
    import websockets

    interactive = lines is None and sys.stdin.isatty()
    async with websockets.connect(_ws_url(url)) as ws:
        await ws.send(json.dumps({"type": "call.start"}))
        ready = json.loads(await ws.recv())
        print(f"[call {ready.get('call_id')} state={ready.get('state')} mode={ready.get('mode')}]")
        source = iter(lines) if lines is not None else None
        while True:
            if source is not None:
                text = next(source, None)
            else:
                prompt = "you> " if interactive else ""
                text = await asyncio.to_thread(_read_line, prompt)
            if text is None:
                break
            text = text.strip()
            if not text:
                continue
            if not interactive:
                print(f"you> {text}")
            await ws.send(json.dumps({"type": "user.utterance", "text": text, "final": True}))
            print("agent> ", end="", flush=True)
            while True:
                frame = json.loads(await ws.recv())
                if frame["type"] == "agent.delta":
                    print(frame["text"], end="", flush=True)
                elif frame["type"] == "agent.done":
                    lat = frame["latency_ms"]
                    print(
                        f"\n  [{frame['source']}] first word {lat['first_token']:.0f} ms, "
                        f"done {lat['total']:.0f} ms"
                    )
                    break
                elif frame["type"] == "error":
                    print(f"\n  [error {frame['code']}] {frame['message']}")
                    break
                elif frame["type"] == "call.ended":
                    print(f"\n[call ended: {frame['reason']}]")
                    return 0
        await ws.send(json.dumps({"type": "call.end"}))
        ended = json.loads(await ws.recv())
        print(f"[call ended: {ended.get('reason')}]")
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
    call.set_defaults(run=lambda a: asyncio.run(_call(a.url, a.say)))

    ingest = commands.add_parser("ingest", help="add documents to a running service")
    ingest.add_argument("path", help="a folder of .md/.txt files, one file, or a .jsonl file")
    ingest.add_argument("--url", default=DEFAULT_URL, help=f"service URL (default {DEFAULT_URL})")
    ingest.set_defaults(run=_ingest)
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
