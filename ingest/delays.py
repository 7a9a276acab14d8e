"""Pure: backoff delays for calls and for jobs."""

from __future__ import annotations

import random


def backoff(
    attempt: int, *, base_s: float = 1.0, max_s: float = 60.0, rng: random.Random | None = None
) -> float:
    """Exponential backoff with jitter: between half and all of base * 2**attempt, capped."""
    ceiling = min(max_s, base_s * 2.0 ** max(0, attempt))
    jitter: float = (rng or random.Random()).uniform(0, ceiling / 2)
    return ceiling / 2 + jitter
