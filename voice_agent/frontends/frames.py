"""What every frontend codec does with a text frame before its own logic: parse the JSON
object, find its kind, validate it against the model for that kind; and the DTMF keys."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError

from voice_agent.errors import ProtocolError

DTMF_DIGITS = frozenset("0123456789*#ABCD")


def dtmf_digit(value: Any) -> str:
    """A key pressed, as one of 0-9, *, #, A-D (a number is taken as its digits)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or value.upper() not in DTMF_DIGITS:
        raise ValueError("must be one of 0-9, *, #, A-D")
    return value.upper()


# A DTMF key in a frame model: a number is taken as its digits, anything else is refused.
DtmfDigit = Annotated[str, BeforeValidator(dtmf_digit)]


# A surrogate code point left in a decoded string has no pair (JSON's "\ud800" alone): no
# encoder, tokenizer or log file can take it. Control characters are not speech either.
_UNSPEAKABLE = re.compile(r"[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(text: str) -> str:
    """The caller's words without what no model or log can take: lone surrogates and control
    characters (tabs and line breaks stay)."""
    return _UNSPEAKABLE.sub("", text)


# The caller's words in a frame model, cleaned at the edge: one caller's bad text must never
# reach the encoder, whose batches other calls' sentences share.
SpokenText = Annotated[str, AfterValidator(clean_text)]


class Frame(BaseModel):
    """The base of every vendor's frame models: unknown fields are ignored (vendors and newer
    clients add some over time), and numbers sent as text are taken (pydantic's lax mode)."""

    model_config = ConfigDict(extra="ignore")


def dumps(frame: Mapping[str, Any]) -> str:
    """A frame as compact JSON text."""
    return json.dumps(frame, separators=(",", ":"))


def too_large(text: str, max_bytes: int) -> bool:
    """Whether a text frame is over `max_bytes` in UTF-8. A character is at most 4 bytes, so
    the bytes are only counted when that could matter."""
    return len(text) * 4 > max_bytes and len(text.encode("utf-8")) > max_bytes


def load_frame(raw: str, key: str = "type") -> tuple[str, dict[str, Any]]:
    """A text frame's JSON object and its kind (the string field `key`); raises
    ProtocolError for anything else."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ProtocolError("invalid_json", f"frame is not valid JSON: {exc.msg}") from exc
    except (ValueError, RecursionError) as exc:  # a number of thousands of digits, deep nesting
        raise ProtocolError("invalid_json", f"frame cannot be read: {type(exc).__name__}") from exc
    if not isinstance(data, dict):
        raise ProtocolError("invalid_frame", "frame must be a JSON object")
    kind = data.get(key)
    if not isinstance(kind, str):
        raise ProtocolError("invalid_frame", f"frame has no string field {key!r}")
    return kind, data


def first_error(exc: ValidationError) -> str:
    return str(exc.errors()[0]["msg"])


def parse_frame(
    models: Mapping[str, type[BaseModel]],
    kind: str,
    data: dict[str, Any],
    unknown: str,
    describe: Callable[[ValidationError], str] = first_error,
) -> BaseModel:
    """`data` validated by the model for `kind`; `unknown` starts the message for a kind
    there is no model for."""
    model = models.get(kind)
    if model is None:
        raise ProtocolError("unknown_type", f"{unknown} {kind!r}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ProtocolError("invalid_frame", f"{kind}: {describe(exc)}") from exc
