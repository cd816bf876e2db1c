from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from voice_agent.server.speech import build_speech
from voice_agent.settings import load_settings
from voice_agent.speech.kit import SpeechKit


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpeechKit]:
    """The offline engines (Whisper tiny.en, the Piper voice), loaded once for the run; its
    phrasebook keeps audio in a folder of the run's own."""
    folder: Path = tmp_path_factory.mktemp("phrasebook")
    kit = build_speech(
        load_settings(VOICE_AGENT_SPEECH="offline", VOICE_AGENT_PHRASEBOOK_DIR=str(folder))
    )
    assert kit is not None
    yield kit
    kit.close()
