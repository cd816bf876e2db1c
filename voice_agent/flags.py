"""Run-time flags: what the optimizations do, changed without a restart and audited.

`GET`/`PATCH /v1/admin/flags` read and change them; a change applies from the next turn of
every call. Every change is appended to a JSON-lines audit log (when, who, old, new), so a
rollback can be traced and repeated. `mode_for` gives each call its mode: with a rollout
percent under 100, a stable share of calls (by a hash of the call id) gets `enabled` and the
rest `shadow`, a canary inside one deployment.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from voice_agent.errors import FlagError
from voice_agent.listeners import Listeners

log = logging.getLogger(__name__)

ModeName = Literal["disabled", "shadow", "enabled"]


class FlagsPatch(BaseModel):
    """The body of PATCH /v1/admin/flags: any subset of the flags."""

    model_config = ConfigDict(extra="forbid")

    mode: ModeName | None = None
    rollout_percent: float | None = Field(default=None, ge=0, le=100)
    quick_responses: bool | None = None
    response_cache: bool | None = None
    cache_threshold: float | None = Field(default=None, gt=0, le=1)
    first_token_budget_s: float | None = Field(default=None, gt=0)
    llm_timeout_s: float | None = Field(default=None, gt=0)


@dataclass(frozen=True, slots=True)
class Flags:
    mode: ModeName
    rollout_percent: float
    quick_responses: bool
    response_cache: bool
    cache_threshold: float
    first_token_budget_s: float
    llm_timeout_s: float

    def mode_for(self, call_id: str) -> ModeName:
        """`enabled` for the rollout's share of calls, `shadow` for the rest; a call keeps its
        bucket for as long as the percent stays the same."""
        if self.mode != "enabled" or self.rollout_percent >= 100:
            return self.mode
        digest = hashlib.sha256(call_id.encode("utf-8")).digest()
        bucket = int.from_bytes(digest[:4], "big") % 10_000 / 100  # 0.00 to 99.99
        return "enabled" if bucket < self.rollout_percent else "shadow"


FLAG_NAMES = tuple(Flags.__dataclass_fields__)


def changed_fields(old: Flags, new: Flags) -> list[str]:
    """The names of the flags that differ, sorted."""
    return sorted(k for k in FLAG_NAMES if getattr(old, k) != getattr(new, k))


class FlagStore:
    def __init__(self, flags: Flags, audit_log: Path | None) -> None:
        self._flags = flags
        self._audit_log = audit_log
        self._lock = threading.Lock()
        self.version = 0  # the fleet document's version these flags came from (0: this process's)
        self._listeners: Listeners[[Flags]] = Listeners("flags")

    @property
    def current(self) -> Flags:
        return self._flags

    def on_change(self, listener: Callable[[Flags], None]) -> None:
        self._listeners.append(listener)

    def change(self, patch: FlagsPatch, who: str, must_record: bool = True) -> Flags:
        """Apply `patch`. A change the audit log cannot record is refused (OSError), unless
        `must_record` is False: the automatic rollback protects callers first, and logs the
        failure to record it."""
        with self._lock:
            old = self._flags
            new = self.patched(old, patch)
            changed = changed_fields(old, new)
            if not changed:
                return old
            try:
                self._audit(who, old, new, changed)
            except OSError:
                if must_record:
                    raise
                log.error("flag change by %s applied but not recorded in the audit log", who,
                          exc_info=True)  # fmt: skip
            self._flags = new
        self._announce(who, old, new)
        return new

    @staticmethod
    def patched(flags: Flags, patch: FlagsPatch) -> Flags:
        """`flags` with `patch` applied; FlagError when the result is inconsistent."""
        new = replace(flags, **patch.model_dump(exclude_none=True))
        if new.first_token_budget_s >= new.llm_timeout_s:
            raise FlagError(
                f"first_token_budget_s ({new.first_token_budget_s}) must be below "
                f"llm_timeout_s ({new.llm_timeout_s})"
            )
        return new

    def adopt(self, flags: Flags, version: int, who: str | None = None) -> None:
        """Take flags decided elsewhere: the fleet's document at `version`, changed by `who`
        (for the log line; the audit line is the deciding process's, `record`)."""
        with self._lock:
            old, self._flags, self.version = self._flags, flags, version
        if old != flags:
            self._announce(who or f"the fleet (version {version})", old, flags)

    def record(self, who: str, old: Flags, new: Flags) -> None:
        """The audit line for a change this process made to the fleet's flags."""
        try:
            self._audit(who, old, new, changed_fields(old, new))
        except OSError:
            log.error("flag change by %s not recorded in the audit log", who, exc_info=True)

    def _announce(self, who: str, old: Flags, new: Flags) -> None:
        changed = {k: getattr(new, k) for k in changed_fields(old, new)}
        log.warning("flags changed by %s: %s", who, changed)
        self._listeners.notify(new)

    def _audit(self, who: str, old: Flags, new: Flags, changed: list[str]) -> None:
        """Append before applying: a change that cannot be recorded is not made."""
        if self._audit_log is None:
            return
        line = {
            "at": round(time.time(), 3),
            "who": who,
            "old": {k: getattr(old, k) for k in changed},
            "new": {k: getattr(new, k) for k in changed},
        }
        with self._audit_log.open("a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self._flags)
