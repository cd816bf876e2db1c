"""G.711 mu-law, the telephone network's 8-bit audio (ITU-T G.711, the "u-law" of North America
and Japan; Twilio Media Streams' `audio/x-mulaw`): 16-bit linear samples to bytes and back,
through tables made once, so a 20 ms frame costs a table lookup per sample.

Encoding follows the standard's segment layout: the sample's sign, then its magnitude plus a
bias of 132 (clipped at 32,635), whose highest set bit above bit 7 gives a 3-bit segment and the
next four bits the step within it; the byte is the complement. Decoding undoes it to the middle
of the step."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

BIAS = 0x84
CLIP = 32635
SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000  # 160 bytes: one 20 ms frame


def _encode_one(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    magnitude = min(-sample if sample < 0 else sample, CLIP) + BIAS
    segment = max(0, magnitude.bit_length() - 8)  # the top bit at 7 is segment 0, at 14 is 7
    step = (magnitude >> (segment + 3)) & 0x0F
    return ~(sign | (segment << 4) | step) & 0xFF


def _decode_one(byte: int) -> int:
    byte = ~byte & 0xFF
    segment, step = (byte >> 4) & 0x07, byte & 0x0F
    magnitude = (((step << 3) + BIAS) << segment) - BIAS
    return -magnitude if byte & 0x80 else magnitude


# Every 16-bit sample's byte (indexed by the sample + 32768), and every byte's sample.
_ENCODE = np.array([_encode_one(s) for s in range(-32768, 32768)], dtype=np.uint8)
_DECODE = np.array([_decode_one(b) for b in range(256)], dtype=np.int16)


def encode(samples: npt.NDArray[np.int16]) -> bytes:
    """16-bit linear samples to mu-law bytes, one byte each."""
    index = samples.astype(np.int32) + 32768
    return _ENCODE[index].tobytes()


def decode(data: bytes) -> npt.NDArray[np.int16]:
    """Mu-law bytes to 16-bit linear samples."""
    return _DECODE[np.frombuffer(data, dtype=np.uint8)]


def frames(data: bytes, size: int = FRAME_BYTES) -> list[bytes]:
    """Audio cut into frames of `size` bytes, the last padded with mu-law silence (0xFF)."""
    cut = [data[i : i + size] for i in range(0, len(data), size)]
    if cut and len(cut[-1]) < size:
        cut[-1] = cut[-1] + b"\xff" * (size - len(cut[-1]))
    return cut
