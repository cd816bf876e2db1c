"""A failing listener is logged and skipped: the change it was told of stands, and the other
listeners still hear of it (a failing flags listener used to turn an applied PATCH into a 500)."""

from __future__ import annotations

import logging

import pytest

from voice_agent.flags import Flags, FlagsPatch, FlagStore
from voice_agent.listeners import Listeners


def broken(value: object) -> None:
    raise RuntimeError("a listener's own bug")


def test_a_failing_listener_is_logged_and_the_others_still_hear(
    caplog: pytest.LogCaptureFixture,
) -> None:
    heard: list[int] = []
    listeners: Listeners[[int]] = Listeners("test")
    listeners.append(broken)
    listeners.append(heard.append)
    listeners.notify(7)
    assert heard == [7]
    assert "test listener broken failed" in caplog.text


def test_a_flags_change_stands_when_a_listener_fails(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    store = FlagStore(Flags("enabled", 100.0, True, True, 0.88, 0.5, 2.0), audit_log=None)
    seen: list[Flags] = []
    store.on_change(broken)
    store.on_change(seen.append)
    changed = store.change(FlagsPatch(mode="shadow"), who="oncall")
    assert changed.mode == "shadow" and store.current.mode == "shadow"
    assert [f.mode for f in seen] == ["shadow"]
    assert "flags listener broken failed" in caplog.text
