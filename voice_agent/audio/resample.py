"""Sample-rate conversion for call audio: a synthesizer's 16 or 22.05 kHz down to the phone's
8 kHz, and the phone's 8 kHz up to what a recognizer wants (16 kHz). A windowed-sinc low-pass
at the lower rate's Nyquist frequency, then linear interpolation at the new sample times:
simple, no state between calls (each utterance is converted whole), and enough for speech,
which the telephone band keeps below 3.4 kHz anyway."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

TAPS = 63  # the low-pass's length: its transition band is about a tenth of the cut-off
PEAK = 32767


def low_pass(cutoff: float, taps: int = TAPS) -> npt.NDArray[np.float64]:
    """A Hamming-windowed sinc filter; `cutoff` is a fraction of the sample rate (0 to 0.5)."""
    n = np.arange(taps) - (taps - 1) / 2
    kernel: npt.NDArray[np.float64] = 2 * cutoff * np.sinc(2 * cutoff * n) * np.hamming(taps)
    normalized: npt.NDArray[np.float64] = kernel / kernel.sum()
    return normalized


def resample(samples: npt.NDArray[np.int16], rate_in: int, rate_out: int) -> npt.NDArray[np.int16]:
    """`samples` at `rate_in` as samples at `rate_out` (same duration)."""
    if rate_in == rate_out or len(samples) == 0:
        return samples.astype(np.int16, copy=True)
    signal = samples.astype(np.float64)
    # Filter below the lower rate's Nyquist frequency (a little under, for the transition band).
    cutoff = 0.45 * min(rate_in, rate_out) / rate_in
    signal = np.convolve(signal, low_pass(cutoff), mode="same")
    count = round(len(samples) * rate_out / rate_in)
    times = np.arange(count) * (rate_in / rate_out)
    out = np.interp(times, np.arange(len(signal)), signal)
    converted: npt.NDArray[np.int16] = np.clip(np.round(out), -PEAK - 1, PEAK).astype(np.int16)
    return converted
