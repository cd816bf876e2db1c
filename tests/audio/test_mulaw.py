"""Mu-law as the telephone network defines it (the same bytes as CPython's own `audioop`, while
it still ships), 20 ms frames, and rate conversion that keeps speech and drops what the lower
rate cannot carry."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from voice_agent.audio import mulaw
from voice_agent.audio.resample import resample

EVERY_SAMPLE = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)


def test_every_byte_decodes_and_every_sample_encodes_as_audioop_does() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")  # gone from Python 3.13
    every_byte = bytes(range(256))
    expected = np.frombuffer(audioop.ulaw2lin(every_byte, 2), dtype=np.int16)
    assert np.array_equal(mulaw.decode(every_byte), expected)
    mine = np.frombuffer(mulaw.encode(EVERY_SAMPLE), dtype=np.uint8).astype(np.int32)
    theirs = np.frombuffer(audioop.lin2ulaw(EVERY_SAMPLE.tobytes(), 2), dtype=np.uint8)
    differ = mine != theirs
    # audioop drops two bits first (14-bit G.711), and its shift rounds a negative sample
    # toward minus infinity: 381 negative samples on a step's edge land one code away.
    assert not differ[EVERY_SAMPLE >= 0].any()
    assert differ.sum() == 381 and (np.abs(mine[differ] - theirs[differ]) == 1).all()


def test_a_round_trip_stays_within_the_step_of_its_segment() -> None:
    back = mulaw.decode(mulaw.encode(EVERY_SAMPLE)).astype(np.int32)
    error = np.abs(back - EVERY_SAMPLE.astype(np.int32))
    small = np.abs(EVERY_SAMPLE.astype(np.int32)) < 100
    assert error[small].max() <= 4  # steps of 8 near silence
    assert (error[~small] / np.abs(EVERY_SAMPLE[~small].astype(np.int32))).max() < 0.07
    assert mulaw.encode(np.zeros(4, dtype=np.int16)) == b"\xff" * 4  # silence is 0xFF


def test_audio_is_cut_into_20_ms_frames_padded_with_silence() -> None:
    cut = mulaw.frames(b"\x00" * 400)
    assert [len(f) for f in cut] == [160, 160, 160] and cut[2].endswith(b"\xff" * 80)
    assert mulaw.frames(b"") == []


def tone(hz: float, rate: int, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (10000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def test_speech_band_tones_survive_conversion_both_ways() -> None:
    down = resample(tone(1000, 22050), 22050, 8000)
    assert len(down) == 4000 and abs(peak_hz(down, 8000) - 1000) < 5
    assert np.sqrt(np.mean(down.astype(np.float64) ** 2)) > 6000  # about 7,071 for 10,000 peak
    up = resample(tone(440, 8000), 8000, 16000)
    assert len(up) == 8000 and abs(peak_hz(up, 16000) - 440) < 5


def test_what_the_lower_rate_cannot_carry_is_filtered_not_folded_back() -> None:
    high = tone(6000, 22050)  # above 8 kHz's Nyquist frequency: it would alias to 2 kHz
    down = resample(high, 22050, 8000)
    ratio = np.sqrt(np.mean(down.astype(np.float64) ** 2)) / np.sqrt(
        np.mean(high.astype(np.float64) ** 2)
    )
    assert ratio < 0.05
