"""The dashboard in a real browser (Debian's Chromium, driven by Playwright) against the real
service on a loopback port, behind API keys: the page asks for a key and keeps it for the tab,
its charts fill while 50 scripted calls talk to the service, a call opens into its turns, the
test console holds a conversation, and the rollback switch puts the next turn in shadow mode.
Screenshots go to artifacts/dashboard/ (taken while the load still runs)."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import websockets
from playwright.async_api import Page, async_playwright

from voice_agent.server.service import Service

from ..fakes import FakeLLM, scaled

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "dashboard"
VIEWER = "viewer-key-0123456789abcdef"
ADMIN = "oncall-key-0123456789abcdef"
KEYS = {"VOICE_AGENT_API_KEYS": f"viewer:{VIEWER}", "VOICE_AGENT_ADMIN_KEYS": f"oncall:{ADMIN}"}
SMALL_TALK = ["Hi there", "Thanks a lot", "Hold on a second", "Are you a real person?"]
FAQ = ["Is there parking?", "Where are you located?", "What is your fax number?",
       "How long does a refill take?", "Do you take Aetna?"]  # fmt: skip
# A turn a second or so: the load lasts about 20 s, longer on a machine told to be slow, so
# the charts fill while it still runs.
TURNS = round(20 * scaled(1.0))
KNOWLEDGE = ["Do you carry medication for pets?", "Can I get my prescriptions by mail?",
             "Where can I dispose of old medication?", "Do you sell blood pressure monitors?",
             "What languages do your pharmacists speak?",
             "Can someone else pick up my prescription?"]  # fmt: skip


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("Chromium is not installed: `make servers` installs it (apt-get chromium)")
    return found


@asynccontextmanager
async def browser_page() -> AsyncIterator[tuple[Page, list[str]]]:
    """A headless Chromium page, and the console errors and page errors it logs."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium(), args=["--no-sandbox"]
        )
        page = await browser.new_page(viewport={"width": 1500, "height": 1500})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            yield page, errors
        finally:
            await browser.close()


async def enter_key(page: Page, url: str, key: str) -> None:
    await page.goto(url + "/dashboard")
    await page.wait_for_selector("#key-form:not([hidden])", timeout=scaled(10) * 1000)
    await page.fill("#key", key)
    await page.click("#key-form button[type=submit]")
    await page.wait_for_function("() => window.dashboard.polls > 0", timeout=scaled(10) * 1000)


async def scripted_call(url: str, n: int, turns: int, rng: random.Random) -> list[str]:
    """One caller: small talk, FAQ and knowledge-base questions in turn, with pauses."""
    sources = []
    ws_url = url.replace("http://", "ws://") + f"/v1/calls?token={VIEWER}"
    await asyncio.sleep(rng.uniform(0, 1.0))
    async with websockets.connect(ws_url) as ws:
        await ws.send(json.dumps({"type": "call.start", "call_id": f"load-{n:02d}"}))
        json.loads(await ws.recv())
        for t in range(turns):
            pool = (SMALL_TALK, FAQ, KNOWLEDGE)[(n + t) % 3]
            await ws.send(json.dumps({"type": "user.utterance", "text": pool[(n + t) % len(pool)]}))
            while (frame := json.loads(await ws.recv()))["type"] != "agent.done":
                pass
            sources.append(frame["source"])
            await asyncio.sleep(rng.uniform(0.5, 1.5))
        await ws.send(json.dumps({"type": "call.end"}))
    return sources


FILLED = """() => {
  const c = window.dashboard.charts;
  const some = (plot, from, to) => plot.data.slice(from, to).some(
      (series) => series.some((v) => v !== null && v !== undefined && v > 0));
  return {
    latency: some(c.latency, 1, 6), mix: some(c.mix, 1, 5), cache: some(c.cache, 1, 2),
    saved: some(c.saved, 1, 2), quality: some(c.quality, 1, 5),
    quality_lines: some(c.quality, 5, 8),
    stages: document.querySelectorAll('#stages .bar').length > 0,
    alerts: document.querySelectorAll('#alerts li[data-kind]').length > 0,
    calls: document.querySelectorAll('#calls-active tr').length > 0,
    comparison: document.querySelector('#comparison table') !== null,
  };
}"""


@pytest.fixture
def dashboard_service(make_service: Callable[..., Service], tmp_path: Path) -> Service:
    return make_service(
        FakeLLM(first_token_s=0.3),
        VOICE_AGENT_RESPONSE_CACHE=True,
        VOICE_AGENT_AUDIT_LOG=str(tmp_path / "audit.jsonl"),
        # Knowledge-base answers (0.3 s) cross this line, so latency alerts fire and show.
        LATENCY_ALERT_MS=250,
        LATENCY_ALERT_TURNS=3,
        LATENCY_ROLLBACK_MS=60000,
        QUALITY_WINDOW_TURNS=20,
        **KEYS,
    )


async def test_charts_fill_under_50_calls_with_no_console_errors(
    dashboard_service: Service, running: Any
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    async with running(dashboard_service) as url, browser_page() as (page, errors):
        await enter_key(page, url, VIEWER)
        load = asyncio.gather(*(scripted_call(url, n, TURNS, rng) for n in range(50)))
        filled: dict[str, bool] = {}
        for _ in range(int(scaled(60) * 2)):
            filled = await page.evaluate(FILLED)
            points = await page.evaluate("window.dashboard.points.length")
            # Every chart has data, over enough seconds to read as a line, the load still on.
            if (all(filled.values()) and points >= 12) or load.done():
                break
            await asyncio.sleep(0.5)
        active = int(await page.inner_text("#active-count"))
        await page.screenshot(path=str(ARTIFACTS / "under-load.png"), full_page=True)
        for panel in ("chart-latency", "chart-mix", "chart-cache", "chart-saved", "chart-quality"):
            await page.locator(f"#{panel}").screenshot(path=str(ARTIFACTS / f"{panel}.png"))
        await page.locator("#stages").screenshot(path=str(ARTIFACTS / "stages.png"))
        still_running = not load.done()
        sources = [s for call in await load for s in call]
    assert all(filled.values()), filled
    assert still_running and active > 0, "the screenshot was to be taken during the load"
    assert {"quick", "cache", "llm"} <= set(sources) and len(sources) == 50 * TURNS
    assert errors == []


async def test_a_call_opens_into_its_turns(dashboard_service: Service, running: Any) -> None:
    rng = random.Random(3)
    async with running(dashboard_service) as url, browser_page() as (page, errors):
        await enter_key(page, url, VIEWER)
        await asyncio.gather(*(scripted_call(url, n, 3, rng) for n in range(3)))
        assert dashboard_service.quality is not None
        await dashboard_service.quality.drain(scaled(10))
        row = page.locator('tr[data-call="load-01"]')
        await row.wait_for(timeout=scaled(10) * 1000)
        await row.click()
        await page.wait_for_selector("#call-detail .turn", timeout=scaled(10) * 1000)
        turns = page.locator("#call-detail .turn")
        texts = [await turns.nth(i).inner_text() for i in range(await turns.count())]
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.locator("#call-panel").screenshot(path=str(ARTIFACTS / "call-turns.png"))
    assert len(texts) == 3
    # Each turn: what was said, the source and answer, state, stage timings, quality parts.
    assert "Where are you located?" in texts[0] and "cache" in texts[0]
    assert all("state answer" in t and "first_token" in t for t in texts)
    assert any("quality " in t and "relevance" in t for t in texts)
    assert "match" in texts[0]  # the cache's match and its similarity
    assert errors == []


async def test_the_console_holds_a_conversation(dashboard_service: Service, running: Any) -> None:
    async with running(dashboard_service) as url, browser_page() as (page, errors):
        await enter_key(page, url, VIEWER)
        await page.click("#console-start")
        await page.wait_for_selector("#console-text:not([disabled])", timeout=scaled(10) * 1000)
        for n, line in enumerate(["Hi there", "Is there parking?", "Do you carry pet medication?"]):
            await page.fill("#console-text", line)
            await page.click("#console-send")
            await page.wait_for_function(
                f"() => document.querySelectorAll('#console-log .agent').length > {n}",
                timeout=scaled(15) * 1000,
            )
        log = await page.inner_text("#console-log")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.locator(".console").screenshot(path=str(ARTIFACTS / "console.png"))
    assert log.count("you:") == 3 and log.count("agent:") == 3
    assert "quick first word" in log and "cache first word" in log and "llm first word" in log
    assert errors == []


async def test_the_rollback_switch_puts_the_next_turn_in_shadow(
    dashboard_service: Service, running: Any, tmp_path: Path
) -> None:
    async with running(dashboard_service) as url, browser_page() as (page, errors):
        await enter_key(page, url, VIEWER)
        await page.click("#rollback")  # a viewer's key may look, not change
        await page.wait_for_selector("#flags-message.error", timeout=scaled(10) * 1000)
        refused = await page.inner_text("#flags-message")
        await page.evaluate("sessionStorage.clear()")
        await enter_key(page, url, ADMIN)
        await page.click("#console-start")
        await page.wait_for_selector("#console-text:not([disabled])", timeout=scaled(10) * 1000)
        await page.fill("#console-text", "Is there parking?")
        await page.click("#console-send")
        await page.wait_for_function(
            "() => document.querySelectorAll('#console-log .agent').length > 0"
        )
        await page.click("#rollback")
        await page.wait_for_function(
            "() => document.getElementById('mode').textContent === 'mode shadow'",
            timeout=scaled(10) * 1000,
        )
        await page.fill("#console-text", "Is there parking?")
        await page.click("#console-send")
        await page.wait_for_function(
            "() => document.querySelectorAll('#console-log .agent').length > 1"
        )
        lines = await page.locator("#console-log .meta").all_inner_texts()
        # The call opens with the shadow turn's would-be answer beside the served one.
        await dashboard_service.shadow.drain(scaled(10))
        row = page.locator('#calls-active tr[data-call^="console-"]')
        await row.wait_for(timeout=scaled(10) * 1000)
        await page.wait_for_function(
            "() => document.querySelector("
            "'#calls-active tr[data-call^=\"console-\"] td:nth-child(4)').textContent === '2'",
            timeout=scaled(10) * 1000,
        )  # fmt: skip
        await row.click()
        await page.wait_for_selector("#call-detail .turn .wouldbe", timeout=scaled(10) * 1000)
        shadow_turn = await page.locator("#call-detail .turn").nth(1).inner_text()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "rolled-back.png"))
    assert "403" in refused and "not an admin key" in refused
    assert lines[0].startswith("cache") and lines[1].startswith("llm")  # shadow: the LLM serves
    assert dashboard_service.flags.current.mode == "shadow"
    assert "would-be (cache" in shadow_turn and "Free parking" in shadow_turn
    assert "mode shadow" in shadow_turn and "similarity" in shadow_turn
    audit = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert audit[-1]["new"] == {"mode": "shadow"} and "oncall" in audit[-1]["who"]
    # The viewer's refusal is the one console error: the browser logs the 403 it got.
    assert all("403" in e for e in errors), errors


async def test_callers_words_are_shown_as_text_never_as_markup(
    dashboard_service: Service, running: Any
) -> None:
    payload = 'Hi there <img src="x" id="injected"> <b>bold</b>'
    async with running(dashboard_service) as url, browser_page() as (page, errors):
        await enter_key(page, url, VIEWER)
        ws_url = url.replace("http://", "ws://") + f"/v1/calls?token={VIEWER}"
        async with websockets.connect(ws_url) as ws:
            await ws.send(json.dumps({"type": "call.start", "call_id": "markup"}))
            await ws.recv()
            await ws.send(json.dumps({"type": "user.utterance", "text": payload}))
            while json.loads(await ws.recv())["type"] != "agent.done":
                pass
            row = page.locator('tr[data-call="markup"]')
            await row.wait_for(timeout=scaled(10) * 1000)
            await row.click()
            await page.wait_for_selector("#call-detail .turn", timeout=scaled(10) * 1000)
            shown = await page.inner_text("#call-detail .turn .said")
            injected = await page.locator("#call-detail #injected, #call-detail b").count()
    assert payload in shown and injected == 0
    assert errors == []
