"""What the caller has heard of the agent's audio. Each spoken piece is sent with a mark after
it; the frontend names the mark back once the piece has played. A barge-in keeps, of the turn
being spoken, the pieces played and the share of the playing piece's words that its playing
time covers: that is what the call's history keeps (history.keep_heard)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

# How long past the estimated end of its audio a piece still counts as playing when its mark
# has not come back (a frontend that lost the mark must not make the agent talk for ever).
MARK_GRACE_S = 2.0


@dataclass(slots=True)
class Piece:
    mark: str
    turn_id: int
    text: str
    duration_s: float
    starts_at: float  # when it is expected to start playing (after the pieces before it)
    level: float  # its audio's RMS, for the echo guard


class Playback:
    def __init__(self) -> None:
        self._playing: deque[Piece] = deque()
        self._heard: list[str] = []  # the pieces of the newest turn played in full
        self._turn_id = 0
        self._ends_at = 0.0
        self._last_mark_at = 0.0

    def sent(self, piece_mark: str, turn_id: int, text: str, duration_s: float, level: float,
             now: float) -> None:  # fmt: skip
        if turn_id != self._turn_id:
            self._turn_id, self._heard = turn_id, []
        starts = max(now, self._ends_at)
        self._ends_at = starts + duration_s
        self._playing.append(Piece(piece_mark, turn_id, text, duration_s, starts, level))

    def played(self, mark: str, now: float) -> None:
        """The frontend played everything up to `mark`."""
        if not any(p.mark == mark for p in self._playing):
            return  # a mark of audio cleared, or one we never sent
        while self._playing:
            piece = self._playing.popleft()
            if piece.turn_id == self._turn_id:
                self._heard.append(piece.text)
            if piece.mark == mark:
                break
        self._last_mark_at = now
        if self._playing:  # the next piece started when this one ended
            self._playing[0].starts_at = now

    def speaking(self, now: float) -> bool:
        """Agent audio is being played (or waits to be)."""
        return bool(self._playing) and now < self._ends_at + MARK_GRACE_S

    def level(self, now: float) -> float:
        """The loudness of the agent audio playing now (0 when none)."""
        if not self.speaking(now):
            return 0.0
        return self._playing[0].level

    def heard(self, now: float, turn_id: int | None = None) -> str:
        """The newest turn's words the caller has heard so far ("" when `turn_id`, the turn
        being spoken, has had none of its audio sent yet)."""
        if turn_id is not None and turn_id != self._turn_id:
            return ""
        words = list(self._heard)
        if self._playing and self._playing[0].turn_id == self._turn_id:
            piece = self._playing[0]
            share = (now - piece.starts_at) / piece.duration_s if piece.duration_s > 0 else 0
            spoken = piece.text.split()
            count = max(0, min(len(spoken), int(len(spoken) * share)))
            if count:
                words.append(" ".join(spoken[:count]))
        return " ".join(words)

    def clear(self) -> None:
        """The frontend dropped the audio not yet played."""
        self._playing.clear()
        self._ends_at = 0.0
