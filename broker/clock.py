"""Time, in one place, so tests and benchmarks can reason about it."""

from __future__ import annotations

import time
from typing import Any


class Clock:
    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor

    def time(self) -> float:
        return time.time()

    def time_ms(self) -> int:
        return int(time.time() * 1000)

    def call_later(self, seconds: float, func: Any, *args: Any) -> Any:
        return self.reactor.callLater(seconds, func, *args)
