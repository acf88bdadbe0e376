"""Reconnecting a live stream: the exponential back-off (:class:`ReconnectPolicy`) and the loop
that opens the source again under it (:func:`connect_with_backoff`), raising
:class:`StreamLostError` once the policy's attempts or time limit are spent."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

from runtime.sources import CaptureLike, SourceError, SourceSpec

log = logging.getLogger(__name__)

__all__ = ["ReconnectPolicy", "StreamLostError", "check_attempts", "check_limit", "connect_with_backoff"]

# why a reader connects, and how the error says it when it gives up
REASONS = {"not_up": "did not come up", "dropped": "dropped and did not come back",
           "stalled": "stalled and did not come back"}


class StreamLostError(SourceError):
    """A live stream dropped and did not come back within the reconnect policy."""


def check_attempts(attempts: int | None, name: str = "max_retries", unlimited: str = "None") -> None:
    """Connection attempts: >= 0, or None (``unlimited``: how the caller spells None)."""
    if attempts is not None and attempts < 0:
        raise ValueError(f"{name} must be >= 0 or {unlimited} (got {attempts})")


def check_limit(seconds: float | None, name: str = "timeout", unlimited: str = "None") -> None:
    """An outage limit: > 0 seconds, or None (``unlimited``: how the caller spells None)."""
    if seconds is not None and not seconds > 0:
        raise ValueError(f"{name} must be > 0 seconds or {unlimited} (got {seconds})")


@dataclass(frozen=True)
class ReconnectPolicy:
    """Exponential back-off for live streams: wait ``initial_delay * factor**k`` (at most
    ``max_delay``) before attempt ``k``; give up after ``max_retries`` attempts or once the outage
    would exceed ``timeout`` seconds (``None``: no limit of that kind)."""

    initial_delay: float = 0.5
    max_delay: float = 8.0
    factor: float = 2.0
    max_retries: int | None = 10
    timeout: float | None = 120.0

    def __post_init__(self) -> None:
        if self.initial_delay < 0 or self.max_delay < self.initial_delay or self.factor < 1:
            raise ValueError(f"invalid back-off {self}")
        check_attempts(self.max_retries)
        check_limit(self.timeout)

    def delay(self, attempt: int) -> float:
        return min(self.max_delay, self.initial_delay * self.factor ** attempt)

    def exhausted(self, attempt: int, elapsed: float, delay: float) -> str | None:
        """Why to give up before attempt ``attempt`` (0-based), ``elapsed`` seconds into the outage
        and ``delay`` seconds before it: "attempts" (``max_retries`` made), "timeout" (the wait would
        pass ``timeout``), or None (go on)."""
        if self.max_retries is not None and attempt >= self.max_retries:
            return "attempts"
        if self.timeout is not None and elapsed + delay > self.timeout:
            return "timeout"
        return None

    def describe(self) -> str:
        attempts = "unlimited attempts" if self.max_retries is None else f"at most {self.max_retries} attempts"
        limit = "no time limit" if self.timeout is None else f"for at most {self.timeout:g}s"
        return f"{attempts}, {limit}, waits {self.initial_delay:g}s doubling to {self.max_delay:g}s"


def connect_with_backoff(spec: SourceSpec, opener: Callable[[SourceSpec], CaptureLike],
                         policy: ReconnectPolicy, reason: str, *, current: Callable[[], bool],
                         wait: Callable[[float], bool], blocked: Callable[[bool], None]
                         ) -> tuple[CaptureLike, int] | None:
    """Open ``spec`` with back-off after ``reason`` (a drop, a stall, or not up at start): the
    capture and the attempts made, or None once ``current()`` says the reader was stopped or
    superseded. ``wait(s)`` sleeps (True: stopped meanwhile); ``blocked(True/False)`` marks the
    time spent inside the opener (a stall watchdog reads it). Raises :class:`StreamLostError`."""
    t_lost = time.monotonic()
    what = REASONS[reason]
    attempt = 0
    while current():
        elapsed = time.monotonic() - t_lost
        delay = policy.delay(attempt) if reason != "not_up" or attempt else 0.0
        limit = policy.exhausted(attempt, elapsed, delay)
        if limit == "attempts":
            raise StreamLostError(f"{spec.describe()} {what} after {attempt} connection attempt(s) over "
                                  f"{elapsed:.1f}s")
        if limit == "timeout":
            raise StreamLostError(f"{spec.describe()} {what} within {policy.timeout:.1f}s "
                                  f"({attempt} connection attempt(s))")
        if delay > 0:
            log.warning("%s %s; connecting in %.2fs (attempt %d%s)", spec.describe(),
                        reason.replace("_", " "), delay, attempt + 1,
                        f"/{policy.max_retries}" if policy.max_retries is not None else "")
            if wait(delay):
                return None
        attempt += 1
        blocked(True)
        try:
            cap = opener(spec)
        except Exception as e:  # noqa: BLE001 - any open failure is one failed attempt
            log.warning("connection attempt %d to %s failed: %s", attempt, spec.describe(), e)
            continue
        finally:
            blocked(False)
        if not current():  # abandoned (or stopped) while opening
            if cap is not None:
                cap.release()
            return None
        if cap is not None and cap.isOpened():
            log.info("%s %s after %.2fs (%d attempt(s))", spec.describe(),
                     "up" if reason == "not_up" else "reconnected", time.monotonic() - t_lost, attempt)
            return cap, attempt
        if cap is not None:
            cap.release()
    return None
