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
    """Each start makes its own ONNX export (its own cache folder) and decides on vectors
    encoded in batches of 32, one at a time and in shuffled batches of 7, as timing would mix
    calls' sentences on the encoder."""
    idle = probe(tmp_path / "idle.json", environment(tmp_path / "idle"))
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(os.cpu_count() or 2)]
    try:
        busy = probe(tmp_path / "busy.json", environment(tmp_path / "busy"))
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    assert busy["runtime"] == idle["runtime"]
    first = idle["runs"]["batched"]
    assert len(first) >= 300
    # Not a test that cannot fail: the set holds template answers, refusals and cache hits.
    assert sum(d["quick"][1] for d in first) > 100 and sum(not d["quick"][1] for d in first) > 100
    assert sum(d["cache"] is not None for d in first) >= 5
    for start in (idle, busy):
        for batching, decisions in start["runs"].items():
            assert len(decisions) == len(first), batching
            for a, b in zip(first, decisions, strict=True):
                assert (a["text"], a["quick"], a["cache"]) == (b["text"], b["quick"], b["cache"])
                assert a["quick_score"] == pytest.approx(b["quick_score"], abs=1e-5)


def environment(encoder_cache: Path) -> dict[str, str]:
    return {**os.environ, "VOICE_AGENT_ENCODER_CACHE_DIR": str(encoder_cache)}
