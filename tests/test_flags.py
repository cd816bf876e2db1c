"""Run-time flags: PATCH /v1/admin/flags changes the path of the very next turn, is audited
(when, who, old, new), refuses inconsistent changes, and the rollout percent splits calls
stably between enabled and shadow."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from voice_agent.flags import Flags, FlagsPatch, FlagStore
from voice_agent.server.service import Service
from voice_agent.settings import BUNDLED_FLOWS_PATH, load_settings

from .conftest import call
from .fakes import FakeLLM

pytestmark = pytest.mark.model


async def test_a_flag_change_takes_the_very_next_turn_and_is_audited(
    make_service: Callable[..., Service], running: Any, tmp_path: Path
) -> None:
    audit = tmp_path / "audit.jsonl"
    service = make_service(FakeLLM(), VOICE_AGENT_AUDIT_LOG=str(audit))
    async with running(service) as url, httpx.AsyncClient(base_url=url) as http:
        async with call(url) as client:
            await client.start()
            before = (await client.ask("hello there"))[-1]
            response = await http.patch(
                "/v1/admin/flags", json={"mode": "disabled"}, headers={"X-Actor": "oncall-ana"}
            )
            after = (await client.ask("hello there"))[-1]
            await http.patch("/v1/admin/flags", json={"mode": "enabled", "quick_responses": False})
            no_quick = (await client.ask("hello there"))[-1]
        flags = (await http.get("/v1/admin/flags")).json()
        refused = await http.patch(
            "/v1/admin/flags", json={"first_token_budget_s": 9, "llm_timeout_s": 3}
        )
        unknown = await http.patch("/v1/admin/flags", json={"turbo": True})
    assert response.status_code == 200 and response.json()["mode"] == "disabled"
    assert (before["source"], after["source"], no_quick["source"]) == ("quick", "llm", "llm")
    assert flags["mode"] == "enabled" and flags["quick_responses"] is False
    assert refused.status_code == 422 and "first_token_budget_s" in refused.text
    assert unknown.status_code == 422
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    # No keys configured (loopback): the actor is "local", whatever X-Actor claims; with keys
    # it is the admin key's name (tests/server/test_access.py).
    assert [(e["who"], e["old"], e["new"]) for e in lines] == [
        ("local", {"mode": "enabled"}, {"mode": "disabled"}),
        ("local", {"mode": "disabled", "quick_responses": True},
         {"mode": "enabled", "quick_responses": False}),
    ]  # fmt: skip
    assert all(isinstance(e["at"], float) for e in lines)


def test_the_rollout_sends_a_stable_share_of_calls_to_enabled() -> None:
    flags = Flags("enabled", 25, True, True, 0.88, 0.8, 3.0)
    calls = [f"call-{i}" for i in range(2000)]
    modes = [flags.mode_for(c) for c in calls]
    assert 0.22 < modes.count("enabled") / len(calls) < 0.28
    assert set(modes) == {"enabled", "shadow"}
    assert modes == [flags.mode_for(c) for c in calls]  # stable per call
    assert Flags("disabled", 25, True, True, 0.88, 0.8, 3.0).mode_for("call-1") == "disabled"


def test_an_unwritable_audit_log_refuses_a_change_but_not_the_automatic_rollback(
    tmp_path: Path,
) -> None:
    store = FlagStore(Flags("enabled", 100, True, True, 0.88, 0.8, 3.0), audit_log=tmp_path)
    with pytest.raises(IsADirectoryError):  # the "log" is a directory: nothing can be written
        store.change(FlagsPatch(mode="disabled"), who="oncall")
    assert store.current.mode == "enabled"
    store.change(FlagsPatch(mode="shadow"), who="auto-rollback", must_record=False)
    assert store.current.mode == "shadow"


def test_an_empty_audit_log_setting_means_no_audit_log() -> None:
    assert load_settings(VOICE_AGENT_AUDIT_LOG="").audit_log is None
    assert load_settings(VOICE_AGENT_TELEMETRY_FILE=" ").telemetry_file is None


async def test_a_budget_flag_every_flow_overrides_is_refused_and_a_partial_one_says_where(
    make_service: Callable[..., Service], running: Any, tmp_path: Path
) -> None:
    only_pharmacy = tmp_path / "flows"
    only_pharmacy.mkdir()
    shutil.copy(BUNDLED_FLOWS_PATH / "pharmacy.yaml", only_pharmacy)
    alone = make_service(
        FakeLLM(), VOICE_AGENT_FLOW_PATH=str(only_pharmacy), VOICE_AGENT_DEFAULT_FLOW="pharmacy"
    )
    both = make_service(FakeLLM())  # the bundled flows: pharmacy sets its budgets, qa does not
    async with running(alone) as url, httpx.AsyncClient(base_url=url) as http:
        refused = await http.patch("/v1/admin/flags", json={"llm_timeout_s": 0.01})
        unchanged = (await http.get("/v1/admin/flags")).json()
    async with running(both) as url, httpx.AsyncClient(base_url=url) as http:
        partial = await http.patch("/v1/admin/flags", json={"llm_timeout_s": 2.0})
    assert refused.status_code == 409 and "pharmacy.answer" in refused.json()["detail"]
    assert unchanged["llm_timeout_s"] == 3.0  # nothing was changed
    assert partial.status_code == 200 and partial.json()["llm_timeout_s"] == 2.0
    assert "pharmacy.answer" in partial.json()["overridden_in"]["llm_timeout_s"]
    assert not any(s.startswith("qa.") for s in partial.json()["overridden_in"]["llm_timeout_s"])
