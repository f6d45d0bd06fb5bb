"""Bounded exponential backoff with full jitter, shared by saves and backends."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often, and how patiently, to try again.

    ``delay(n)`` for the n-th retry (1-based) is uniform in ``[0, min(max_delay,
    base_delay * 2**(n-1))]`` ("full jitter"), which spreads competing writers apart.
    """

    max_attempts: int = 50
    base_delay: float = 0.01
    max_delay: float = 1.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("RetryPolicy needs max_attempts >= 1 and non-negative delays")

    def delay(self, retry: int) -> float:
        """Seconds to wait before the ``retry``-th retry."""
        cap = min(self.max_delay, self.base_delay * (2 ** min(retry - 1, 30)))
        return random.uniform(0, cap)
