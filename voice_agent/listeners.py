"""Callbacks told of a change (a flags change, a quality alert, a score, a shadow comparison, a
model process ready). One that fails is logged and skipped: it never undoes the change it was
told of, nor keeps the others from hearing of it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Generic, ParamSpec

log = logging.getLogger(__name__)

P = ParamSpec("P")


class Listeners(Generic[P]):
    def __init__(self, what: str) -> None:
        self._what = what  # named in the log line of a failing listener
        self._callbacks: list[Callable[P, None]] = []

    def append(self, callback: Callable[P, None]) -> None:
        self._callbacks.append(callback)

    def remove(self, callback: Callable[P, None]) -> None:
        self._callbacks.remove(callback)

    def notify(self, *args: P.args, **kwargs: P.kwargs) -> None:
        for callback in list(self._callbacks):
            try:
                callback(*args, **kwargs)
            except Exception:  # boundary: a listener's bug is its own, not the change's
                name = getattr(callback, "__qualname__", type(callback).__name__)
                log.exception("%s listener %s failed", self._what, name)

    def __iter__(self) -> Iterator[Callable[P, None]]:
        return iter(list(self._callbacks))

    def __len__(self) -> int:
        return len(self._callbacks)
