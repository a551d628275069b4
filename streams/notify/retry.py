"""How long to wait before the next attempt at a robot, and when to give up.

Exponential backoff from one second, doubling up to `cap_seconds`, inside a budget of
`retry_seconds` from the first attempt: a robot that is back within that time gets the
notice; past it the notice is a dead letter (service.py says why, never the URL).
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.notify.robots import Delivery

# The outcomes a later attempt can turn into `sent` (robots.py classifies each robot's answers).
RETRIED = frozenset({"retry", "rate_limited"})


@dataclass(frozen=True, slots=True)
class Backoff:
    retry_seconds: float = 180.0
    first_seconds: float = 1.0
    cap_seconds: float = 30.0

    def delay_ms(self, attempt: int, elapsed_ms: int) -> int | None:
        """The wait before attempt `attempt + 1` (attempt 0 was the first), or None when the
        next attempt would start past `retry_seconds` after the first one."""
        left_ms = int(self.retry_seconds * 1000) - elapsed_ms
        if left_ms <= 0:
            return None
        delay = min(self.first_seconds * 2**attempt, self.cap_seconds)
        return min(int(delay * 1000), left_ms)


def gives_up_reason(delivery: Delivery, retry_seconds: float) -> str:
    """The dead letter's reason once retrying is over: the robot's last answer, no URL."""
    seconds = f"{retry_seconds:g}"
    if delivery.outcome == "rate_limited":
        return f"notify: robot answered rate-limited for {seconds} s"
    if delivery.outcome == "refused":
        return "notify: robot refused the message"
    return f"notify: robot unreachable for {seconds} s"
