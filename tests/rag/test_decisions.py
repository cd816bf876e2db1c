"""The same model, settings and input give the same decisions on every start, whatever the
machine is doing: the encoder's runtime and precision are chosen by the vectors' agreement,
never by timing, so a start on busy cores serves exactly what a start on idle ones does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[2]
BURN = "while True: pass"


def probe(out: Path, env: dict[str, str]) -> dict:
    subprocess.run(
        [sys.executable, "-m", "tests.rag.decisions_probe", str(out)],
        cwd=ROOT, env=env, check=True, timeout=600,
    )  # fmt: skip
    return json.loads(out.read_text())


def test_quick_and_cache_decisions_are_identical_on_an_idle_and_a_busy_start(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "VOICE_AGENT_ENCODER_CACHE_DIR": str(tmp_path / "encoder")}
    idle = probe(tmp_path / "idle.json", env)
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(os.cpu_count() or 2)]
    try:
        busy = probe(tmp_path / "busy.json", env)
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    assert busy["runtime"] == idle["runtime"]
    first, second = idle["decisions"], busy["decisions"]
    assert len(first) == len(second) >= 300
    # Not a test that cannot fail: the set holds template answers, refusals and cache hits.
    assert sum(d["quick"][1] for d in first) > 100 and sum(not d["quick"][1] for d in first) > 100
    assert sum(d["cache"] is not None for d in first) >= 5
    for a, b in zip(first, second, strict=True):
        assert (a["text"], a["quick"], a["cache"]) == (b["text"], b["quick"], b["cache"])
        assert a["quick_score"] == pytest.approx(b["quick_score"], abs=1e-5)
