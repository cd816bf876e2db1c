"""What a scenario file holds: a call on a flow, the caller's steps, and what each turn must do.
Pydantic models with unknown fields refused, so a misspelt expectation fails loudly instead of
checking nothing."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Tier = Literal["quick", "cache", "llm", "fallback", "flow"]
ActionName = Literal["transfer", "hangup", "dtmf"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Expect(Strict):
    """What the agent's turn must (or must not) do; every field is optional."""

    says: str | list[str] | None = None  # each must appear in the answer (any case)
    not_says: str | list[str] | None = None  # none may appear
    matches: str | None = None  # a regular expression the answer must match
    not_matches: str | None = None
    tier: Tier | list[Tier] | None = None  # the source that answered (one of a list)
    state: str | None = None  # the flow state after the turn
    action: ActionName | None = None  # the action the turn asked the frontend for
    action_to: str | None = None  # a transfer's number
    no_action: bool = False  # the turn must not transfer or hang up
    first_word_ms: float | None = Field(default=None, gt=0)  # the first word's budget
    min_quality: float | None = Field(default=None, ge=0, le=100)
    no_contradiction: bool = False  # nothing the knowledge base says otherwise
    no_reply: bool = False  # the step gets no turn at all (a digit being collected)
    interrupted: bool = False  # the caller talked over it: no end was sent

    @staticmethod
    def words(value: str | list[str] | None) -> list[str]:
        if value is None:
            return []
        return [value] if isinstance(value, str) else list(value)


class Step(Strict):
    """One thing the caller does: exactly one of say, dtmf, silence."""

    say: str | None = None
    dtmf: str | None = Field(default=None, pattern=r"^[0-9*#A-D]+$")  # keys, sent one by one
    silence: bool | None = None  # say nothing until the agent speaks (its silence reminder)
    partial: list[str] = Field(default_factory=list)  # partial transcripts before `say`
    barge_in_after_words: int | None = Field(default=None, ge=1)  # talk over the answer
    expect: Expect = Field(default_factory=Expect)

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        kinds = [k for k in ("say", "dtmf", "silence") if getattr(self, k) not in (None, False)]
        if len(kinds) != 1:
            raise ValueError(
                f"a step does exactly one of say, dtmf, silence (got {kinds or 'none'})"
            )
        if (self.partial or self.barge_in_after_words) and self.say is None:
            raise ValueError("partial and barge_in_after_words go with say")
        return self

    @property
    def label(self) -> str:
        if self.say is not None:
            return f"say {self.say!r}"
        if self.dtmf is not None:
            return f"dtmf {self.dtmf}"
        return "silence"


class Scenario(Strict):
    name: str = Field(min_length=1)
    flow: str | None = None  # the service's default flow when absent
    description: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)  # fills the flow's placeholders
    greeting: Expect | None = None  # the start state's words, when it has some
    steps: list[Step] = Field(min_length=1)
