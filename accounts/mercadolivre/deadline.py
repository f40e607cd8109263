"""One overall deadline for every Mercado Livre call made inside a block.

A web request that must talk to ML (the API's synchronous "sync now") has to answer
before the web server's timeout kills it. `within(seconds)` sets a deadline for the
current context (thread or task); `http.request_json` shortens its timeouts to what is
left and refuses to start a call once it has passed, and `ratelimit.acquire` never waits
for the budget past it. Nested blocks keep the earlier deadline.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar

_deadline: ContextVar[float | None] = ContextVar("ml_deadline", default=None)


@contextlib.contextmanager
def within(seconds: float) -> Iterator[None]:
    """Every ML call and budget wait in this block ends within `seconds` from now."""
    end = time.monotonic() + max(0.0, float(seconds))
    current = _deadline.get()
    token = _deadline.set(end if current is None else min(current, end))
    try:
        yield
    finally:
        _deadline.reset(token)


def time_left() -> float | None:
    """Seconds until the current deadline (0 once passed), or None when there is none."""
    end = _deadline.get()
    if end is None:
        return None
    return max(0.0, end - time.monotonic())


def cap(seconds: float) -> float:
    """`seconds`, shortened to the time left before the deadline if there is one."""
    left = time_left()
    return seconds if left is None else min(seconds, left)
